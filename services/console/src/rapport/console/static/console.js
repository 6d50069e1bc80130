// Small helpers for the server-rendered pages: sparklines and forecast bands (uPlot)
// after each swap, incidents' members kept open across the pushed re-renders, and the
// ops page's "updated n s ago".
(function () {
  function sparks(root) {
    (root || document).querySelectorAll(".spark[data-spark]").forEach(function (el) {
      if (el.dataset.drawn || typeof uPlot === "undefined") return;
      var data;
      try { data = JSON.parse(el.dataset.spark); } catch (e) { return; }
      if (!data || !data[0] || data[0].length < 2) { el.textContent = "–"; return; }
      el.dataset.drawn = "1";
      new uPlot({ width: 120, height: 28, legend: { show: false }, cursor: { show: false },
        scales: { x: { time: false }, y: { range: function (u, min, max) { return [0, Math.max(1, max * 1.1)]; } } }, axes: [{ show: false }, { show: false }],
        series: [{}, { stroke: "#2454d6", width: 1.5, fill: "rgba(36,84,214,.12)", points: { show: false } }] },
        data, el);
    });
  }
  // Observed, then the forecast (dashed) with its 80 % interval shaded between
  // lower and upper: data is [x, observed, expected, lower, upper], x in epoch s.
  function bands(root) {
    (root || document).querySelectorAll(".band[data-band]").forEach(function (el) {
      if (el.dataset.drawn || typeof uPlot === "undefined") return;
      var data;
      try { data = JSON.parse(el.dataset.band); } catch (e) { return; }
      if (!data || !data[0] || data[0].length < 2) { el.textContent = "no series data yet"; return; }
      el.dataset.drawn = "1";
      var edge = "rgba(224,122,16,.45)";
      var axis = { stroke: "#667085", size: 28, font: "10px system-ui, sans-serif",
        grid: { stroke: "#eef0f4", width: 1 }, ticks: { show: false } };
      new uPlot({ width: Math.max(220, el.clientWidth || 320), height: 110,
        legend: { show: false }, cursor: { show: false },
        tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"); },
        scales: { y: { range: function (u, min, max) { return [0, Math.max(1, max * 1.1)]; } } },
        axes: [Object.assign({}, axis, { size: 20 }), Object.assign({}, axis, { size: 40 })],
        series: [{},
          { stroke: "#2454d6", width: 1.75, points: { show: false } },
          { stroke: "#e07a10", width: 1.75, dash: [5, 4], points: { show: false } },
          { stroke: edge, width: 1, points: { show: false } },
          { stroke: edge, width: 1, points: { show: false } }],
        bands: [{ series: [4, 3], fill: "rgba(224,122,16,.18)" }] }, data, el);
    });
  }
  var open = {};
  document.addEventListener("toggle", function (ev) {
    var key = ev.target.dataset && ev.target.dataset.keep;
    if (key) { if (ev.target.open) open[key] = 1; else delete open[key]; }
  }, true);
  function reopen(root) {
    (root || document).querySelectorAll("details[data-keep]").forEach(function (el) {
      if (open[el.dataset.keep]) el.open = true;
    });
  }
  var updated = 0;
  function tick() {
    var out = document.getElementById("updated");
    if (!out || !updated) return;
    var s = Math.max(0, Math.round(Date.now() / 1000 - updated));
    out.textContent = "updated " + s + " s ago";
  }
  document.addEventListener("htmx:afterSettle", function (ev) {
    sparks(ev.target); bands(ev.target); reopen(ev.target);
    var stamp = document.querySelector(".stamp[data-updated]");
    if (stamp) { updated = parseFloat(stamp.dataset.updated); tick(); }
  });
  document.addEventListener("DOMContentLoaded", function () { sparks(); bands(); });
  setInterval(tick, 1000);
})();
