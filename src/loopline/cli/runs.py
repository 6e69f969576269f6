"""``loopline runs list|show|diff|why`` and ``loopline why-rerun``."""

from __future__ import annotations

import click
from rich.table import Table

from loopline.cli.output import console, handle_errors, json_option, print_json
from loopline.pipeline.runs import RunHistory, RunRecord
from loopline.platform import Platform

_STATUS_STYLE = {
    "succeeded": "green",
    "complete": "green",
    "cached": "blue",
    "failed": "red",
    "blocked": "yellow",
    "canceled": "yellow",
    "running": "cyan",
    "crashed": "red",
}


def _styled(status: str) -> str:
    return f"[{_STATUS_STYLE.get(status, 'white')}]{status}[/]"


@click.group("runs")
def runs() -> None:
    """Inspect pipeline runs."""


@runs.command("list")
@click.option("--pipeline", default=None, help="Only runs of this pipeline.")
@click.option("--limit", default=20, show_default=True, help="How many runs, newest first.")
@json_option
@handle_errors
def list_runs(pipeline: str | None, limit: int, as_json: bool) -> None:
    """List recent runs with their steps."""
    with Platform.from_env() as platform:
        records = RunHistory(platform.metadata).recent(pipeline=pipeline, limit=limit)
    if as_json:
        print_json([r.to_json() for r in records])
        return
    table = Table(title="runs")
    for col in ("id", "name", "pipeline", "status", "steps", "cached", "started"):
        table.add_column(col)
    for r in records:
        table.add_row(
            str(r.id),
            r.name,
            r.pipeline,
            _styled(r.status),
            str(len(r.steps)),
            str(sum(s.cached for s in r.steps)),
            (r.started_at or "")[:19],
        )
    console.print(table)


def _render(record: RunRecord) -> None:
    console.print(
        f"run [bold]{record.name}[/] (id {record.id}) of pipeline {record.pipeline}: "
        f"{_styled(record.status)}"
    )
    if record.parameters:
        console.print(
            "parameters: " + ", ".join(f"{k}={v!r}" for k, v in record.parameters.items())
        )
    table = Table()
    for col in ("step", "status", "execution", "inputs", "outputs", "metrics", "error"):
        table.add_column(col, overflow="fold")
    for s in record.steps:
        table.add_row(
            s.name,
            _styled(s.status),
            str(s.execution_id),
            ", ".join(f"{k}=#{v}" for k, v in s.inputs.items()),
            ", ".join(f"{k}=#{v}" for k, v in s.outputs.items()),
            ", ".join(f"{k}={v:.4g}" for k, v in s.metrics.items()),
            s.error or "",
        )
    console.print(table)


@runs.command("show")
@click.argument("run", default="latest")
@json_option
@handle_errors
def show_run(run: str, as_json: bool) -> None:
    """Show one run (id, name or 'latest') and its steps."""
    with Platform.from_env() as platform:
        record = RunHistory(platform.metadata).show(run)
    if as_json:
        print_json(record.to_json())
    else:
        _render(record)


@runs.command("diff")
@click.argument("run_a")
@click.argument("run_b")
@json_option
@handle_errors
def diff_runs(run_a: str, run_b: str, as_json: bool) -> None:
    """What differs between two runs: parameters, code, inputs, metrics, status per step."""
    with Platform.from_env() as platform:
        diff = RunHistory(platform.metadata).diff(run_a, run_b)
    if as_json:
        print_json(diff)
        return
    console.print(f"[bold]{diff['a']}[/] → [bold]{diff['b']}[/]")
    params = diff["parameters"]
    if isinstance(params, dict) and params:
        for k, v in params.items():
            if isinstance(v, list):
                console.print(f"  parameter {k}: {v[0]!r} → {v[1]!r}")
    steps = diff["steps"]
    if not steps:
        console.print("  no step differs")
    if isinstance(steps, dict):
        for name, entry in steps.items():
            console.print(f"  [bold]{name}[/]")
            if isinstance(entry, dict):
                for key, value in entry.items():
                    if key == "changes" and isinstance(value, list):
                        for line in value:
                            console.print(f"    {line}")
                    elif key == "metrics" and isinstance(value, dict):
                        for m, pair in value.items():
                            if isinstance(pair, list):
                                console.print(f"    metric {m}: {pair[0]} → {pair[1]}")
                    else:
                        console.print(f"    {key}: {value}")


def _why(run: str, step: str, as_json: bool) -> None:
    with Platform.from_env() as platform:
        reasons = RunHistory(platform.metadata).why(run, step)
    if as_json:
        print_json({"run": run, "step": step, "reasons": list(reasons)})
        return
    for line in reasons:
        console.print(f"• {line}")


@runs.command("why")
@click.argument("run")
@click.argument("step")
@json_option
@handle_errors
def why(run: str, step: str, as_json: bool) -> None:
    """Explain why STEP ran (or came from the cache) in RUN ('latest' works)."""
    _why(run, step, as_json)


@click.command("why-rerun")
@click.argument("step")
@click.option("--run", default="latest", show_default=True, help="The run to explain.")
@json_option
@handle_errors
def why_rerun(step: str, run: str, as_json: bool) -> None:
    """Explain why STEP ran again: which part of its cache key changed."""
    _why(run, step, as_json)
