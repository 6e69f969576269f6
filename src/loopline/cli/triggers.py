"""``loopline triggers list|history NAME``: what the continuous-training loop did, and why.

Triggers are applied with ``loopline apply -f FILE`` (``kind: Trigger``) and run by the
control plane; these verbs read them back (also ``loopline get triggers``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import click
from rich.table import Table

from loopline.cli.connect import connect
from loopline.cli.deploy_output import age, emit, machine_format, output_options
from loopline.cli.output import console, handle_errors
from loopline.controlplane.timestamps import epoch
from loopline.controlplane.wire import Document, TriggerRun


def _source(spec: dict[str, Any]) -> str:
    (kind, body), *_ = spec["on"].items()
    if kind == "schedule":
        return f"schedule {body['cron']}"
    if kind == "newSpan":
        return f"newSpan {body['inputDir']}/{body['pattern']}"
    if kind == "registry":
        alias = f"@{body['alias']}" if body.get("alias") else ""
        return f"registry {body['model']}{alias} {body['event']}"
    what = ",".join(body.get("rules") or body.get("metrics") or [])
    return f"{kind} {body.get('monitor') or '*'}" + (f" [{what}]" if what else "")


def _when(t: str | float | None) -> str:
    """An RFC 3339 timestamp (or epoch seconds) in local time, to the second."""
    if t is None:
        return "-"
    seconds = epoch(t) if isinstance(t, str) else t
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(seconds))


def triggers_table(items: Sequence[Document]) -> Table:
    """Triggers: name, model, event source, cooldown, rollout, last run, age."""
    table = Table(box=None, header_style="bold")
    for col in ("NAME", "MODEL", "ON", "COOLDOWN", "ROLLOUT", "LAST RUN", "AGE"):
        table.add_column(col)
    for t in items:
        spec, status = t.spec, t.status or {}
        last = status.get("lastRun")
        rollout = spec.get("rollout")
        table.add_row(
            t.metadata.name,
            spec["model"],
            _source(spec),
            f"{spec.get('cooldown', 0):g}s",
            f"deployment/{rollout['deployment']}" if rollout else "-",
            f"#{last['id']} {last['state']}" if last else "-",
            age(t.metadata.creation_timestamp),
        )
    return table


def history_table(items: Sequence[TriggerRun]) -> Table:
    """A trigger's runs: id, state, cause, parameters, started, ended, message."""
    table = Table(box=None, header_style="bold")
    for col in ("RUN", "STATE", "CAUSE", "PARAMS", "STARTED", "ENDED", "MESSAGE"):
        table.add_column(col, overflow="fold")
    for r in items:
        params = " ".join(f"{k}={v}" for k, v in r.params.items())
        table.add_row(
            str(r.id),
            r.state,
            str(r.cause.get("summary", r.key)),
            params or "-",
            _when(r.created_at),
            _when(r.ended_at),
            r.message or "",
        )
    return table


@click.group("triggers")
def triggers() -> None:
    """Triggers of the continuous-training loop (apply them with loopline apply -f)."""


@triggers.command("list")
@output_options
@handle_errors
def list_cmd(output: str | None, as_json: bool) -> None:
    """Every Trigger with its source, cooldown, rollout and last run."""
    with connect() as client:
        items = client.list_triggers()
    fmt = machine_format(output, as_json)
    if fmt is not None:
        emit({"items": items}, fmt)
    elif not items:
        console.print("No triggers found. Apply one with: loopline apply -f trigger.yaml")
    else:
        console.print(triggers_table(items))


@triggers.command("history")
@click.argument("name")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1),
              help="Show at most this many runs, newest first.")  # fmt: skip
@output_options
@handle_errors
def history(name: str, limit: int, output: str | None, as_json: bool) -> None:
    """The runs trigger NAME started: what caused each, its parameters and how it ended."""
    if "/" in name:
        name = name.partition("/")[2]
    with connect() as client:
        items = client.trigger_history(name, limit)
    fmt = machine_format(output, as_json)
    if fmt is not None:
        emit({"items": items}, fmt)
    elif not items:
        console.print(f"Trigger {name!r} has started no run yet.")
    else:
        console.print(history_table(items))
