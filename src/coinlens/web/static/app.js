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

  // Prices from 1e-8 to 1e5: same rules as templating.price_text on the server.
  var SUB = "₀₁₂₃₄₅₆₇₈₉";
  function fmtPrice(v) {
    if (v === null || v === undefined || !isFinite(v)) return "—";
    var a = Math.abs(v);
    if (a === 0) return "0";
    if (a >= 1000) return v.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
    if (a >= 10) return v.toLocaleString("en-US", { minimumFractionDigits: 3, maximumFractionDigits: 3 });
    if (a >= 1) return v.toLocaleString("en-US", { maximumFractionDigits: 4 });
    var zeros = -Math.floor(Math.log10(a)) - 1;
    var digits = a.toFixed(Math.min(zeros + 4, 20)).split(".")[1].slice(zeros).replace(/0+$/, "") || "0";
    var sign = v < 0 ? "-" : "";
    if (zeros >= 4) {
      return sign + "0.0" + String(zeros).split("").map(function (c) { return SUB[+c]; }).join("") + digits;
    }
    return sign + "0." + "0".repeat(zeros) + digits;
  }
  window.coinlensFmtPrice = fmtPrice;

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
