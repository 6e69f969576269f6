"""A run's DAG laid out in layers, left to right, for a server-rendered SVG.

A step's layer is the length of the longest path to it from a step with no inputs; within a
layer, steps are ordered by the mean position of their predecessors (one barycentre pass,
which removes most crossings of a pipeline's mostly linear graphs). Boxes never overlap: each
layer is a column and each step in it a row. Graphs over :data:`MAX_NODES` steps are not laid
out: :func:`timeline` draws them instead, one bar per step on a shared time axis (as ZenML's
and KFP's UIs fall back for big pipelines), and the run page says why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

MAX_NODES = 200
NODE_WIDTH = 168
NODE_HEIGHT = 44
GAP_X = 56
GAP_Y = 20
MARGIN = 8
TIMELINE_AXIS = 720  # px of the time axis
TIMELINE_LABEL = 180  # px of the step names left of it
BAR_HEIGHT = 12
BAR_GAP = 4


@dataclass(frozen=True, slots=True)
class DagNode:
    """A step: its id (unique in the run), label, status and whether it was a cache hit."""

    id: str
    label: str
    status: str
    cached: bool = False


@dataclass(frozen=True, slots=True)
class PlacedNode:
    node: DagNode
    x: int
    y: int


@dataclass(frozen=True, slots=True)
class PlacedEdge:
    """An edge as an SVG path from the right side of ``source`` to the left side of ``target``."""

    source: str
    target: str
    path: str


@dataclass(frozen=True, slots=True)
class DagLayout:
    nodes: tuple[PlacedNode, ...]
    edges: tuple[PlacedEdge, ...]
    width: int
    height: int
    node_width: int = NODE_WIDTH
    node_height: int = NODE_HEIGHT


def layout(nodes: Sequence[DagNode], edges: Sequence[tuple[str, str]]) -> DagLayout | None:
    """Columns by longest path, rows by barycentre; None when there are more than
    :data:`MAX_NODES` nodes. Edges naming unknown nodes and self-loops are ignored; a cycle
    (which a pipeline cannot have) is broken where it is met."""
    if len(nodes) > MAX_NODES:
        return None
    ids = [n.id for n in nodes]
    known = set(ids)
    preds: dict[str, list[str]] = {i: [] for i in ids}
    for src, dst in dict.fromkeys(edges):
        if src in known and dst in known and src != dst:
            preds[dst].append(src)
    layer: dict[str, int] = {}

    def depth(node: str, seen: frozenset[str]) -> int:
        if node not in layer:
            ps = [p for p in preds[node] if p not in seen]
            layer[node] = 1 + max((depth(p, seen | {node}) for p in ps), default=-1)
        return layer[node]

    for i in ids:
        depth(i, frozenset())
    columns: dict[int, list[str]] = {}
    for i in ids:  # in the run's order: the step that started first comes first
        columns.setdefault(layer[i], []).append(i)
    row: dict[str, float] = {}
    for col in sorted(columns):
        members = columns[col]
        if col > 0:
            first = {n: float(i) for i, n in enumerate(members)}
            members.sort(key=lambda n: _centre(preds[n], row, first[n]))
        for index, n in enumerate(members):
            row[n] = float(index)
    by_id = {n.id: n for n in nodes}
    placed = {
        n: PlacedNode(
            by_id[n],
            MARGIN + col * (NODE_WIDTH + GAP_X),
            MARGIN + index * (NODE_HEIGHT + GAP_Y),
        )
        for col, members in columns.items()
        for index, n in enumerate(members)
    }
    lines = []
    for dst in ids:
        for src in preds[dst]:
            a, b = placed[src], placed[dst]
            x1, y1 = a.x + NODE_WIDTH, a.y + NODE_HEIGHT // 2
            x2, y2 = b.x, b.y + NODE_HEIGHT // 2
            mid = (x1 + x2) // 2
            lines.append(PlacedEdge(src, dst, f"M{x1},{y1} C{mid},{y1} {mid},{y2} {x2},{y2}"))
    width = MARGIN * 2 + max(columns, default=0) * (NODE_WIDTH + GAP_X) + NODE_WIDTH
    tallest = max((len(m) for m in columns.values()), default=1)
    height = MARGIN * 2 + tallest * NODE_HEIGHT + (tallest - 1) * GAP_Y
    return DagLayout(tuple(placed[i] for i in ids), tuple(lines), width, height)


def _centre(preds: Sequence[str], row: dict[str, float], default: float) -> float:
    """The mean row of a node's placed predecessors (its own index when it has none)."""
    placed = [row[p] for p in preds if p in row]
    return sum(placed) / len(placed) if placed else default


@dataclass(frozen=True, slots=True)
class TimelineBar:
    """A step as a bar: from its start to its end (``now`` while it runs) on the time axis;
    a step that never started is a 2 px tick at the origin."""

    node: DagNode
    x: int
    y: int
    width: int
    seconds: float | None


@dataclass(frozen=True, slots=True)
class Timeline:
    bars: tuple[TimelineBar, ...]
    width: int
    height: int
    label_width: int
    span_seconds: float
    bar_height: int = BAR_HEIGHT


def timeline(
    steps: Sequence[tuple[DagNode, datetime | None, datetime | None]], now: datetime
) -> Timeline:
    """One bar per ``(step, started, ended)`` in the given order, scaled so the run's span
    fills :data:`TIMELINE_AXIS` pixels. ``now`` ends the bars of steps still running (a
    parameter: this function reads no clock)."""
    starts = [start for _, start, _ in steps if start is not None]
    origin = min(starts, default=now)
    ends = [end or now for _, start, end in steps if start is not None]
    span = max(((e - origin).total_seconds() for e in ends), default=0.0)
    scale = TIMELINE_AXIS / span if span > 0 else 0.0
    bars = []
    for index, (node, start, end) in enumerate(steps):
        y = MARGIN + index * (BAR_HEIGHT + BAR_GAP)
        if start is None:
            bars.append(TimelineBar(node, TIMELINE_LABEL, y, 2, None))
            continue
        offset = (start - origin).total_seconds()
        seconds = max(0.0, ((end or now) - start).total_seconds())
        x = TIMELINE_LABEL + round(offset * scale)
        width = max(2, round(seconds * scale))
        bars.append(TimelineBar(node, x, y, width, seconds))
    height = MARGIN * 2 + max(1, len(steps)) * (BAR_HEIGHT + BAR_GAP)
    width = TIMELINE_LABEL + TIMELINE_AXIS + MARGIN * 2
    return Timeline(tuple(bars), width, height, TIMELINE_LABEL, span)
