"""A line chart's data for the browser: what ``static/charts.js`` draws with uPlot.

A screen builds a :class:`Chart` (series over one shared x axis of whole numbers, such as
window indices) and its template puts :meth:`Chart.data` in a
``<script type="application/json" class="chart-data">`` inside a ``<figure class="chart">``
(no inline script: the CSP stays ``script-src 'self'``). Colours are CSS variables of
console.css, so the light and dark themes apply to the charts too.
"""

from __future__ import annotations

from dataclasses import dataclass

from loopline.types import JsonDict


@dataclass(frozen=True, slots=True)
class Line:
    """One series of a :class:`Chart`: ``values[i]`` at the chart's ``x[i]`` (None: a gap);
    ``color`` a CSS variable of console.css; ``width`` 0: points only, no line."""

    label: str
    values: tuple[float | None, ...]
    color: str = "--s0"
    dashed: bool = False
    width: float = 2.0


@dataclass(frozen=True, slots=True)
class Chart:
    """A line chart over whole numbers (window indices, steps), drawn in the browser by uPlot
    (``static/charts.js`` reads :meth:`data` from a ``<script type="application/json">``)."""

    id: str  # the figure's element id
    label: str  # the chart's accessible name and caption
    y_label: str
    x: tuple[int, ...]
    lines: tuple[Line, ...]
    x_label: str = "window"

    def data(self) -> JsonDict:
        return {
            "id": self.id,
            "label": self.label,
            "x_label": self.x_label,
            "y_label": self.y_label,
            "x": list(self.x),
            "series": [
                {"label": s.label, "values": list(s.values), "color": s.color,
                 "dashed": s.dashed, "width": s.width}
                for s in self.lines
            ],
        }  # fmt: skip
