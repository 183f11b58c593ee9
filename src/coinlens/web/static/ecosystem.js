/* Ecosystem charts: one line per series; each chart's caption names source and date range. */
(function () {
  "use strict";
  var LC = window.LightweightCharts;
  var data = JSON.parse(document.getElementById("eco-data").textContent);
  var COLORS = ["--ema20", "--ema50", "--ema200", "--up", "--down", "--fan"];
  var state = { charts: {} };
  window.coinlens = state;
  function css(n) { return getComputedStyle(document.documentElement).getPropertyValue(n).trim(); }
  function big(v) {
    var a = Math.abs(v);
    if (a >= 1e9) return (v / 1e9).toFixed(2) + "B";
    if (a >= 1e6) return (v / 1e6).toFixed(2) + "M";
    if (a >= 1e3) return (v / 1e3).toFixed(1) + "K";
    return v.toPrecision(4);
  }
  Object.keys(data).forEach(function (key) {
    var el = document.getElementById(key + "-chart");
    var series = data[key];
    var cap = document.querySelector('.provenance[data-for="' + key + '"]');
    if (cap) {
      cap.textContent = series.length ? "Data: " + series.map(function (s) {
        return s.name + " " + s.metric + " (" + s.source + ", " + s.first + " → " + s.last + " UTC)";
      }).join("; ") : "No data for this chart.";
    }
    if (!el || !series.length) return;
    var chart = LC.createChart(el, {
      autoSize: true, height: 200,
      layout: { background: { color: css("--bg2") }, textColor: css("--fg"), attributionLogo: false },
      grid: { vertLines: { color: css("--grid") }, horzLines: { color: css("--grid") } },
      localization: { priceFormatter: big }
    });
    series.forEach(function (s, i) {
      var ls = chart.addSeries(LC.LineSeries, { color: css(COLORS[i % COLORS.length]), lineWidth: 1, title: s.title, priceLineVisible: false });
      ls.setData(s.points.map(function (p) { return { time: p[0], value: p[1] }; }));
    });
    window.coinlensFit(chart, series.map(function (s) { return s.points; }));
    state.charts[key] = chart;
  });
  document.addEventListener("coinlens:theme", function () {
    Object.values(state.charts).forEach(function (c) {
      c.applyOptions({ layout: { background: { color: css("--bg2") }, textColor: css("--fg") },
                       grid: { vertLines: { color: css("--grid") }, horzLines: { color: css("--grid") } } });
    });
  });
})();
