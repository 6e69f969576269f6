"""``loopline lineage REF``: the lineage graph around an artifact, execution or model, and
the trace of one served prediction (``prediction/ID``) or one alias move
(``promotion/MODEL/ALIAS[/N]``) back to the run, data, code and alerts behind it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from loopline.cli.output import console, handle_errors, json_option, print_json
from loopline.errors import InvalidInputError
from loopline.metadata import Direction, EventType, LineageGraph, MetadataStore
from loopline.platform import Platform
from loopline.types import ModelRef

if TYPE_CHECKING:
    from rich.tree import Tree

    from loopline.cli.trace import ModelTrace, PredictionTrace, PromotionTrace

GRAPH_HOPS = 6


def _start(platform: Platform, ref: str) -> tuple[int | None, int | None]:
    """(artifact_id, execution_id) for ``12``, ``artifact:12``, ``execution:7``, ``taxi@champion``
    or ``taxi/3``."""
    kind, sep, rest = ref.partition(":")
    if sep and kind in ("artifact", "a") and rest.isdigit():
        return int(rest), None
    if sep and kind in ("execution", "e") and rest.isdigit():
        return None, int(rest)
    if ref.isdigit():
        return int(ref), None
    if "@" in ref or "/" in ref:
        return platform.registry.resolve(ModelRef.parse(ref)).artifact.id, None
    raise InvalidInputError(
        f"Lineage reference {ref!r} is not understood; use an artifact id (12), artifact:12, "
        "execution:7, or a model reference such as taxi@champion or taxi/3."
    )


def _tree(
    md: MetadataStore,
    graph: LineageGraph,
    root: str,
    direction: Direction,
    parent: Tree | None = None,
) -> Tree:
    """The walk from ``root`` as a tree (a new one, or a branch added under ``parent``)."""
    from rich.tree import Tree

    arts = {a.id: a for a in graph.artifacts}
    execs = {e.id: e for e in graph.executions}

    def label(node: str) -> str:
        kind, ident = node[0], int(node[2:])
        if kind == "a" and ident in arts:
            a = arts[ident]
            return f"[cyan]{a.type_name}[/] #{a.id} {a.name or ''} [dim]{a.state.value}[/]"
        if kind == "e" and ident in execs:
            e = execs[ident]
            return f"[magenta]{e.type_name}[/] exec #{e.id} {e.name or ''} [dim]{e.state.value}[/]"
        return node

    # Edges oriented away from the start: upstream goes output→producer→its inputs.
    children: dict[str, list[str]] = {}
    for ev in graph.events:
        a, e = f"a:{ev.artifact_id}", f"e:{ev.execution_id}"
        produced = ev.type is EventType.OUTPUT
        if direction is not Direction.DOWNSTREAM:
            (
                children.setdefault(a, []).append(e)
                if produced
                else children.setdefault(e, []).append(a)
            )
        if direction is not Direction.UPSTREAM:
            (
                children.setdefault(e, []).append(a)
                if produced
                else children.setdefault(a, []).append(e)
            )
    tree = Tree(label(root)) if parent is None else parent.add(label(root))
    seen = {root}

    def grow(node: str, branch: Tree) -> None:
        for child in sorted(set(children.get(node, []))):
            if child in seen:
                continue
            seen.add(child)
            grow(child, branch.add(label(child)))

    grow(root, tree)
    return tree


@click.command("lineage")
@click.argument("ref")
@click.option(
    "--direction",
    type=click.Choice(["up", "down", "both"]),
    default="up",
    show_default=True,
    help="Walk towards inputs (up), derived outputs (down), both (graph references only).",
)
@click.option(
    "--hops",
    type=click.IntRange(min=0),
    default=None,
    help=f"Maximum number of edges walked [default: {GRAPH_HOPS}; 10 upstream of a model "
    "version in a prediction or promotion trace].",
)
@click.option(
    "--log-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Prediction log directory searched for prediction/ID [default: $LOOPLINE_HOME/"
    "predictions, where the control plane's replicas log].",
)
@json_option
@handle_errors
def lineage(
    ref: str, direction: str, hops: int | None, log_dir: Path | None, as_json: bool
) -> None:
    """Show where REF came from (or what was made from it) as a tree.

    REF is an artifact (12, artifact:12), an execution (execution:7), a model version
    (taxi@champion, taxi/3), a served prediction (prediction/REQUEST_ID: the x-request-id
    header or the V2 response id) or an alias move (promotion/taxi/champion for its latest
    move, promotion/taxi/champion/2 for its second).
    """
    if ref.startswith("prediction/"):
        _prediction(ref.removeprefix("prediction/"), hops, log_dir, as_json)
        return
    if ref.startswith("promotion/"):
        _promotion(ref, hops, as_json)
        return
    d = {"up": Direction.UPSTREAM, "down": Direction.DOWNSTREAM, "both": Direction.BOTH}[direction]
    with Platform.from_env() as platform:
        artifact_id, execution_id = _start(platform, ref)
        graph = platform.metadata.lineage(
            artifact_id=artifact_id,
            execution_id=execution_id,
            direction=d,
            hops=GRAPH_HOPS if hops is None else hops,
        )
        if as_json:
            from loopline.cli.trace import graph_json

            print_json(graph_json(graph))
            return
        root = f"a:{artifact_id}" if artifact_id is not None else f"e:{execution_id}"
        console.print(_tree(platform.metadata, graph, root, d))


def _prediction(request_id: str, hops: int | None, log_dir: Path | None, as_json: bool) -> None:
    from loopline.cli.trace import UPSTREAM_HOPS, prediction_json, trace_prediction

    with Platform.from_env() as platform:
        directory = log_dir if log_dir is not None else platform.settings.home / "predictions"
        trace = trace_prediction(
            platform.metadata,
            platform.registry,
            directory,
            request_id,
            hops=UPSTREAM_HOPS if hops is None else hops,
        )
        if as_json:
            print_json(prediction_json(trace))
            return
        console.print(_prediction_tree(platform.metadata, trace))


def _promotion(ref: str, hops: int | None, as_json: bool) -> None:
    from loopline.cli.trace import UPSTREAM_HOPS, parse_promotion, promotion_json, trace_promotion

    name, alias, number = parse_promotion(ref)
    with Platform.from_env() as platform:
        trace = trace_promotion(
            platform.metadata,
            platform.registry,
            name,
            alias,
            number,
            hops=UPSTREAM_HOPS if hops is None else hops,
        )
        if as_json:
            print_json(promotion_json(trace))
            return
        console.print(_promotion_tree(platform.metadata, trace))


def _when(value: object) -> str:
    from datetime import datetime

    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if isinstance(value, datetime) else "?"


def _model_branch(md: MetadataStore, t: ModelTrace, tree: Tree) -> None:
    from rich.markup import escape

    mv = t.version
    node = tree.add(
        f"[bold]model version[/] {escape(mv.name)}/{mv.version} → [cyan]Model[/] #{t.model.id} "
        f"[dim]{escape((t.model.digest or 'no digest')[:19])} {escape(t.model.uri)}[/]"
    )
    if t.producers:
        first = t.producers[0]
        run = next((c.name for c in t.contexts if c.type_name == "run"), None)
        made = node.add(
            f"[magenta]{escape(first.type_name)}[/] exec #{first.id} {escape(first.name or '')} "
            f"[dim]{first.state.value}[/]"
            + (f" in pipeline run [bold]{escape(run)}[/]" if run else "")
        )
        code = first.properties.get("code_fingerprint")
        if code is not None:
            made.add(f"code fingerprint {escape(str(code))}")
        made.add(f"parameters {escape(str(first.properties.get('parameters', {})))}")
        for cached in t.producers[1:]:
            made.add(f"[dim]also output of exec #{cached.id} ({cached.state.value})[/]")
    else:
        node.add("[yellow]no recorded producer (registered from outside a pipeline)[/]")
    for a in t.data:
        spans = a.properties.get("spans", a.properties.get("span"))
        node.add(f"data: [cyan]{escape(a.type_name)}[/] #{a.id} spans {escape(str(spans))}")
    if t.aliases:
        node.add(f"aliases now: [bold]{escape(', '.join(t.aliases))}[/]")
    for m in t.moves:
        evidence = ", ".join(f"#{e}" for e in m.evidence)
        node.add(
            f"alias move exec #{m.execution_id}: {escape(m.alias)} "
            f"{m.from_version or '-'} → {m.to_version or '-'} by {escape(m.who)} at "
            f"{_when(m.at)}: {escape(m.why)}"
            + (f" [dim](evidence {evidence})[/]" if evidence else "")
        )
    for a in t.alerts:
        p = a.properties
        node.add(
            f"[red]Alert[/] #{a.id} {escape(str(p.get('rule')))} {escape(str(p.get('state')))} "
            f"({escape(str(p.get('metric')))} = {p.get('value')}): {escape(str(p.get('reason')))}"
        )
    for link in t.triggers:
        e = link.execution
        role = (
            "trained this version"
            if link.role == "candidate"
            else f"started by artifact #{link.via}"
        )
        node.add(
            f"[magenta]TriggerRun[/] exec #{e.id} {escape(e.name or '')}: {role}, "
            f"[dim]{escape(str(e.properties.get('state', e.state.value)))}[/]"
        )
    _tree(md, t.upstream, f"a:{t.model.id}", Direction.UPSTREAM, node.add("upstream lineage"))


def _prediction_tree(md: MetadataStore, t: PredictionTrace) -> Tree:
    from rich.markup import escape
    from rich.tree import Tree

    r = t.request
    tree = Tree(
        f"[bold]prediction[/] {escape(r.request_id)}: {escape(r.model)} version "
        f"{escape(r.version)} at {_when(r.ts)}, {r.rows} row{'s' if r.rows != 1 else ''}"
    )
    for i, out in enumerate(r.outputs[:5]):
        label = f", label {r.labels[i]!r}" if i < len(r.labels) else ""
        tree.add(f"row {i}: {escape(str(dict(out)))}{escape(label)}")
    if r.rows > 5:
        tree.add(f"[dim]… {r.rows - 5} more rows (--json has them all)[/]")
    _model_branch(md, t.model, tree)
    return tree


def _promotion_tree(md: MetadataStore, t: PromotionTrace) -> Tree:
    from rich.markup import escape
    from rich.tree import Tree

    m = t.move
    tree = Tree(
        f"[bold]alias move[/] {escape(m.model)}@{escape(m.alias)} #{t.number} "
        f"(exec #{m.execution_id}, {m.action.value}): {m.from_version or '-'} → "
        f"{m.to_version or '-'} by {escape(m.who)} at {_when(m.at)}: {escape(m.why)}"
    )
    if not t.evidence:
        tree.add("[yellow]no evidence recorded with this move[/]")
    for artifact, graph in t.evidence:
        _tree(md, graph, f"a:{artifact.id}", Direction.UPSTREAM, tree.add("evidence"))
    if t.model is not None:
        _model_branch(md, t.model, tree)
    return tree
