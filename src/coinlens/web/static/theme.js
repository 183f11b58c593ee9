/* The saved theme, applied before the first paint (loaded in <head>; no inline script: CSP). */
try { var t = localStorage.getItem("coinlens-theme"); if (t) document.documentElement.dataset.theme = t; } catch (e) { /* private mode */ }
