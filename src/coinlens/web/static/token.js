/* Token page charts (lightweight-charts, vendored from npm): candles + volume + EMAs,
   signal markers, support/resistance lines, forecast fan; grade history; backtest equity.
   State is exposed on window.coinlens for the browser tests. */
(function () {
  "use strict";
  var LC = window.LightweightCharts;
  var data = JSON.parse(document.getElementById("token-data").textContent);
  var base = document.body.dataset.base || "";
  var DAY = 86400;
  var state = { charts: [], price: null };
  window.coinlens = state;

  function css(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }
  function chartOptions(el, height) {
    return {
      width: el.clientWidth, height: height,
      layout: { background: { color: css("--bg2") }, textColor: css("--fg"), attributionLogo: false },
      grid: { vertLines: { color: css("--grid") }, horzLines: { color: css("--grid") } },
      rightPriceScale: { borderColor: css("--grid") },
      timeScale: { borderColor: css("--grid"), timeVisible: data.chart.timeframe === "1h" },
      localization: { priceFormatter: window.coinlensFmtPrice },
      autoSize: true
    };
  }
  var priceFormat = { type: "custom", formatter: window.coinlensFmtPrice, minMove: 1e-12 };

  function line(chart, color, opts) {
    return chart.addSeries(LC.LineSeries, Object.assign({
      color: color, lineWidth: 1, priceLineVisible: false, lastValueVisible: false,
      crosshairMarkerVisible: false, priceFormat: priceFormat
    }, opts || {}));
  }
  function pairs(rows) { return rows.map(function (r) { return { time: r[0], value: r[1] }; }); }

  function buildPrice() {
    var el = document.getElementById("price-chart");
    if (!el || !data.chart.candles.length) return;
    var chart = LC.createChart(el, chartOptions(el, 420));
    var candles = chart.addSeries(LC.CandlestickSeries, {
      upColor: css("--up"), downColor: css("--down"), borderVisible: false,
      wickUpColor: css("--up"), wickDownColor: css("--down"), priceFormat: priceFormat
    });
    var volume = chart.addSeries(LC.HistogramSeries, {
      priceFormat: { type: "volume" }, priceScaleId: "vol", color: css("--vol"), lastValueVisible: false, priceLineVisible: false
    });
    chart.priceScale("vol").applyOptions({ scaleMargins: { top: 0.82, bottom: 0 } });
    var emas = { "20": line(chart, css("--ema20")), "50": line(chart, css("--ema50")), "200": line(chart, css("--ema200")) };
    var p = state.price = { chart: chart, candles: candles, volume: volume, emas: emas, markers: null, levels: [], fan: {} };
    setSeries(data.chart);
    drawLevels(data.chart.levels || []);
    drawFan(data.chart.forecast);
    setRange("1Y");
    state.charts.push(chart);
  }

  function setSeries(c) {
    var p = state.price;
    p.candles.setData(c.candles.map(function (r) { return { time: r[0], open: r[1], high: r[2], low: r[3], close: r[4] }; }));
    p.volume.setData(c.volume.map(function (r) { return { time: r[0], value: r[1] || 0 }; }));
    Object.keys(p.emas).forEach(function (w) { p.emas[w].setData(pairs((c.ema || {})[w] || [])); });
    var first = c.candles.length ? c.candles[0][0] : 0;
    var marks = (data.chart.markers || []).filter(function (m) { return m.time >= first; }).map(function (m) {
      var up = m.kind === "bullish";
      return { time: m.time, position: up ? "belowBar" : "aboveBar", color: up ? css("--up") : css("--down"),
               shape: up ? "arrowUp" : "arrowDown", text: up ? "bullish" : "bearish" };
    });
    if (c.timeframe === "1h") {
      // signals are daily; on hourly candles they sit on the day's first hour
      marks = marks.filter(function (m) { return m.time % DAY === 0; });
    }
    if (p.markers) p.markers.setMarkers(marks); else p.markers = LC.createSeriesMarkers(p.candles, marks);
    p.lastTime = c.candles.length ? c.candles[c.candles.length - 1][0] : null;
    p.data = c;
  }

  function drawLevels(levels) {
    var p = state.price;
    levels.forEach(function (lv) {
      var support = lv.kind === "support";
      p.levels.push(p.candles.createPriceLine({
        price: lv.price, color: support ? css("--up") : css("--down"), lineWidth: 1,
        lineStyle: LC.LineStyle.Dashed, axisLabelVisible: true,
        title: (support ? "S " : "R ") + Math.round(lv.strength * 100) + "%"
      }));
    });
  }

  function drawFan(f) {
    if (!f || !f.points.length) return;
    var p = state.price, origin = { time: f.origin, value: f.last_close };
    function pts(q) { return [origin].concat(f.points.map(function (x) { return { time: x.time, value: x[q] }; })); }
    p.fan.p90 = line(p.chart, css("--fan"), { lineStyle: LC.LineStyle.Dotted, lineWidth: 2, title: "p90" });
    p.fan.p75 = line(p.chart, css("--fan"), { lineStyle: LC.LineStyle.Dashed });
    p.fan.p50 = line(p.chart, css("--fan"), { lineWidth: 2, title: "p50", lastValueVisible: true });
    p.fan.p25 = line(p.chart, css("--fan"), { lineStyle: LC.LineStyle.Dashed });
    p.fan.p10 = line(p.chart, css("--fan"), { lineStyle: LC.LineStyle.Dotted, lineWidth: 2, title: "p10" });
    ["p90", "p75", "p50", "p25", "p10"].forEach(function (q) { p.fan[q].setData(pts(q)); });
    p.fanEnd = f.points[f.points.length - 1].time;
    // The time scale spaces bars, not days: without a (blank) slot for every day up to the
    // last horizon, the 1, 7, 30 and 90-day points sat on four consecutive bars.
    p.fanDays = [];
    for (var t = f.origin + DAY; t < p.fanEnd; t += DAY) p.fanDays.push({ time: t });
    p.fanAxis = p.chart.addSeries(LC.LineSeries, { lastValueVisible: false, priceLineVisible: false });
    p.fanAxis.setData(p.fanDays);
  }

  var SPANS = { "1W": 7, "1M": 30, "3M": 91, "6M": 182, "1Y": 365 };
  function setRange(r) {
    var p = state.price;
    if (!p || !p.lastTime) return;
    document.querySelectorAll("#ranges .rng").forEach(function (b) { b.setAttribute("aria-pressed", String(b.dataset.range === r)); });
    if (r === "All") {
      if (p.data.timeframe === "1d" && !p.full) {
        return load("1d", "all").then(function () { p.full = true; p.chart.timeScale().fitContent(); });
      }
      p.chart.timeScale().fitContent();
      return;
    }
    // the fan shows as far as a third of the span past the last candle (all of it on 1Y)
    var fanTo = Math.min(p.fanEnd || 0, p.lastTime + Math.round(SPANS[r] / 3) * DAY);
    var end = Math.max(p.lastTime, p.data.timeframe === "1d" ? fanTo : 0);
    p.chart.timeScale().setVisibleRange({ from: p.lastTime - SPANS[r] * DAY, to: end });
  }

  function load(tf, range) {
    var url = base + "/web/t/" + encodeURIComponent(data.symbol) + "/chart.json?tf=" + tf + "&range=" + range;
    return fetch(url, { headers: { Accept: "application/json" } }).then(function (r) {
      if (!r.ok) throw new Error("chart data " + r.status);
      return r.json();
    }).then(function (c) {
      state.price.chart.applyOptions({ timeScale: { timeVisible: tf === "1h" } });
      setSeries(c);
      var fan = state.price.fan;
      Object.keys(fan).forEach(function (q) { fan[q].applyOptions({ visible: tf === "1d" }); });
      if (state.price.fanAxis) state.price.fanAxis.setData(tf === "1d" ? state.price.fanDays : []);
      return c;
    });
  }

  function wireControls() {
    document.querySelectorAll(".chart-tools .tf").forEach(function (b) {
      b.addEventListener("click", function () {
        var tf = b.dataset.tf;
        document.querySelectorAll(".chart-tools .tf").forEach(function (x) { x.setAttribute("aria-pressed", String(x === b)); });
        load(tf, "year").then(function () {
          state.price.full = false;
          var holder = document.getElementById("ranges");
          holder.innerHTML = "";
          data.ranges[tf].forEach(function (r) {
            var btn = document.createElement("button");
            btn.type = "button"; btn.className = "btn rng"; btn.dataset.range = r; btn.textContent = r;
            btn.setAttribute("aria-pressed", "false");
            btn.addEventListener("click", function () { setRange(r); });
            holder.appendChild(btn);
          });
          setRange(tf === "1h" ? "1M" : "1Y");
        });
      });
    });
    document.querySelectorAll("#ranges .rng").forEach(function (b) {
      b.addEventListener("click", function () { setRange(b.dataset.range); });
    });
  }

  function small(id, series, precision) {
    var el = document.getElementById(id);
    if (!el) return;
    var opts = chartOptions(el, 200);  // grades and equity multiples, not prices:
    opts.localization = { priceFormatter: function (v) { return v.toFixed(precision); } };
    var chart = LC.createChart(el, opts);
    series.forEach(function (s) {
      var ls = chart.addSeries(LC.LineSeries, { color: css(s.color), lineWidth: 2, title: s.title, priceLineVisible: false });
      ls.setData(pairs(s.rows));
    });
    window.coinlensFit(chart, series.map(function (s) { return s.rows; }));
    state.charts.push(chart);
    state[id] = chart;
  }

  // Live price: the dashboard's own feed (/web/stream) pushes ticks; the newest candle of the
  // chart follows them. Reconnects with backoff and resumes from the last event it saw.
  function showTick(m) {
    var price = Number(m.data.price);
    if (!isFinite(price)) return;
    var el = document.getElementById("live");
    el.textContent = "";
    var big = document.createElement("span");
    big.className = "live-price";
    big.textContent = window.coinlensFmtPrice(price);
    var note = document.createElement("small");
    var quote = m.data.quote || el.getAttribute("data-quote") || "";
    note.textContent = quote + " · live tick " + String(m.ts).replace("T", " ").slice(0, 19) + " UTC" +
      (m.data.source ? " · " + m.data.source : "");
    el.appendChild(big);
    el.appendChild(document.createTextNode(" "));
    el.appendChild(note);
    var p = state.price;
    if (!p || p.lastTime === null) return;
    var step = p.data.timeframe === "1h" ? 3600 : DAY;
    var t = Math.floor(Date.parse(m.ts) / 1000 / step) * step;
    // Only the newest bar or the one after it follows ticks: when the stored candles lag the
    // feed by more (a stale dataset, a replay), the chart is left as stored.
    var bars = p.candles.data(), last = bars[bars.length - 1];
    if (t === p.lastTime) {
      p.candles.update({ time: t, open: last.open, high: Math.max(last.high, price), low: Math.min(last.low, price), close: price });
    } else if (t === p.lastTime + step) {
      p.candles.update({ time: t, open: price, high: price, low: price, close: price });
      p.lastTime = t;
    }
  }

  function live() {
    var st = state.live = { connected: false, ticks: 0, last: null, lastId: null, show: showTick };
    var delay = 1000;
    function connect() {
      var ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + base + "/web/stream");
      ws.onopen = function () {
        var msg = { type: "subscribe", symbols: [data.symbol], events: ["tick"] };
        if (st.lastId) msg.last_event_id = st.lastId;
        ws.send(JSON.stringify(msg));
      };
      ws.onmessage = function (e) {
        var m = JSON.parse(e.data);
        if (m.type === "subscribed") { st.connected = true; delay = 1000; return; }
        if (m.type !== "tick" || m.symbol !== data.symbol) return;
        st.lastId = m.id;
        st.ticks += 1;
        st.last = m;
        showTick(m);
      };
      ws.onclose = function () {
        st.connected = false;
        setTimeout(connect, delay);
        delay = Math.min(delay * 2, 60000);
      };
    }
    if (window.WebSocket) connect();
    // the price line polls the stored close every 60 s only while the feed is down (a filter
    // here, not an hx-trigger condition: htmx evaluates those with Function(), which the CSP
    // refuses)
    document.body.addEventListener("htmx:beforeRequest", function (ev) {
      if (st.connected && ev.detail.elt && ev.detail.elt.id === "live") ev.preventDefault();
    });
  }

  buildPrice();
  wireControls();
  live();
  small("grade-chart", [
    { rows: data.history.trader, color: "--ema20", title: "Trader" },
    { rows: data.history.investor, color: "--ema200", title: "Investor" }
  ], 1);
  small("equity-chart", [
    { rows: data.equity.strategy, color: "--ema20", title: "Signal strategy" },
    { rows: data.equity.buy_hold, color: "--ema50", title: "Buy & hold" }
  ], 2);

  document.addEventListener("coinlens:theme", function () {
    state.charts.forEach(function (c) {
      c.applyOptions({ layout: { background: { color: css("--bg2") }, textColor: css("--fg") },
                       grid: { vertLines: { color: css("--grid") }, horzLines: { color: css("--grid") } } });
    });
  });
})();
