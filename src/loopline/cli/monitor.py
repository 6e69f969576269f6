"""``loopline monitor status NAME`` and ``loopline monitor report NAME -o report.html``.

Monitors are applied with ``loopline apply -f FILE`` (``kind: Monitor``) and run by the
control plane; ``status`` prints where one stands (``--json``: the MonitorStatus document),
``report`` writes the self-contained HTML report of its stored windows. ``loopline get
monitors`` lists them (:func:`monitors_table`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from loopline.cli.connect import connect
from loopline.cli.deploy_output import age, emit
from loopline.cli.output import console, handle_errors
from loopline.controlplane.timestamps import read_back, shown
from loopline.controlplane.wire import Document
from loopline.monitor import (
    FeatureDrift,
    MonitorStatus,
    PerformanceValue,
    VersionStatus,
    WindowResult,
)

BLOCKS = " ▏▎▍▌▋▊▉█"
SPARKS = "▁▂▃▄▅▆▇█"
BAR_CELLS = 10  # the threshold sits at the middle: a full bar is twice the threshold


def bar(ratio: float | None) -> str:
    """value/threshold as a bar of :data:`BAR_CELLS` cells (the threshold is half-way)."""
    if ratio is None or not math.isfinite(ratio):
        return ""
    eighths = round(min(max(ratio, 0.0), 2.0) / 2.0 * BAR_CELLS * 8)
    full, rest = divmod(eighths, 8)
    return ("█" * full + (BLOCKS[rest] if rest else "")).ljust(BAR_CELLS)


def sparkline(values: Sequence[float | None], ceiling: float | None = None) -> str:
    """One character per value, scaled from 0 to the largest value (or ``ceiling``)."""
    known = [v for v in values if v is not None and math.isfinite(v)]
    top = max([*known, ceiling or 0.0]) or 1.0
    out = []
    for v in values:
        if v is None or not math.isfinite(v):
            out.append(" ")
        else:
            out.append(SPARKS[min(len(SPARKS) - 1, int(max(v, 0.0) / top * (len(SPARKS) - 1)))])
    return "".join(out)


def _when(t: float | None) -> str:
    return "-" if t is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def _window(doc: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in doc.items())


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:.4g}"


def monitors_table(items: Sequence[Document]) -> Table:
    """Monitors: name, deployment, versions, windows, drifted features, alerts firing, age."""
    table = Table(box=None, header_style="bold")
    for col in ("NAME", "DEPLOYMENT", "VERSION", "WINDOWS", "DRIFTED", "ALERTS", "AGE"):
        table.add_column(col)
    for m in items:
        status = MonitorStatus.from_dict(read_back(m.status))
        latest = _latest(status.versions)
        drifted = f"{len(latest.drifted)}/{len(latest.features)}" if latest else "-"
        table.add_row(
            escape(status.name),
            escape(status.deployment),
            ",".join(v.version for v in status.versions) or "-",
            str(status.windows),
            drifted,
            str(len(status.firing)) if not status.error else f"{len(status.firing)} (error)",
            age(m.metadata.creation_timestamp),
        )
    return table


def _latest(versions: Sequence[VersionStatus]) -> VersionStatus | None:
    closed = [v for v in versions if v.end_ts is not None]
    return max(closed, key=lambda v: v.end_ts or 0.0) if closed else None


def _feature_row(table: Table, f: FeatureDrift, label: str | None = None) -> None:
    if f.reason is not None:
        name = escape(label or f.name)
        table.add_row(name, f.kind, "-", "-", "-", "", "", f"[dim]{escape(f.reason)}[/]")
        return
    verdict = "[red]DRIFTED[/]" if f.drifted else "[green]ok[/]"
    threshold = _num(f.threshold) + (" (calibrated)" if f.calibrated else "")
    ratio = f.ratio
    style = "red" if f.drifted else "cyan"
    shown = f"[{style}]{bar(ratio)}[/] {ratio:.2f}×" if ratio is not None else ""
    table.add_row(
        escape(label or f.name),
        f.kind,
        f.metric or "-",
        _num(f.value),
        threshold,
        shown,
        sparkline(f.history, f.threshold),
        verdict,
    )


def _drift_table(v: VersionStatus) -> Table:
    table = Table(box=None, header_style="bold")
    for col in ("FEATURE", "KIND", "METRIC", "VALUE", "THRESHOLD", "VALUE/THRESHOLD", "HISTORY"):
        table.add_column(col)
    table.add_column("")
    for f in v.features:
        _feature_row(table, f)
    if v.prediction is not None:
        _feature_row(table, v.prediction, "(prediction)")
    return table


def _perf(p: PerformanceValue | None) -> str:
    if p is None:
        return "-"
    if p.value is None:
        return f"[dim]{escape(p.reason or 'no value')}[/]"
    if p.lower is None or p.upper is None:
        return f"{p.value:.4f}"
    return escape(f"{p.value:.4f} [{p.lower:.4f}, {p.upper:.4f}]")


def _performance_table(v: VersionStatus) -> Table | None:
    names = list(dict.fromkeys(p.name for p in (*v.performance, *v.estimated)))
    if not names:
        return None
    table = Table(box=None, header_style="bold")
    for col in ("METRIC", "REALISED (labels) [interval]", "N", "ESTIMATED (CBPE) [band]"):
        table.add_column(escape(col))
    real = {p.name: p for p in v.performance}
    est = {p.name: p for p in v.estimated}
    for name in names:
        r = real.get(name)
        table.add_row(
            name,
            _perf(r),
            str(r.n) if r is not None and r.value is not None else "-",
            _perf(est.get(name)),
        )
    return table


def print_status(status: MonitorStatus) -> None:
    """The human form of ``monitor status``."""
    console.print(
        f"[bold]Monitor {escape(status.name)}[/]  deployment [bold]{escape(status.deployment)}[/]"
        f" · model [bold]{escape(status.model or '?')}[/] · window {_window(status.window)}"
    )
    console.print(
        f"Rows ingested {status.rows:,} · labels {status.labels:,} · windows {status.windows} · "
        f"last window {_when(status.last_window_at)} · last tick {_when(status.last_tick_at)}"
    )
    if status.error:
        console.print(f"[red]error:[/] {escape(status.error)}")
    if not status.versions:
        console.print("No prediction has been read yet.")
    for v in status.versions:
        console.print()
        if v.last_index is None:
            console.print(f"[bold]Version {v.version}[/]: no window has closed yet.")
            continue
        console.print(
            f"[bold]Version {v.version}[/] · window {v.last_index} ({v.rows:,} rows, "
            f"{_when(v.start_ts)} → {_when(v.end_ts)}) · drifted {len(v.drifted)}/"
            f"{len(v.features)}"
            + (f" · [red]{v.violations} schema violation(s)[/]" if v.violations else "")
        )
        console.print(_drift_table(v))
        perf = _performance_table(v)
        if perf is not None:
            console.print(perf)
    console.print()
    if not status.firing and not status.resolved:
        console.print("Alerts: none.")
        return
    table = Table(box=None, header_style="bold", title_justify="left")
    for col in ("ALERT", "RULE", "VERSION", "WINDOWS", "SEVERITY", "AT", "REASON"):
        table.add_column(col, overflow="fold")
    for a in (*status.firing, *status.resolved):
        state = "[red]firing[/]" if a.state == "firing" else "[yellow]resolved[/]"
        table.add_row(
            state,
            escape(a.rule),
            a.version,
            f"{a.first_window}–{a.last_window}",
            escape(a.severity),
            _when(a.at),
            escape(a.reason),
        )
    console.print(table)


@click.group("monitor")
def monitor() -> None:
    """Monitors of deployed models (apply them with loopline apply -f)."""


@monitor.command("status")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the MonitorStatus document.")
@handle_errors
def status_cmd(name: str, as_json: bool) -> None:
    """Where monitor NAME stands: windows, drift per feature, performance, alerts."""
    name = name.partition("/")[2] if "/" in name else name
    with connect() as client:
        doc = client.get_monitor(name)
    status = MonitorStatus.from_dict(read_back(doc.status))
    if as_json:
        emit(shown(status.to_dict()), "json")
        return
    print_status(status)


@monitor.command("report")
@click.argument("name")
@click.option("-o", "--output", "path", required=True, type=click.Path(dir_okay=False),
              help="The HTML file to write (replaced atomically).")  # fmt: skip
@click.option("--windows", "limit", default=500, show_default=True, type=click.IntRange(1),
              help="Plot at most the newest N windows of each version.")  # fmt: skip
@handle_errors
def report_cmd(name: str, path: str, limit: int) -> None:
    """Write the self-contained HTML report of monitor NAME (no network needed to read it)."""
    from loopline.monitor import render_report, write_report

    name = name.partition("/")[2] if "/" in name else name
    with connect() as client:
        status = MonitorStatus.from_dict(read_back(client.get_monitor(name).status))
        windows = [
            WindowResult.from_dict(read_back(w))
            for v in status.versions
            for w in client.monitor_windows(name, version=v.version, limit=limit)
        ]
    written = write_report(path, render_report(status, windows, generated_at=time.time()))
    console.print(
        f"Wrote {written} ({len(windows)} window(s), {len(status.versions)} version(s)).",
        soft_wrap=True,
    )
