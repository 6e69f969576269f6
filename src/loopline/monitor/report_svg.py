"""Inline SVG charts drawn in Python for the monitor report: no JavaScript, no external files.

Three shapes, each a pure function returning an ``<svg>`` string: :func:`line_chart` (series
over time with optional bands and step thresholds), :func:`bar_chart` (reference vs current
shares per bucket) and :func:`timeline` (alert episodes as spans). Colours come from the
page's CSS classes (``.s0`` … ``.s7``, ``.ref``, ``.cur``, ``.thr``, ``.band``), so one
stylesheet serves the light and the dark theme. Every text is escaped; every mark carries a
``<title>`` (a tooltip in any browser, read by screen readers).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape

PALETTE = 8  # series classes s0..s7 (Okabe–Ito colours, safe for colour-blind readers)
_PAD_L, _PAD_R, _PAD_T, _PAD_B = 52, 12, 10, 30


@dataclass(frozen=True, slots=True)
class Series:
    """One line: ``ys[i]`` at ``xs[i]`` (None breaks the line); an optional band around it."""

    name: str
    xs: tuple[float, ...]
    ys: tuple[float | None, ...]
    css: str = "s0"
    lower: tuple[float | None, ...] | None = None
    upper: tuple[float | None, ...] | None = None
    dashed: bool = False
    marks: tuple[bool, ...] | None = None  # points drawn as alarms (drifted windows)


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1000 or a < 0.001:
        return f"{v:.2g}"
    return f"{v:.3g}"


def time_label(ts: float, span: float) -> str:
    """A tick label for epoch seconds ``ts`` on an axis spanning ``span`` seconds (UTC)."""
    t = datetime.fromtimestamp(ts, UTC)
    if span < 2 * 86400:
        return t.strftime("%H:%M:%S" if span < 600 else "%H:%M")
    return t.strftime("%m-%d %H:%M" if span < 30 * 86400 else "%Y-%m-%d")


def ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About ``n`` round tick values covering ``[lo, hi]``."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo]
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.ceil(lo / step - 1e-9) * step
    return [start + i * step for i in range(int((hi - start) / step + 1e-9) + 1)]


_TIME_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600,
               43200, 86400, 172800, 604800, 2592000)  # fmt: skip


def time_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About ``n`` ticks on round UTC times (every 5 min, every hour, every day, …)."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo]
    step = next((t for t in _TIME_STEPS if (hi - lo) / t <= n), _TIME_STEPS[-1])
    start = math.ceil(lo / step) * step
    return [float(start + i * step) for i in range(int((hi - start) // step) + 1)]


class _Frame:
    """Linear scales from data to pixels, and the axes."""

    def __init__(
        self, width: int, height: int, x: tuple[float, float], y: tuple[float, float]
    ) -> None:
        self.w, self.h = width, height
        self.x0, self.x1 = x if x[1] > x[0] else (x[0] - 0.5, x[0] + 0.5)
        self.y0, self.y1 = y if y[1] > y[0] else (y[0] - 0.5, y[0] + 0.5)

    def px(self, x: float) -> float:
        return _PAD_L + (x - self.x0) / (self.x1 - self.x0) * (self.w - _PAD_L - _PAD_R)

    def py(self, y: float) -> float:
        return self.h - _PAD_B - (y - self.y0) / (self.y1 - self.y0) * (self.h - _PAD_T - _PAD_B)

    def axes(
        self, x_label: Callable[[float], str], y_ticks: list[float], x_is_time: bool = False
    ) -> list[str]:
        out = []
        for t in y_ticks:
            y = self.py(t)
            out.append(
                f'<line class="grid" x1="{_PAD_L}" x2="{self.w - _PAD_R}" y1="{y:.1f}" '
                f'y2="{y:.1f}"/><text class="tick" x="{_PAD_L - 6}" y="{y + 4:.1f}" '
                f'text-anchor="end">{escape(_fmt(t))}</text>'
            )
        for t in (time_ticks if x_is_time else ticks)(self.x0, self.x1, 4):
            x = self.px(t)
            out.append(
                f'<text class="tick" x="{x:.1f}" y="{self.h - 10}" text-anchor="middle">'
                f"{escape(x_label(t))}</text>"
            )
        base = self.h - _PAD_B
        out.append(
            f'<line class="axis" x1="{_PAD_L}" x2="{self.w - _PAD_R}" y1="{base}" y2="{base}"/>'
        )
        return out


def _svg(width: int, height: int, label: str, body: list[str]) -> str:
    return (
        f'<svg viewBox="0 0 {width} {height}" '
        f'width="100%" role="img" aria-label="{escape(label)}"><title>{escape(label)}</title>'
        + "".join(body)
        + "</svg>"
    )


def _bands(
    xs: Sequence[float], lower: Sequence[float | None], upper: Sequence[float | None]
) -> list[list[tuple[float, float, float]]]:
    """Unbroken runs of (x, lower, upper) where both bounds are known."""
    runs: list[list[tuple[float, float, float]]] = [[]]
    for x, lo, hi in zip(xs, lower, upper, strict=True):
        if lo is None or hi is None or not (math.isfinite(lo) and math.isfinite(hi)):
            if runs[-1]:
                runs.append([])
        else:
            runs[-1].append((x, lo, hi))
    return [r for r in runs if r]


def _runs(xs: Sequence[float], ys: Sequence[float | None]) -> list[list[tuple[float, float]]]:
    """Unbroken runs of points (None breaks a line)."""
    runs: list[list[tuple[float, float]]] = [[]]
    for x, y in zip(xs, ys, strict=True):
        if y is None or not math.isfinite(y):
            if runs[-1]:
                runs.append([])
        else:
            runs[-1].append((x, y))
    return [r for r in runs if r]


def line_chart(
    series: Sequence[Series],
    *,
    label: str,
    threshold: tuple[tuple[float, ...], tuple[float | None, ...]] | None = None,
    width: int = 560,
    height: int = 200,
    y_floor: float | None = 0.0,
    x_is_time: bool = True,
) -> str:
    """Lines over a shared x axis (epoch seconds or indices); ``threshold`` (xs, ys) is drawn
    as a dashed step line; bands are shaded between ``lower`` and ``upper``."""
    values: list[float] = []
    xs_all: list[float] = []
    for s in series:
        xs_all.extend(s.xs)
        for seq in (s.ys, s.lower or (), s.upper or ()):
            values.extend(v for v in seq if v is not None and math.isfinite(v))
    if threshold is not None:
        xs_all.extend(threshold[0])
        values.extend(v for v in threshold[1] if v is not None and math.isfinite(v))
    if not values or not xs_all:
        return _svg(width, 60, label, ['<text class="tick" x="8" y="30">no data yet</text>'])
    lo, hi = min(values), max(values)
    if y_floor is not None:
        lo = min(lo, y_floor)
    hi += (hi - lo) * 0.08 or 0.5
    y_ticks = ticks(lo, hi, 4)
    frame = _Frame(width, height, (min(xs_all), max(xs_all)), (min(lo, y_ticks[0]), hi))
    span = frame.x1 - frame.x0

    def x_label(t: float) -> str:
        return time_label(t, span) if x_is_time else f"{t:g}"

    body = frame.axes(x_label, y_ticks, x_is_time)
    for s in series:
        if s.lower is not None and s.upper is not None:
            for band in _bands(s.xs, s.lower, s.upper):
                top = " ".join(f"{frame.px(x):.1f},{frame.py(h):.1f}" for x, _, h in band)
                bottom = " ".join(
                    f"{frame.px(x):.1f},{frame.py(low):.1f}" for x, low, _ in reversed(band)
                )
                body.append(
                    f'<polygon class="band {s.css}" points="{top} {bottom}">'
                    f"<title>{escape(s.name)} interval</title></polygon>"
                )
    if threshold is not None:
        steps: list[str] = []
        last_y: float | None = None
        for x, y in zip(*threshold, strict=True):
            if y is None:
                continue
            if last_y is not None:
                steps.append(f"{frame.px(x):.1f},{frame.py(last_y):.1f}")
            steps.append(f"{frame.px(x):.1f},{frame.py(y):.1f}")
            last_y = y
        if steps:
            body.append(
                f'<polyline class="thr" points="{" ".join(steps)}">'
                "<title>threshold</title></polyline>"
            )
    for s in series:
        dash = " dashed" if s.dashed else ""
        for run in _runs(s.xs, s.ys):
            pts_s = " ".join(f"{frame.px(x):.1f},{frame.py(y):.1f}" for x, y in run)
            body.append(
                f'<polyline class="line {s.css}{dash}" points="{pts_s}">'
                f"<title>{escape(s.name)}</title></polyline>"
            )
        for i, (x, y) in enumerate(zip(s.xs, s.ys, strict=True)):
            if y is None or not math.isfinite(y):
                continue
            alarm = s.marks is not None and s.marks[i]
            tip = f"{s.name}: {_fmt(y)} at {x_label(x)}" + (" (drifted)" if alarm else "")
            body.append(
                f'<circle class="pt {s.css}{" alarm" if alarm else ""}" cx="{frame.px(x):.1f}" '
                f'cy="{frame.py(y):.1f}" r="{3.2 if alarm else 2.2}"><title>{escape(tip)}</title>'
                "</circle>"
            )
    return _svg(width, height, label, body)


def bar_chart(
    labels: Sequence[str],
    reference: Sequence[float],
    current: Sequence[float],
    *,
    label: str,
    width: int = 560,
    height: int = 200,
) -> str:
    """Reference (outlined) and current (filled) shares side by side per bucket."""
    n = len(labels)
    if n == 0:
        return _svg(width, 60, label, ['<text class="tick" x="8" y="30">no histogram</text>'])
    hi = max([*reference, *current, 0.0]) * 1.1 or 1.0
    y_ticks = ticks(0.0, hi, 4)
    frame = _Frame(width, height, (0.0, float(n)), (0.0, max(hi, y_ticks[-1])))
    body = frame.axes(lambda t: "", y_ticks)[:-1]  # no x tick labels: buckets are labelled
    slot = (width - _PAD_L - _PAD_R) / n
    bar = max(slot * 0.38, 1.0)
    every = max(1, math.ceil(n / max(1, int((width - _PAD_L) / 56))))
    for i, name in enumerate(labels):
        x = frame.px(float(i))
        for k, (css, share) in enumerate((("ref", reference[i]), ("cur", current[i]))):
            top = frame.py(share)
            body.append(
                f'<rect class="{css}" x="{x + slot * 0.1 + k * bar:.1f}" y="{top:.1f}" '
                f'width="{bar:.1f}" height="{max(frame.py(0) - top, 0):.1f}"><title>'
                f"{escape(name)}: {'reference' if css == 'ref' else 'current'} "
                f"{share:.1%}</title></rect>"
            )
        if i % every == 0:
            short = name if len(name) <= 10 else name[:9] + "…"
            body.append(
                f'<text class="tick" x="{x + slot / 2:.1f}" y="{height - 10}" '
                f'text-anchor="middle">{escape(short)}</text>'
            )
    base = frame.py(0)
    body.append(f'<line class="axis" x1="{_PAD_L}" x2="{width - _PAD_R}" y1="{base}" y2="{base}"/>')
    return _svg(width, height, label, body)


@dataclass(frozen=True, slots=True)
class Span:
    """One alert episode on the timeline: a row label, from ``start`` to ``end`` (seconds)."""

    row: str
    start: float
    end: float
    css: str  # "firing" | "resolved"
    tip: str


def timeline(
    spans: Sequence[Span], *, label: str, x: tuple[float, float], width: int = 1080
) -> str:
    """Alert episodes as horizontal bars, one row per rule and version."""
    rows = list(dict.fromkeys(s.row for s in spans))
    if not rows:
        return _svg(width, 44, label, ['<text class="tick" x="8" y="26">no alert so far</text>'])
    row_h, left = 24, 170
    height = len(rows) * row_h + 34
    lo, hi = x if x[1] > x[0] else (x[0] - 1, x[0] + 1)

    def px(t: float) -> float:
        return left + (t - lo) / (hi - lo) * (width - left - _PAD_R)

    body = []
    for i, row in enumerate(rows):
        y = 8 + i * row_h
        short = row if len(row) <= 26 else row[:25] + "…"
        body.append(
            f'<text class="tick" x="{left - 8}" y="{y + 15}" text-anchor="end">'
            f"<title>{escape(row)}</title>{escape(short)}</text>"
            f'<line class="grid" x1="{left}" x2="{width - _PAD_R}" y1="{y + 10}" y2="{y + 10}"/>'
        )
    for s in spans:
        y = 8 + rows.index(s.row) * row_h
        x0, x1 = px(s.start), px(max(s.end, s.start))
        body.append(
            f'<rect class="episode {s.css}" x="{x0:.1f}" y="{y + 3}" width="{max(x1 - x0, 4):.1f}" '
            f'height="14" rx="3"><title>{escape(s.tip)}</title></rect>'
        )
    for t in time_ticks(lo, hi, 6):
        body.append(
            f'<text class="tick" x="{px(t):.1f}" y="{height - 8}" text-anchor="middle">'
            f"{escape(time_label(t, hi - lo))}</text>"
        )
    return _svg(width, height, label, body)
