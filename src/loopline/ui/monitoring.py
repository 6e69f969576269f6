"""The Monitoring screen: one monitor's windows × features, a feature's distribution, its
performance, its alerts and the trigger runs its alerts started.

:func:`monitor_screen` is pure: :class:`~loopline.ui.reads.ConsoleReads` reads the monitor's
status (:class:`~loopline.monitor.MonitorStatus`, what ``GET /v1/monitors/NAME`` serves), the
selected version's stored windows, and the triggers listening to this monitor with their
runs, and passes them in with the view state of the URL (``version``, ``feature``,
``window``). The small charts are the monitor report's own, drawn on the server
(:mod:`loopline.monitor.report_svg`: ``line_chart`` for the per-feature sparklines in the
table, ``bar_chart`` for the reference-vs-window distribution, bucketed as the report labels
them). The series over windows (the chosen feature's drift score against its threshold, each
performance metric with its interval and the CBPE estimate with its alert band) are
:class:`~loopline.ui.chart.Chart` data that the page draws with uPlot
(``static/charts.js``); a table beside each holds the same numbers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from markupsafe import Markup

from loopline.errors import InvalidInputError, NotFoundError, shown
from loopline.monitor.report import _bucket_labels
from loopline.monitor.report_svg import Series, bar_chart, line_chart
from loopline.monitor.status import MonitorStatus
from loopline.monitor.window_result import FeatureResult, PerformanceValue, WindowResult
from loopline.types import JsonDict
from loopline.ui.chart import Chart, Line

WINDOWS = 24  # windows shown per version (the status keeps the same history)


@dataclass(frozen=True, slots=True)
class HeatCell:
    """One feature in one window: its deciding check against the threshold. ``level`` is
    ``ok`` (under half the threshold), ``busy`` (under it), ``warn`` (over it but within
    sampling noise), ``bad`` (drifted) or ``none`` (not compared)."""

    index: int
    value: float | None
    threshold: float | None
    drifted: bool
    level: str
    note: str  # the cell's tooltip and accessible text


@dataclass(frozen=True, slots=True)
class HeatRow:
    feature: str
    kind: str
    metric: str | None
    cells: tuple[HeatCell, ...]
    sparkline: Markup


@dataclass(frozen=True, slots=True)
class PerfRow:
    index: int
    value: PerformanceValue
    estimated: bool


@dataclass(frozen=True, slots=True)
class MonitorScreen:
    status: MonitorStatus
    versions: tuple[str, ...]
    version: str | None  # the selected version (None: no window yet)
    windows: tuple[WindowResult, ...]  # of the selected version, oldest first
    rows: tuple[HeatRow, ...]
    feature: str | None
    window: WindowResult | None
    buckets: tuple[tuple[str, float, float], ...]  # label, reference share, window share
    distribution: Markup
    drift: Chart | None  # the chosen feature's deciding distance per window
    performance: tuple[Chart, ...]  # one chart per metric
    perf_rows: tuple[PerfRow, ...]
    triggers: tuple[JsonDict, ...]  # the triggers listening to this monitor (API views)
    runs: tuple[JsonDict, ...]  # their runs, newest first


def listens_to(trigger: Mapping[str, object], monitor: str) -> bool:
    """Whether a trigger's ``spec.on`` (``alert:`` or ``decay:``) names ``monitor``."""
    spec = trigger.get("spec")
    on = spec.get("on") if isinstance(spec, Mapping) else None
    if not isinstance(on, Mapping):
        return False
    return any(isinstance(v, Mapping) and v.get("monitor") == monitor for v in on.values())


def monitor_screen(
    status: MonitorStatus,
    windows: Sequence[WindowResult],
    *,
    version: str | None,
    feature: str | None,
    window: int | None,
    triggers: Sequence[JsonDict] = (),
    runs: Sequence[JsonDict] = (),
) -> MonitorScreen:
    """The screen for ``status`` and the stored ``windows`` of the selected ``version``.

    Raises:
        NotFoundError: ``feature`` or ``window`` names none of the version's windows (the
            message lists what there is); before the first window, any selection is kept.
    """
    versions = tuple(v.version for v in status.versions)
    chosen = tuple(windows)[-WINDOWS:]
    rows = tuple(_row(name, chosen) for name in _features(chosen))
    names = [r.feature for r in rows]
    # Before the first window closes a deep link's selection cannot be checked: it is kept,
    # and applies once windows arrive (the page is live).
    if feature is not None and feature not in names and chosen:
        raise NotFoundError(
            f"feature={shown(feature)} is not a feature of {status.name}"
            f"{f' version {version}' if version else ''}; its features are "
            f"{', '.join(names) or 'none yet'}."
        )
    selected: WindowResult | None = chosen[-1] if chosen else None
    if window is not None and chosen:
        found = [w for w in chosen if w.index == window]
        if not found:
            shown_range = f"{chosen[0].index} … {chosen[-1].index}" if chosen else "none yet"
            raise NotFoundError(
                f"window={window} is not one of the {len(chosen)} windows shown ({shown_range}); "
                "drop window= for the latest."
            )
        selected = found[0]
    if feature is None and rows:
        drifted = [r.feature for r in rows if r.cells and r.cells[-1].drifted]
        feature = drifted[0] if drifted else rows[0].feature
    buckets: tuple[tuple[str, float, float], ...] = ()
    distribution = Markup("")
    if selected is not None and feature is not None:
        f = _find(selected, feature)
        h = f.histogram if f is not None else None
        if h is not None:
            labels = _bucket_labels(h)
            buckets = tuple(zip(labels, h.reference, h.current, strict=False))
            distribution = Markup(bar_chart(
                labels, h.reference, h.current,
                label=f"{feature}: window {selected.index} (filled) vs reference (outlined), "
                "share per bucket",
            ))  # fmt: skip
    perf_rows = tuple(
        PerfRow(w.index, p, estimated)
        for w in chosen
        for estimated, values in ((False, w.performance), (True, w.estimated))
        for p in values
    )
    return MonitorScreen(
        status=status,
        versions=versions,
        version=version,
        windows=chosen,
        rows=rows,
        feature=feature,
        window=selected,
        buckets=buckets,
        distribution=distribution,
        drift=_drift(feature, rows),
        performance=_performance(chosen),
        perf_rows=perf_rows,
        triggers=tuple(triggers),
        runs=tuple(runs),
    )


