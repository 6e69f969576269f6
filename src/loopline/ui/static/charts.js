/* loopline console: draws the line charts whose data a page carries in
   <figure class="chart"><div class="uplot-host"></div><script type="application/json"
   class="chart-data">…</script></figure> with uPlot (vendored). The data comes from
   loopline.ui.chart.Chart.data(): {id, label, x_label, y_label, x: [whole numbers],
   series: [{label, values (null: a gap), color (a CSS variable), dashed, width (0: points
   only)}]}.
   Runs on load and on every htmx swap (the live SSE updates), so a live update redraws its
   charts. No inline script, no eval: the CSP stays script-src 'self'. */
(function () {
  "use strict";

  function cssVar(name, fallback) {
    var value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return value || fallback;
  }

  function draw(figure) {
    var source = figure.querySelector("script.chart-data");
    var host = figure.querySelector(".uplot-host");
    if (!source || !host || typeof uPlot === "undefined") {
      return;
    }
    var spec = JSON.parse(source.textContent);
    var muted = cssVar("--muted", "#4d5562");
    var line = cssVar("--line", "#d0d7de");
    var series = [{ label: spec.x_label }];
    var data = [spec.x];
    spec.series.forEach(function (s) {
      var stroke = cssVar(s.color, "#0072b2");
      var marks = s.width === 0; // points only: marked windows (drifted)
      series.push({
        label: s.label,
        stroke: stroke,
        width: marks ? 0 : s.width,
        dash: s.dashed ? [6, 4] : undefined,
        paths: marks ? function () { return null; } : undefined,
        points: marks
          ? { show: true, size: 9, fill: stroke, stroke: stroke }
          : { show: spec.x.length <= 48 && s.width >= 2 },
        spanGaps: false,
      });
      data.push(s.values);
    });
    var axis = { stroke: muted, grid: { stroke: line, width: 1 }, ticks: { stroke: line } };
    var width = Math.max(320, Math.min(figure.clientWidth || 640, 900));
    host.textContent = "";
    new uPlot(
      {
        width: width,
        height: 220,
        series: series,
        scales: { x: { time: false } },
        axes: [
          Object.assign({ label: spec.x_label, incrs: [1, 2, 5, 10, 20, 50, 100] }, axis),
          Object.assign({ label: spec.y_label }, axis),
        ],
        legend: { live: false },
        cursor: { drag: { x: false, y: false } },
      },
      data,
      host
    );
    figure.setAttribute("data-drawn", "true");
  }

  function drawAll(root) {
    var scope = root && root.querySelectorAll ? root : document;
    if (scope.matches && scope.matches("figure.chart")) {
      draw(scope);
    }
    scope.querySelectorAll("figure.chart").forEach(draw);
  }

  if (typeof htmx !== "undefined") {
    htmx.onLoad(drawAll); // the first load, then every swapped-in element
  } else {
    document.addEventListener("DOMContentLoaded", function () {
      drawAll(document);
    });
  }
})();
