/* Coinlens dashboard: theme, local-time hints, keyboard table navigation, number format. */
(function () {
  "use strict";
  var root = document.documentElement;

  function theme() {
    var t = root.dataset.theme;
    if (t === "dark" || t === "light") return t;
    return window.matchMedia && window.matchMedia("(prefers-color-scheme: light)").matches ? "light" : "dark";
  }
  window.coinlensTheme = theme;

  var btn = document.getElementById("theme");
  if (btn) {
    btn.addEventListener("click", function () {
      var next = theme() === "dark" ? "light" : "dark";
      root.dataset.theme = next;
      try { localStorage.setItem("coinlens-theme", next); } catch (e) { /* private mode */ }
      document.dispatchEvent(new CustomEvent("coinlens:theme", { detail: next }));
    });
  }

  // Times are printed in UTC; say which local zone the reader is in and add local time hints.
  function localHints(scope) {
    var offset = -new Date().getTimezoneOffset();
    var sign = offset >= 0 ? "+" : "−";
    var h = Math.floor(Math.abs(offset) / 60), m = Math.abs(offset) % 60;
    var label = "UTC" + sign + String(h).padStart(2, "0") + ":" + String(m).padStart(2, "0");
    var tz = document.getElementById("tz");
    if (tz) tz.textContent = "Times: UTC · you: " + label;
    (scope || document).querySelectorAll("time[data-local]").forEach(function (el) {
      var d = new Date(el.getAttribute("datetime"));
      if (!isNaN(d)) el.title = "local (" + label + "): " + d.toLocaleString();
    });
  }
  localHints();

  // Prices from 1e-8 to 1e5: same rules as templating.price_text on the server (DIGITS
  // significant digits, integer digits kept, no trailing zeros, subscript runs of zeros).
  var SUB = "₀₁₂₃₄₅₆₇₈₉", DIGITS = 5;
  function fmtPrice(v) {
    if (v === null || v === undefined || !isFinite(v)) return "—";
    // below any price's minMove (1e-12): float noise, e.g. an axis tick at 1.4e-16 for 0
    if (Math.abs(v) < 1e-12) return "0";
    var sig = Math.max(DIGITS, Math.floor(Math.log10(Math.abs(v))) + 1);
    var a = Number(Math.abs(v).toPrecision(Math.min(sig, 100)));  // 9.99999 is written as 10
    var sign = v < 0 ? "-" : "";
    var lead = Math.floor(Math.log10(a));
    if (lead >= 0) return sign + a.toLocaleString("en-US", { maximumFractionDigits: Math.max(0, DIGITS - 1 - lead) });
    var zeros = -lead - 1;
    var digits = a.toFixed(Math.min(zeros + DIGITS, 100)).split(".")[1].slice(zeros).replace(/0+$/, "") || "0";
    if (zeros >= 4) {
      return sign + "0.0" + String(zeros).split("").map(function (c) { return SUB[+c]; }).join("") + digits;
    }
    return sign + "0." + "0".repeat(zeros) + digits;
  }
  window.coinlensFmtPrice = fmtPrice;

  // Show a whole chart of [time, value] rows (fitContent, plus room on the left). Time labels
  // are centred on their tick, so one on the first bar was cut ("018" for 2018): LABEL_ROOM px
  // stay empty before it. fitContent applies later, so the range is set from the bar count.
  var LABEL_ROOM = 24;
  window.coinlensFit = function (chart, seriesRows) {
    var times = new Set();
    seriesRows.forEach(function (rows) { rows.forEach(function (r) { times.add(r[0]); }); });
    var ts = chart.timeScale(), width = ts.width(), last = times.size - 1;
    if (last < 1 || width <= LABEL_ROOM) { ts.fitContent(); return; }
    ts.setVisibleLogicalRange({ from: -last * LABEL_ROOM / (width - LABEL_ROOM), to: last });
  };

  // htmx drops 4xx/5xx answers; show their reason (problem+json `detail`, else each problem)
  // where the answer would have gone, so a refused form does not fail silently.
  function problemText(xhr) {
    var p = null;
    try { p = JSON.parse(xhr.responseText); } catch (e) { /* not JSON */ }
    if (p && p.detail) return String(p.detail);
    var listed = p && (p.errors || p.problems);
    if (Array.isArray(listed) && listed.length) {
      return listed.map(function (e) { return (e.location ? e.location + ": " : "") + e.reason; }).join("; ");
    }
    return (p && p.title) || "The server answered " + xhr.status + " " + xhr.statusText;
  }
  document.body.addEventListener("htmx:beforeSwap", function (ev) {
    var d = ev.detail;
    if (d.xhr.status < 400 || !d.target) return;
    var msg = document.createElement("p");
    msg.className = "banner warn";
    msg.setAttribute("role", "alert");
    msg.textContent = problemText(d.xhr);
    d.serverResponse = msg.outerHTML;
    d.swapOverride = "innerHTML";  // the target stays (an outerHTML swap would replace it)
    d.shouldSwap = true;
    d.isError = false;
  });

  // Keyboard: ↑/↓ (or j/k) move between table rows, Enter opens the focused row's token.
  document.addEventListener("keydown", function (ev) {
    var row = ev.target.closest && ev.target.closest("table.grid tbody tr");
    if (!row) return;
    var next = null;
    if (ev.key === "ArrowDown" || ev.key === "j") next = row.nextElementSibling;
    if (ev.key === "ArrowUp" || ev.key === "k") next = row.previousElementSibling;
    if (ev.key === "Enter" && ev.target === row) {
      var a = row.querySelector("a");
      if (a) a.click();
      return;
    }
    if (next) {
      ev.preventDefault();
      next.focus();
    }
  });

  // After HTMX swaps the table, keep the filter form's sort fields in step with the URL.
  document.body.addEventListener("htmx:afterSwap", function (ev) {
    localHints(ev.target);
    var form = document.getElementById("filters");
    if (!form) return;
    var table = document.getElementById("table");
    if (!table) return;
    ["sort", "order"].forEach(function (k) {
      var input = form.querySelector('input[name="' + k + '"]');
      if (input && table.dataset[k]) input.value = table.dataset[k];
    });
  });
})();
