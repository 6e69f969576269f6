"""``loopline lineage REF``: the lineage graph around an artifact, execution or model."""

from __future__ import annotations

import click
from rich.tree import Tree

from loopline.cli.output import console, handle_errors, json_option, print_json
from loopline.errors import InvalidInputError
from loopline.metadata.entities import Direction, EventType, LineageGraph
from loopline.metadata.store import MetadataStore
from loopline.platform import Platform
from loopline.types import ModelRef


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


def _tree(md: MetadataStore, graph: LineageGraph, root: str, direction: Direction) -> Tree:
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
    tree = Tree(label(root))
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
    help="Walk towards inputs (up), derived outputs (down), both.",
)
@click.option("--hops", default=6, show_default=True, help="Maximum number of edges walked.")
@json_option
@handle_errors
def lineage(ref: str, direction: str, hops: int, as_json: bool) -> None:
    """Show where REF came from (or what was made from it) as a tree."""
    d = {"up": Direction.UPSTREAM, "down": Direction.DOWNSTREAM, "both": Direction.BOTH}[direction]
    with Platform.from_env() as platform:
        artifact_id, execution_id = _start(platform, ref)
        graph = platform.metadata.lineage(
            artifact_id=artifact_id, execution_id=execution_id, direction=d, hops=hops
        )
        if as_json:
            print_json(
                {
                    "artifacts": [
                        {
                            "id": a.id,
                            "type": a.type_name,
                            "name": a.name,
                            "state": a.state.value,
                            "digest": a.digest,
                        }
                        for a in graph.artifacts
                    ],
                    "executions": [
                        {"id": e.id, "type": e.type_name, "name": e.name, "state": e.state.value}
                        for e in graph.executions
                    ],
                    "events": [
                        {
                            "artifact_id": ev.artifact_id,
                            "execution_id": ev.execution_id,
                            "type": ev.type.value,
                            "port": ev.port,
                        }
                        for ev in graph.events
                    ],
                    "hops": dict(graph.hops),
                }
            )
            return
        root = f"a:{artifact_id}" if artifact_id is not None else f"e:{execution_id}"
        console.print(_tree(platform.metadata, graph, root, d))
