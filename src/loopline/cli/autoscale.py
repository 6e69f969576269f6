"""``loopline autoscale``: the HPA-style autoscaler of deployments.

``loopline autoscale simulate --trace trace.csv -f deployment.yaml`` replays a load trace
against the deployment's ``spec.autoscaling`` on a fake clock (no processes, no control plane)
and shows the replica timeline, a chart of replicas and load, and the scale events: a way to
tune ``behavior`` before traffic does it for you.
"""

from __future__ import annotations

import math
from pathlib import Path

import click
from rich.table import Table
from rich.text import Text

from loopline.cli import kube
from loopline.cli.deploy import read_documents
from loopline.cli.output import console, handle_errors, json_option, print_json
from loopline.controlplane.views import strip_server_fields
from loopline.deploy.autoscaler_sim import (
    CapacityModel,
    LoadTrace,
    SimulationResult,
    TimelineRow,
    simulate,
)
from loopline.deploy.autoscaling import Autoscaling, MetricSpec, format_quantity
from loopline.deploy.spec import DeploymentSpec
from loopline.errors import InvalidDefinitionError, InvalidInputError
from loopline.types import Json, JsonDict

_EIGHTHS = " ▁▂▃▄▅▆▇█"


@click.group("autoscale")
def autoscale() -> None:
    """Autoscale deployments the way a Kubernetes HorizontalPodAutoscaler does."""


@autoscale.command("deployment")
@click.argument("name")
@click.option("--min", "min_replicas", type=click.IntRange(0), default=1, show_default=True,
              help="Fewest replicas (0: scale to zero when idle).")  # fmt: skip
@click.option("--max", "max_replicas", type=click.IntRange(1), default=None,
              help="Most replicas (required unless --off).")  # fmt: skip
@click.option("--cpu-percent", type=click.IntRange(1), default=None,
              help="Target CPU per replica, in percent of one core per worker.")  # fmt: skip
