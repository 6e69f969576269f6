"""Rendering of deployments, revisions, replicas and events: rich for people, JSON/YAML for
machines (``-o json|yaml`` or ``--json``)."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import Any, TypeVar

import click
import yaml
from rich.table import Table

from loopline.cli.output import console
from loopline.controlplane.timestamps import epoch
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
    """Write one document to stdout in ``fmt`` (json or yaml)."""
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


def _status(d: dict[str, Any]) -> dict[str, Any]:
    status: dict[str, Any] = d.get("status") or {}
    return status


def endpoint(d: dict[str, Any]) -> str:
    router = _status(d).get("router")
    return str(router["url"]) if router else "<pending>"


def model_column(d: dict[str, Any]) -> str:
    model = _status(d).get("model") or {}
    ref, pinned = model.get("ref"), model.get("pinned")
    return str(ref) if ref == pinned else f"{ref} → {pinned}"


def deployments_table(items: list[dict[str, Any]]) -> Table:
    table = Table(box=None, header_style="bold")
    for col in ("NAME", "READY", "UP-TO-DATE", "AVAILABLE", "STATUS", "TRAFFIC", "MODEL",
                "ENDPOINT", "AGE"):  # fmt: skip
        table.add_column(col)
    for d in items:
        s, spec = _status(d), d["spec"]
        table.add_row(
            d["metadata"]["name"],
            f"{s.get('readyReplicas', 0)}/{spec['replicas']}",
            str(s.get("updatedReplicas", 0)),
            str(s.get("availableReplicas", 0)),
            str(s.get("phase", "-")),
            traffic_column(s),
            model_column(d),
            endpoint(d),
            age(d["metadata"].get("creationTimestamp")),
        )
    return table


def traffic_column(status: dict[str, Any]) -> str:
    """``stable 80 / canary 20 +mirror 50%`` while a canary runs; ``-`` otherwise."""
    traffic = status.get("traffic") or {}
    rollout = status.get("rollout") or {}
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


def templates_table(items: list[dict[str, Any]]) -> Table:
    """AnalysisTemplates: name, their metrics with provider and success condition, age."""
    table = Table(box=None, header_style="bold")
    for col in ("NAME", "METRICS", "AGE"):
        table.add_column(col)
    for t in items:
        metrics = [
            f"{m['name']} ({next(iter(m.get('provider') or {'?': 0}))}"
            + (f": {m['successCondition']}" if m.get("successCondition") else "")
            + ")"
            for m in t["spec"]["metrics"]
        ]
        table.add_row(t["metadata"]["name"], "\n".join(metrics),
                      age(t["metadata"].get("creationTimestamp")))  # fmt: skip
    return table


def replicas_table(items: list[dict[str, Any]]) -> Table:
    table = Table(box=None, header_style="bold")
    for col in ("NAME", "DEPLOYMENT", "REVISION", "MODEL", "PHASE", "READY", "PORT", "PID",
                "RESTARTS", "AGE"):  # fmt: skip
        table.add_column(col)
    for r in items:
        table.add_row(
            r["id"],
            r["deployment"],
            str(r.get("revisionNumber") or r["revision"]),
            str(r.get("model") or "-"),
            r["phase"],
            "1/1" if r["ready"] else "0/1",
            str(r.get("port") or "-"),
            str(r.get("pid") or "-"),
            str(r["restarts"]),
            age(r.get("createdAt")),
        )
    return table


def revisions_table(items: list[dict[str, Any]]) -> Table:
    table = Table(box=None, header_style="bold")
    for col in ("REVISION", "MODEL", "REFERENCE", "DIGEST", "REPLICAS", "CHANGE-CAUSE"):
        table.add_column(col)
    for r in sorted(items, key=lambda r: r["number"]):
        mark = " (current)" if r.get("current") else ""
        digest = str(r.get("digest") or "-")
        table.add_row(
            f"{r['number']}{mark}",
            r["model"],
            r["ref"],
            digest[:19],
            str(r["replicas"]),
            r.get("cause") or "<none>",
        )
    return table


def events_table(items: list[dict[str, Any]]) -> Table:
    table = Table(box=None, header_style="bold")
    for col in ("TYPE", "REASON", "AGE", "MESSAGE"):
        table.add_column(col)
    for e in items:
        style = "yellow" if e["type"] == "Warning" else ""
        table.add_row(e["type"], e["reason"], age(e["at"]), e["message"], style=style)
    return table


def describe(d: dict[str, Any], revisions: list[dict[str, Any]],
             replicas: list[dict[str, Any]], events: list[dict[str, Any]]) -> None:  # fmt: skip
    """Print a deployment the way ``kubectl describe deployment`` does."""
    spec, s = d["spec"], _status(d)
    model = s.get("model") or {}
    strategy = spec["strategy"]
    lines = [
        ("Name", d["metadata"]["name"]),
        ("Created", f"{age(d['metadata'].get('creationTimestamp'))} ago"),
        ("Generation", f"{d['metadata']['generation']} (observed {s.get('observedGeneration')})"),
        ("Model", model_column(d)),
        ("Digest", str(model.get("digest") or "-")),
        ("Endpoint", endpoint(d)),
        ("Replicas", f"{spec['replicas']} desired | {s.get('updatedReplicas', 0)} updated | "
                     f"{s.get('replicas', 0)} total | {s.get('availableReplicas', 0)} available | "
                     f"{s.get('unavailableReplicas', 0)} unavailable"),
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
    for c in s.get("conditions", []):
        conditions.add_row(c["type"], c["status"], c["reason"], c["message"])
    console.print(conditions)
    console.print("[bold]Revisions:[/]")
    console.print(revisions_table(revisions))
    console.print("[bold]Replicas:[/]")
    console.print(replicas_table(replicas) if replicas else "  <none>")
    console.print("[bold]Events:[/]")
    console.print(events_table(events) if events else "  <none>")