def window_param(raw: str | None) -> int | None:
    """``?window=`` as a window index (0, 1, …), or None.

    Raises:
        InvalidInputError: not a whole number from 0.
    """
    if raw is None or raw == "":
        return None
    if not raw.isdigit():
        raise InvalidInputError(
            f"window={shown(raw)} is not a window index; use a whole number from 0."
        )
    return int(raw)


def _features(windows: Sequence[WindowResult]) -> list[str]:
    names: dict[str, None] = {}
    for w in windows:
        for f in w.features:
            names[f.name] = None
        if w.prediction is not None:
            names[w.prediction.name] = None
    return list(names)


def _find(w: WindowResult, name: str) -> FeatureResult | None:
    if w.prediction is not None and w.prediction.name == name:
        return w.prediction
    return w.feature(name)


def _row(name: str, windows: Sequence[WindowResult]) -> HeatRow:
    cells: list[HeatCell] = []
    kind, metric = "", None
    for w in windows:
        f = _find(w, name)
        check = f.primary if f is not None else None
        if f is None or check is None:
            why = "not in this window" if f is None else (f.reason or "not compared")
            cells.append(HeatCell(w.index, None, None, False, "none", f"window {w.index}: {why}"))
            continue
        kind, metric = f.kind, check.metric
        ratio = check.value / check.threshold if check.threshold > 0 else 0.0
        level = "bad" if f.drifted else "warn" if ratio >= 1 else "busy" if ratio >= 0.5 else "ok"
        note = (
            f"window {w.index}: {check.metric} {check.value:.3g} vs threshold "
            f"{check.threshold:.3g}{' (drifted)' if f.drifted else ''}"
        )
        cells.append(HeatCell(w.index, check.value, check.threshold, f.drifted, level, note))
    xs = tuple(float(c.index) for c in cells)
    line = Series(
        name, xs, tuple(c.value for c in cells), marks=tuple(c.drifted for c in cells)
    )
    spark = line_chart(
        [line],
        label=f"{name}: {metric or 'distance'} per window against its threshold (dashed)",
        threshold=(xs, tuple(c.threshold for c in cells)),
        width=240,
        height=90,
        x_is_time=False,
    )
    return HeatRow(name, kind, metric, tuple(cells), Markup(spark))


def _drift(feature: str | None, rows: Sequence[HeatRow]) -> Chart | None:
    row = next((r for r in rows if r.feature == feature), None)
    if row is None:
        return None
    metric = row.metric or "distance"
    return Chart(
        id="drift-chart",
        label=f"{row.feature}: {metric} per window (solid) against its threshold (dashed), "
        "drifted windows marked",
        y_label=metric,
        x=tuple(c.index for c in row.cells),
        lines=(
            Line(row.feature, tuple(c.value for c in row.cells)),
            Line("threshold", tuple(c.threshold for c in row.cells), "--bad-fg", dashed=True,
                 width=1.5),
            Line("drifted", tuple(c.value if c.drifted else None for c in row.cells),
                 "--bad-fg", width=0),
        ),
    )  # fmt: skip


def _performance(windows: Sequence[WindowResult]) -> tuple[Chart, ...]:
    """One chart per metric: realised from labels (solid) with its interval (thin), the CBPE
    estimate (dashed) with the reference's alert band (thin, dashed)."""
    names: dict[str, None] = {}
    for w in windows:
        for p in (*w.performance, *w.estimated):
            names[p.name] = None
    xs = tuple(w.index for w in windows)
    charts = []
    for i, name in enumerate(names):
        real = [next((p for p in w.performance if p.name == name), None) for w in windows]
        est = [next((p for p in w.estimated if p.name == name), None) for w in windows]

        def pick(values: list[PerformanceValue | None], field: str) -> tuple[float | None, ...]:
            return tuple(None if p is None else getattr(p, field) for p in values)

        lines = []
        if any(p is not None for p in real):
            color = f"--s{(2 * i) % 8}"
            lines += [
                Line(f"{name} (realised from labels)", pick(real, "value"), color),
                Line("interval, lower", pick(real, "lower"), color, width=0.75),
                Line("interval, upper", pick(real, "upper"), color, width=0.75),
            ]
        if any(p is not None for p in est):
            color = f"--s{(2 * i + 1) % 8}"
            lines += [
                Line(f"{name} (CBPE estimate)", pick(est, "value"), color, dashed=True),
                Line("alert band, lower", pick(est, "alert_lower"), "--bad-fg", True, 1.0),
                Line("alert band, upper", pick(est, "alert_upper"), "--bad-fg", True, 1.0),
            ]
        charts.append(Chart(
            id=f"perf-chart-{i}",
            label=f"{name} per window: realised from labels (solid, thin lines its interval) "
            "and the CBPE estimate (dashed, thin red lines its alert band)",
            y_label=name, x=xs, lines=tuple(lines),
        ))  # fmt: skip
    return tuple(charts)