@click.option("--in-flight", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Target requests in flight per replica.")  # fmt: skip
@click.option("--rps", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Target requests per second per replica.")  # fmt: skip
@click.option("--off", is_flag=True, help="Stop autoscaling (the replica count stays).")
@kube.on_engine(kube.autoscale)
@handle_errors
def deployment_cmd(name: str, min_replicas: int, max_replicas: int | None,
                   cpu_percent: int | None, in_flight: float | None, rps: float | None,
                   off: bool) -> None:  # fmt: skip
    """Autoscale deployment NAME (kubectl autoscale): HPA v2 semantics, CPU 80 % by default."""
    from loopline.cli.connect import connect

    if off:
        with connect() as client:
            client.set_autoscaling(name, None)
        console.print(f"deployment/{name} autoscaling removed")
        return
    block = autoscaling_block(name=name, min_replicas=min_replicas, max_replicas=max_replicas,
                              cpu_percent=cpu_percent, in_flight=in_flight, rps=rps)
    with connect() as client:
        client.set_autoscaling(name, block)
    console.print(f"deployment/{name} autoscaled ({min_replicas}..{max_replicas} replicas)")


def autoscaling_block(*, name: str, min_replicas: int, max_replicas: int | None,
                      cpu_percent: int | None, in_flight: float | None,
                      rps: float | None) -> JsonDict:  # fmt: skip
    """The ``spec.autoscaling`` block of ``autoscale deployment``'s flags, checked."""
    if max_replicas is None:
        raise InvalidInputError("Pass --max N (the most replicas), or --off.")
    metrics: list[Json] = []
    if cpu_percent is not None:
        metrics.append(MetricSpec.cpu_utilization(cpu_percent).to_dict())
    for metric, target in (("in_flight_requests", in_flight), ("requests_per_second", rps)):
        if target is not None:
            goal: JsonDict = {"type": "AverageValue", "averageValue": target}
            metrics.append({"type": "Pods", "pods": {"metric": {"name": metric}, "target": goal}})
    block: JsonDict = {"minReplicas": min_replicas, "maxReplicas": max_replicas}
    if metrics:
        block["metrics"] = metrics
    Autoscaling.from_dict(block)  # fail here, naming the field, before reaching the server
    return block


@autoscale.command("simulate")
@click.option("--trace", "trace_path", required=True,
              help="CSV with the header 'seconds,requests_per_second'; each rate holds until "
                   "the next row.")  # fmt: skip
@click.option("-f", "--filename", required=True,
              help="A Deployment YAML with spec.autoscaling.")  # fmt: skip
@click.option("--capacity-rps", type=click.FloatRange(min=0, min_open=True), default=50.0,
              show_default=True,
              help="Requests per second one replica answers at 100% CPU.")  # fmt: skip
@click.option("--startup-seconds", type=click.FloatRange(min=0), default=20.0,
              show_default=True, help="Seconds from a replica's start to ready.")  # fmt: skip
@click.option("--sync-period", type=click.IntRange(min=1), default=15, show_default=True,
              help="Seconds between autoscaler syncs.")  # fmt: skip
@json_option
@handle_errors
def simulate_cmd(trace_path: str, filename: str, capacity_rps: float, startup_seconds: float,
                 sync_period: int, as_json: bool) -> None:  # fmt: skip
    """Replay a load trace against spec.autoscaling on a fake clock."""
    spec = _read_spec(filename)
    autoscaling = spec.autoscaling
    assert autoscaling is not None  # _read_spec checked it
    try:
        text = Path(trace_path).read_text()
    except OSError as exc:
        raise InvalidInputError(f"Cannot read trace {trace_path!r}: {exc.strerror}.") from None
    trace = LoadTrace.from_csv(text, source=trace_path)
    capacity = CapacityModel(capacity_rps=capacity_rps, workers=spec.template.workers,
                             startup_seconds=startup_seconds)  # fmt: skip
    result = simulate(autoscaling, trace, capacity, sync_period=float(sync_period),
                      initial_replicas=spec.replicas)  # fmt: skip
    if as_json:
        print_json({"deployment": spec.name, "autoscaling": autoscaling.to_dict(),
                    "capacityRps": capacity_rps, "startupSeconds": startup_seconds,
                    "syncPeriodSeconds": sync_period, **result.to_dict()})  # fmt: skip
        return
    _show(spec.name, autoscaling, trace, trace_path, capacity, result)


def _read_spec(filename: str) -> DeploymentSpec:
    docs = read_documents(filename)
    if len(docs) != 1:
        raise InvalidDefinitionError(
            f"{filename} holds {len(docs)} documents; simulate one Deployment at a time."
        )
    try:
        spec = DeploymentSpec.from_dict(strip_server_fields(docs[0]))
    except InvalidDefinitionError as exc:
        raise InvalidDefinitionError(f"{filename}: {exc}") from None
    if spec.autoscaling is None:
        raise InvalidDefinitionError(
            f"{filename}: Deployment field spec.autoscaling is missing; add a block such as "
            "'autoscaling: {minReplicas: 1, maxReplicas: 5}' (CPU target 80 % by default)."
        )
    return spec


def _show(name: str, spec: Autoscaling, trace: LoadTrace, trace_path: str,
          capacity: CapacityModel, result: SimulationResult) -> None:  # fmt: skip
    rows = result.timeline
    desired = [r.desired for r in rows] or [0]
    targets = ", ".join(_target(m) for m in spec.metrics)
    console.print(
        f"[bold]deployment/{name}[/] · {_clock(trace.duration)} of {Path(trace_path).name} · "
        f"{capacity.capacity_rps:g} rps per replica at 100% CPU · replicas "
        f"{spec.min_replicas}–{spec.max_replicas} · target {targets}"
    )
    shed = sum(r.shed for r in rows)
    console.print(
        f"{len(result.events)} scale events; replicas between {min(desired)} and "
        f"{max(desired)}; {shed:,} requests shed while replicas were saturated\n"
    )
    if rows:
        console.print(_chart(rows, max(20, min(console.width - 10, 120))))
        console.print(_table(rows))
    if result.events:
        console.print("[bold]Events[/]")
        for e in result.events:
            arrow = "[green]↑[/]" if e.after > e.before else "[yellow]↓[/]"
            console.print(f"  {_clock(e.t):>7}  {arrow} {e.before:>3} → {e.after:<3} {e.message}")


def _target(metric: MetricSpec) -> str:
    t = metric.target
    if t.average_utilization is not None:
        return f"{metric.name} {t.average_utilization}%"
    return f"{metric.name} {format_quantity(t.average_value or 0.0)}"


def _clock(seconds: float) -> str:
    s = int(seconds)
    if s < 3600:
        return f"{s // 60}:{s % 60:02d}"
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _chart(rows: tuple[TimelineRow, ...], width: int, height: int = 8) -> Text:
    """Replicas as bars (green ready, yellow starting) over a load sparkline, same time axis."""
    cols = min(width, len(rows))
    per = math.ceil(len(rows) / cols)
    buckets = [rows[i:i + per] for i in range(0, len(rows), per)]
    top = max(1, max(r.desired for r in rows))
    height = min(height, top)
    unit = top / height
    text = Text()
    text.append("replicas\n", style="bold")
    for level in range(height, 0, -1):
        label = f"{round(level * unit):>4} ┤" if level in (height, (height + 1) // 2) else "     │"
        text.append(label, style="dim")
        for b in buckets:
            want, ready = max(r.desired for r in b), min(r.ready for r in b)
            fill = min(1.0, max(0.0, want / unit - (level - 1)))
            char = _EIGHTHS[round(fill * 8)]
            style = "green" if ready / unit >= level - 0.5 else "yellow"
            text.append(char, style=style)
        text.append("\n")
    text.append("   0 └" + "─" * len(buckets) + "\n", style="dim")
    loads = [max(r.load_rps for r in b) for b in buckets]
    peak = max(loads) or 1.0
    text.append("load  ", style="bold")
    text.append("".join(_EIGHTHS[max(1, round(v / peak * 8)) if v > 0 else 0] for v in loads),
                style="magenta")  # fmt: skip
    text.append(f"  peak {peak:g} rps\n", style="dim")
    end = _clock(rows[-1].t)
    text.append("      0:00" + end.rjust(max(0, len(buckets) - 4)) + "\n", style="dim")
    return text


def _table(rows: tuple[TimelineRow, ...]) -> Table:
    """The first and last syncs, and every sync where desired or ready replicas changed.

    HELD: requests waiting for a first replica; SHED: requests refused since the previous line.
    """
    names = list(dict.fromkeys(n for r in rows for n, _ in r.metrics))
    held, shed = any(r.held for r in rows), any(r.shed for r in rows)
    caption = "metrics average the sync period before each time"
    table = Table(box=None, pad_edge=False, header_style="bold", caption=caption,
                  caption_style="dim")  # fmt: skip
    columns = ["TIME", "LOAD rps", "DESIRED", "READY", *(["HELD"] if held else []),
               *(["SHED"] if shed else [])]  # fmt: skip
    for col in [*columns, *[n.upper() for n in names]]:
        table.add_column(col, justify="right")
    previous: tuple[int, int] | None = None
    shed_since = 0
    for i, r in enumerate(rows):
        shed_since += r.shed
        key = (r.desired, r.ready)
        if key == previous and i != len(rows) - 1:
            continue
        previous = key
        values = dict(r.metrics)
        cells = [_num(values.get(n)) for n in names]
        extra = [f"{r.held:,}"] * held + [f"{shed_since:,}"] * shed
        shed_since = 0
        table.add_row(_clock(r.t), _num(r.load_rps), str(r.desired), str(r.ready), *extra, *cells)
    return table


def _num(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 100 or value == int(value):
        return f"{value:,.0f}"
    return f"{value:.1f}" if abs(value) >= 10 else f"{value:.2f}"
