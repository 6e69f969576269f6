"""The continuous-training act of the demo (``./scripts/demo``): monitor → measure → retrain →
serve, with nobody at the keyboard.

The champion (trained on January–March) serves April's trips; each answer's label (did the
rider tip?) comes back a few seconds later. The monitor finds that trips got longer (real
drift: the data's own), its alert fires the trigger, the trigger retrains on the data to date,
the Evaluator blesses the new model against the current one, the deployment rolls it out as a
canary with model-aware analysis, and ``champion`` moves when the canary ends Healthy.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loop_traffic import Counts, LabelledTraffic
from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from loopline.cli.connect import connect
from loopline.cli.deploy_output import traffic_column
from loopline.controlplane.client import ControlPlaneClient
from loopline.controlplane.wire_codec import to_json

TERMINAL = {"promoted", "aborted", "notBlessed", "blocked", "failed", "succeeded"}


@dataclass
class Timeline:
    """What happened, when (seconds since the traffic started), in order."""

    start: float = field(default_factory=time.monotonic)
    events: list[tuple[float, str, str]] = field(default_factory=list)

    def add(self, console: Console, what: str, detail: str) -> None:
        at = time.monotonic() - self.start
        self.events.append((at, what, detail))
        console.print(f"[dim]{at:6.1f} s[/] [bold]{what}[/] {detail}", highlight=False)

    def table(self) -> Table:
        table = Table(title="the loop, as it happened", title_justify="left")
        table.add_column("t", justify="right")
        table.add_column("what", style="bold")
        table.add_column("detail")
        for at, what, detail in self.events:
            table.add_row(f"{at:.0f} s", what, detail)
        return table


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path) as fh:
        return list(csv.DictReader(fh))


def _window_line(v: dict[str, Any]) -> str:
    """A version's last window: drifted features and the performance."""
    drifted = [
        f"{f['name']} {f['value']:.3f} ≥ {f['threshold']:.3f}"
        for f in v.get("features", [])
        if f.get("drifted") and f.get("value") is not None and f.get("threshold") is not None
    ]
    perf = [
        f"{how} {p['value']:.3f}"
        for how, key in (("accuracy", "performance"), ("CBPE estimate", "estimated"))
        for p in v.get(key) or []
        if p.get("value") is not None and p.get("name") == "accuracy"
    ]
    return (
        f"taxi/{v['version']} window {v['windows']}: "  # windows closed so far
        f"{'drifted: ' + ', '.join(drifted) if drifted else 'no drift'}"
        f"{' · ' + ', '.join(perf) if perf else ''}"
    )


class Watcher:
    """Polls the control plane (read-only) and records every change in the timeline."""

    def __init__(self, client: ControlPlaneClient, console: Console, timeline: Timeline) -> None:
        self.client, self.console, self.timeline = client, console, timeline
        self.windows: dict[str, int] = {}
        self.alerts: set[str] = set()
        self.runs: dict[int, str] = {}
        self.rollout = ""
        self.done: dict[str, Any] | None = None

    def poll(self) -> None:
        add: Callable[[str, str], None] = lambda w, d: self.timeline.add(self.console, w, d)  # noqa: E731
        status = self.client.get_monitor("taxi").status or {}
        for v in status.get("versions") or []:
            if int(v.get("windows") or 0) > self.windows.get(v["version"], 0):
                self.windows[v["version"]] = int(v["windows"])
                add("monitor", _window_line(v))
        for alert in status.get("firing") or []:
            key = f"{alert['id']}"
            if key not in self.alerts:
                self.alerts.add(key)
                add("ALERT", f"{alert['rule']} fired on taxi/{alert['version']}: {alert['reason']}")
        for run in self.client.trigger_history("taxi-drift"):
            state = run.state
            if self.runs.get(run.id) != state:
                self.runs[run.id] = state
                detail = run.message or run.cause.get("summary", "")
                add(f"trigger run {run.id}", f"{state}: {detail}")
                if state in TERMINAL:
                    self.done = to_json(run)
        deployment = self.client.get_deployment("taxi").status
        rollout = deployment.rollout or {}
        weights = traffic_column(deployment)
        now = " · ".join(
            x for x in (deployment.phase, rollout.get("message"), weights) if x and x != "-"
        )
        if now != self.rollout:
            self.rollout = now
            add("deployment", now)


def close_the_loop(
    env: dict[str, str], workspace: Path, url: str, console: Console, limit: float = 600.0
) -> tuple[Timeline, Counts]:
    """Serve April's second half while the loop runs; return when the trigger's run ended
    (and its rollout settled) or after ``limit`` seconds."""
    import taxi_data

    data = Path(env["TAXI_DATA_DIR"])
    april = taxi_data.trips("Apr")
    half = len(april) // 2
    # The first half of April has been labelled and lands with everything before it as span 3
    # (the trips table to date); the second half is served now, its labels trickling in.
    to_date = taxi_data.trips("Jan", "Feb", "Mar")
    import pandas as pd

    taxi_data.write_span(data, 3, pd.concat([to_date, april.iloc[:half]], ignore_index=True))
    console.print(
        f"span 3 landed: {len(to_date) + half} labelled trips to date (January to mid-April); "
        f"now serving April's second half ({len(april) - half} trips, 4 per request), each "
        "label 3 s after its answer"
    )
    rows = [
        {k: str(v) for k, v in r.items()} for r in april.iloc[half:].to_dict(orient="records")
    ]
    timeline = Timeline()
    with connect() as client, LabelledTraffic(url, rows, limit=limit + 30) as traffic:
        watcher = Watcher(client, console, timeline)
        deadline = time.monotonic() + limit
        settled = 0
        while time.monotonic() < deadline:
            time.sleep(2.0)
            watcher.poll()
            if watcher.done is not None and watcher.rollout.startswith(("Healthy", "Degraded")):
                settled += 1
                if settled >= 3:  # a few more seconds of traffic on the promoted model
                    break
        counts = traffic.snapshot()
    return timeline, counts


def summary(timeline: Timeline, counts: Counts, console: Console) -> None:
    console.print(timeline.table())
    style = "green" if not counts.failures else "red"
    console.print(Panel(
        f"{counts.requests} requests ({counts.trips} trips), answered by {dict(counts.versions)}\n"
        f"failed: {sum(counts.failures.values())} {dict(counts.failures) or ''}\n"
        f"labels posted: {counts.labels_sent} (failed posts: {counts.label_failures})",
        title="traffic during the loop", style=style,
    ))  # fmt: skip
