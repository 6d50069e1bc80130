// Small helpers for the server-rendered pages: sparklines (uPlot) after each swap,
// and the ops page's "updated n s ago".
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
  var updated = 0;
  function tick() {
    var out = document.getElementById("updated");
    if (!out || !updated) return;
    var s = Math.max(0, Math.round(Date.now() / 1000 - updated));
    out.textContent = "updated " + s + " s ago";
  }
  document.addEventListener("htmx:afterSettle", function (ev) {
    sparks(ev.target);
    var stamp = document.querySelector(".stamp[data-updated]");
    if (stamp) { updated = parseFloat(stamp.dataset.updated); tick(); }
  });
  document.addEventListener("DOMContentLoaded", function () { sparks(); });
  setInterval(tick, 1000);
})();
