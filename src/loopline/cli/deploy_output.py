"""Rendering of deployments, revisions, replicas and events: rich for people, JSON/YAML for
machines (``-o json|yaml`` or ``--json``)."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click
import yaml
from rich.table import Table

from loopline.cli.output import console
from loopline.controlplane import wire as w
from loopline.controlplane.timestamps import epoch
from loopline.controlplane.wire_codec import to_json
from loopline.errors import InvalidInputError

F = TypeVar("F", bound=Callable[..., Any])

KINDS = {"deployment": "deployment", "deployments": "deployment", "deploy": "deployment",
         "replica": "replica", "replicas": "replica",
         "analysistemplate": "analysistemplate", "analysistemplates": "analysistemplate",
         "at": "analysistemplate", "trigger": "trigger", "triggers": "trigger",
         "monitor": "monitor", "monitors": "monitor"}  # fmt: skip


def output_options(fn: F) -> F:
    """``-o/--output json|yaml`` and ``--json`` (same as ``-o json``)."""
    fn = click.option("--json", "as_json", is_flag=True, help="Same as -o json.")(fn)
    fn = click.option("-o", "--output", type=click.Choice(["json", "yaml"]), default=None,
                      help="Print machine-readable JSON or YAML.")(fn)  # fmt: skip
    return fn


def machine_format(output: str | None, as_json: bool) -> str | None:
    return "json" if as_json else output


def emit(value: Any, fmt: str) -> None:
    """Write one document (JSON, or wire types: their JSON) to stdout in ``fmt`` (json or
    yaml)."""
    value = to_json(value)
    if fmt == "yaml":
        sys.stdout.write(yaml.safe_dump(value, sort_keys=False))
    else:
        sys.stdout.write(json.dumps(value, indent=2) + "\n")


def split_resource(args: tuple[str, ...], want: str = "deployment") -> str:
    """``deployment NAME``, ``deployment/NAME`` or ``deploy/NAME`` → NAME."""
    if len(args) == 1 and "/" in args[0]:
        kind, _, name = args[0].partition("/")
    elif len(args) == 2:
        kind, name = args
    else:
        raise InvalidInputError(
            f"Name a {want} as '{want}/NAME' or '{want} NAME', not {' '.join(args)!r}."
        )
    if KINDS.get(kind) != want or not name:
        raise InvalidInputError(f"Expected a {want}, got {kind!r}; write '{want}/NAME'.")
    return name


def age(since: str | float | None) -> str:
    """kubectl-style age of an RFC 3339 timestamp (or epoch seconds): 42s, 7m, 3h, 2d."""
    if since is None:
        return "-"
    s = max(0, int(time.time() - (epoch(since) if isinstance(since, str) else since)))
    if s < 120:
        return f"{s}s"
    if s < 7200:
        return f"{s // 60}m"
    if s < 172800:
        return f"{s // 3600}h"
    return f"{s // 86400}d"


def endpoint(d: w.Deployment) -> str:
    router = d.status.router
    return router.url if router else "<pending>"


def model_column(d: w.Deployment) -> str:
    ref, pinned = d.status.model.ref, d.status.model.pinned
    return ref if ref == pinned else f"{ref} → {pinned}"


def deployments_table(items: Sequence[w.Deployment]) -> Table:
    table = Table(box=None, header_style="bold")
    for col in ("NAME", "READY", "UP-TO-DATE", "AVAILABLE", "STATUS", "TRAFFIC", "MODEL",
                "ENDPOINT", "AGE"):  # fmt: skip
        table.add_column(col)
    for d in items:
        s = d.status
        table.add_row(
            d.metadata.name,
            f"{s.ready_replicas}/{d.spec['replicas']}",
            str(s.updated_replicas),
            str(s.available_replicas),
            s.phase,
            traffic_column(s),
            model_column(d),
            endpoint(d),
            age(d.metadata.creation_timestamp),
        )
    return table


def traffic_column(status: w.DeploymentStatus) -> str:
    """``stable 80 / canary 20 +mirror 50%`` while a canary runs; ``-`` otherwise."""
    traffic = status.traffic
    rollout = status.rollout or {}
    weights = traffic.get("weights") or {}
    canary = rollout.get("canary")
    if not canary:
        return "-"
    label = {rollout.get("stable"): "stable", canary: "canary"}
    order = sorted(weights.items(), key=lambda hw: label.get(hw[0]) != "stable")
    parts = [f"{label.get(h, h)} {w}" for h, w in order]
    if traffic.get("mirror"):
        parts.append(f"+mirror {traffic['mirror']['percent']}%")
    if traffic.get("preview"):
        parts.append("+preview")
    if traffic.get("headerRoutes"):
        parts.append("+" + ",".join(r["name"] for r in traffic["headerRoutes"]))
    return " / ".join(parts[:2]) + (" " + " ".join(parts[2:]) if parts[2:] else "")


def templates_table(items: Sequence[w.Document]) -> Table:
    """AnalysisTemplates: name, their metrics with provider and success condition, age."""
    table = Table(box=None, header_style="bold")
    for col in ("NAME", "METRICS", "AGE"):
        table.add_column(col)
    for t in items:
        metrics = [
            f"{m['name']} ({next(iter(m.get('provider') or {'?': 0}))}"
            + (f": {m['successCondition']}" if m.get("successCondition") else "")
            + ")"
            for m in t.spec["metrics"]
        ]
        table.add_row(t.metadata.name, "\n".join(metrics), age(t.metadata.creation_timestamp))
    return table


def replicas_table(items: Sequence[w.Replica]) -> Table:
    table = Table(box=None, header_style="bold")
    for col in ("NAME", "DEPLOYMENT", "REVISION", "MODEL", "PHASE", "READY", "PORT", "PID",
                "RESTARTS", "AGE"):  # fmt: skip
        table.add_column(col)
    for r in items:
        table.add_row(
            r.id,
            r.deployment,
            str(r.revision_number or r.revision),
            r.model or "-",
            r.phase,
            "1/1" if r.ready else "0/1",
            str(r.port or "-"),
            str(r.pid or "-"),
            str(r.restarts),
            age(r.created_at),
        )
    return table


def revisions_table(items: Sequence[w.Revision]) -> Table:
    table = Table(box=None, header_style="bold")
    for col in ("REVISION", "MODEL", "REFERENCE", "DIGEST", "REPLICAS", "CHANGE-CAUSE"):
        table.add_column(col)
    for r in sorted(items, key=lambda r: r.number):
        mark = " (current)" if r.current else ""
        table.add_row(
            f"{r.number}{mark}",
            r.model,
            r.ref,
            (r.digest or "-")[:19],
            str(r.replicas),
            r.cause or "<none>",
        )
    return table


def events_table(items: Sequence[w.Event]) -> Table:
    table = Table(box=None, header_style="bold")
    for col in ("TYPE", "REASON", "AGE", "MESSAGE"):
        table.add_column(col)
    for e in items:
        style = "yellow" if e.type == "Warning" else ""
        table.add_row(e.type, e.reason, age(e.at), e.message, style=style)
    return table


def describe(d: w.Deployment, revisions: Sequence[w.Revision],
             replicas: Sequence[w.Replica], events: Sequence[w.Event]) -> None:  # fmt: skip
    """Print a deployment the way ``kubectl describe deployment`` does."""
    spec, s = d.spec, d.status
    strategy = spec["strategy"]
    lines = [
        ("Name", d.metadata.name),
        ("Created", f"{age(d.metadata.creation_timestamp)} ago"),
        ("Generation", f"{d.metadata.generation} (observed {s.observed_generation})"),
        ("Model", model_column(d)),
        ("Digest", s.model.digest or "-"),
        ("Endpoint", endpoint(d)),
        ("Replicas", f"{spec['replicas']} desired | {s.updated_replicas} updated | "
                     f"{s.replicas} total | {s.available_replicas} available | "
                     f"{s.unavailable_replicas} unavailable"),
        ("StrategyType", strategy["type"]),
    ]  # fmt: skip
    if "rollingUpdate" in strategy:
        ru = strategy["rollingUpdate"]
        lines.append(
            ("RollingUpdateStrategy",
             f"{ru['maxUnavailable']} max unavailable, {ru['maxSurge']} max surge")
        )  # fmt: skip
    lines += [
        ("MinReadySeconds", str(spec["minReadySeconds"])),
        ("ProgressDeadline", f"{spec['progressDeadlineSeconds']} s"),
        ("Paused", str(spec["paused"]).lower()),
        ("Workers", str(spec["template"]["workers"])),
    ]
    for key, value in lines:
        console.print(f"[bold]{key + ':':<23}[/]{value}", soft_wrap=True)
    conditions = Table(title="Conditions", title_justify="left", box=None, header_style="bold")
    for col in ("TYPE", "STATUS", "REASON", "MESSAGE"):
        conditions.add_column(col)
    for c in s.conditions:
        conditions.add_row(c.type, c.status, c.reason, c.message)
    console.print(conditions)
    console.print("[bold]Revisions:[/]")
    console.print(revisions_table(revisions))
    console.print("[bold]Replicas:[/]")
    console.print(replicas_table(replicas) if replicas else "  <none>")
    console.print("[bold]Events:[/]")
    console.print(events_table(events) if events else "  <none>")
