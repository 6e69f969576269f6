"""The Lineage screen: the upstream and downstream graph around one node, in layered columns.

A reference names where to start (the ``from`` query parameter):

- ``prediction/<request id>``: the logged request (found with
  :func:`loopline.serving.find_request`, the search ``loopline lineage prediction/…`` makes),
  then the Model artifact of the registry version that answered it; the request itself (its
  first :data:`ROWS_SHOWN` rows: inputs, outputs and feedback labels) is shown too
  (:class:`RequestView`);
- ``model/<name>/<version>``: that version's Model artifact;
- ``artifact/<id>`` and ``execution/<id>``: one node of the metadata store;
- ``dataset/<id>``: an artifact of a data type (:data:`DATASET_TYPES`), checked as such;
- ``run/<id>``: a pipeline run (its ``run`` context): every execution in it.

The graph is the union of :meth:`~loopline.metadata.MetadataStore.lineage` upstream
(:data:`UPSTREAM_HOPS`) and downstream (:data:`DOWNSTREAM_HOPS`) from each start node;
artifacts and executions alternate, and :func:`loopline.ui.dag.layout` places them in columns
by longest path (inputs on the left). Graphs over :data:`~loopline.ui.dag.MAX_NODES` nodes
are listed, not drawn.

Every Model artifact of the graph that is a registry version is shown with its registry
references (:class:`ServedVersion`): the aliases on it now, the alias moves to or from it (who,
when, why: the promotion history) and the deployments serving it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopline.errors import InvalidInputError, NotFoundError, shown
from loopline.metadata import Direction, EventType, LineageGraph, MetadataStore
from loopline.metadata.entities import ModelVersion
from loopline.registry import AliasMove, ModelRegistry
from loopline.types import JsonDict
from loopline.ui.dag import GAP_X, NODE_HEIGHT, NODE_WIDTH, DagLayout, DagNode, PlacedEdge, layout

if TYPE_CHECKING:
    from loopline.serving import LoggedRequest

UPSTREAM_HOPS = 10  # as `loopline lineage`: Model ← Trainer ← … ← ExampleGen ← raw spans
DOWNSTREAM_HOPS = 4  # Model → MonitorWindow → Alert → TriggerRun
KINDS = ("prediction", "model", "dataset", "artifact", "execution", "run")
DATASET_TYPES = ("Examples", "Dataset")  # what ``dataset/<id>`` may name
MOVES_SHOWN = 20  # alias moves listed per version
ROWS_SHOWN = 10  # rows of a logged request shown
CELL_CHARS = 40  # a shown value is cut to this many characters


@dataclass(frozen=True, slots=True)
class LineageNode:
    """An artifact (``a:<id>``) or an execution (``e:<id>``) of the graph."""

    key: str
    kind: str  # "artifact" | "execution"
    id: int
    type_name: str
    name: str
    state: str
    start: bool


@dataclass(frozen=True, slots=True)
class ServedVersion:
    """A registry version whose Model artifact is in the graph, with its registry references
    and where it is served."""

    model: str
    version: int
    artifact_id: int
    aliases: tuple[str, ...]  # the aliases pointing at it now
    moves: tuple[AliasMove, ...]  # alias moves to or from it, newest first
    deployments: tuple[str, ...]  # deployments whose current revision serves it


@dataclass(frozen=True, slots=True)
class RequestView:
    """A logged request as the page shows it: its first :data:`ROWS_SHOWN` rows as text, one
    column per input field, output field and (once feedback came) the label."""

    request_id: str
    model: str
    version: str
    at: datetime
    columns: tuple[str, ...]  # "input x", "output predict", "label"
    rows: tuple[tuple[str, ...], ...]
    total: int  # rows in the request


@dataclass(frozen=True, slots=True)
class LineageScreen:
    ref: str
    title: str  # what the reference resolved to, in a sentence
    nodes: tuple[LineageNode, ...]
    edges: int
    dag: DagLayout | None
    versions: tuple[ServedVersion, ...] = ()
    request: RequestView | None = None


def parse_ref(ref: str) -> tuple[str, tuple[str, ...]]:
    """``kind/part/…`` → (kind, parts), checked.

    Raises:
        InvalidInputError: an unknown kind or a malformed id (the message names ``from``).
    """
    kind, _, rest = ref.partition("/")
    parts = tuple(rest.split("/")) if rest else ()
    counts = {"prediction": 1, "model": 2, "dataset": 1, "artifact": 1, "execution": 1, "run": 1}
    if kind not in counts or len(parts) != counts[kind] or not all(parts):
        raise InvalidInputError(
            f"from={shown(ref)} is not a lineage reference; use prediction/<request id>, "
            "model/<name>/<version>, dataset/<id>, artifact/<id>, execution/<id> or run/<id>."
        )
    numeric = parts[1:] if kind == "model" else parts if kind != "prediction" else ()
    for p in numeric:
        if not p.isdigit() or int(p) < 1:
            raise InvalidInputError(
                f"from={shown(ref)}: {shown(p)} is not an id (a whole number from 1)."
            )
    return kind, parts


def lineage_screen(
    metadata: MetadataStore,
    ref: str,
    log_directory: Path | None,
    registry: ModelRegistry | None = None,
    deployments: Sequence[JsonDict] = (),
) -> LineageScreen:
    """The graph around the node ``ref`` names; with ``registry``, each registry version in
    it with its aliases, alias moves and the ``deployments`` (API views) serving it.

    Raises:
        InvalidInputError: a malformed reference.
        NotFoundError: nothing by that reference (the message names it).
    """
    kind, parts = parse_ref(ref)
    artifacts: list[int] = []
    executions: list[int] = []
    shown_request: RequestView | None = None
    if kind == "prediction":
        if log_directory is None:
            raise NotFoundError(
                f"from={shown(ref)}: this console has no prediction-log directory; use "
                "`loopline lineage prediction/<id>` where the logs are."
            )
        from loopline.serving import find_request  # Polars loads only for a prediction

        request = find_request(log_directory, parts[0])
        if not request.version.isdigit():
            raise NotFoundError(
                f"Request {shown(parts[0])} was answered by {request.model} version "
                f"{shown(request.version)}, not a registry version; its lineage is not recorded."
            )
        mv = metadata.get_model_version(request.model, int(request.version))
        artifacts.append(int(mv.artifact_id))
        title = f"Request {parts[0]}, answered by {request.model} version {request.version}"
        shown_request = request_view(request)
    elif kind == "model":
        mv = metadata.get_model_version(parts[0], int(parts[1]))
        artifacts.append(int(mv.artifact_id))
        title = f"Model {parts[0]} version {parts[1]} (artifact {mv.artifact_id})"
    elif kind == "dataset":
        data = metadata.get_artifact(int(parts[0]))
        if data.type_name not in DATASET_TYPES:
            raise InvalidInputError(
                f"from={shown(ref)}: artifact {parts[0]} is a {data.type_name}, not a data set "
                f"({' or '.join(DATASET_TYPES)}); use artifact/{parts[0]}."
            )
        artifacts.append(int(data.id))
        title = f"Data set {parts[0]} · {data.type_name} {data.name or data.uri}"
    elif kind == "artifact":
        artifacts.append(int(metadata.get_artifact(int(parts[0])).id))
        title = f"Artifact {parts[0]}"
    elif kind == "execution":
        executions.append(int(metadata.get_execution(int(parts[0])).id))
        title = f"Execution {parts[0]}"
    else:
        try:  # one row by id, not every run (1.2 s at 10,000 runs)
            run = metadata.get_context(int(parts[0]))
        except NotFoundError:
            run = None
        if run is None or run.type_name != "run":
            raise NotFoundError(f"from={shown(ref)}: no run {parts[0]}; see /ui/runs.")
        executions += [int(e.id) for e in metadata.list_executions(context_id=run.id)]
        title = f"Run {parts[0]} · {run.name}"
    graphs: list[LineageGraph] = []
    for direction, hops in ((Direction.UPSTREAM, UPSTREAM_HOPS),
                            (Direction.DOWNSTREAM, DOWNSTREAM_HOPS)):  # fmt: skip
        graphs += [metadata.lineage(artifact_id=a, direction=direction, hops=hops)
                   for a in artifacts]  # fmt: skip
        graphs += [metadata.lineage(execution_id=e, direction=direction, hops=hops)
                   for e in executions]  # fmt: skip
    starts = {f"a:{a}" for a in artifacts} | {f"e:{e}" for e in executions}
    screen = replace(_screen(ref, title, graphs, starts), request=shown_request)
    if registry is None:
        return screen
    models = {n.id for n in screen.nodes if n.kind == "artifact" and n.type_name == "Model"}
    found = [v for v in metadata.list_model_versions() if int(v.artifact_id) in models]
    names = sorted({v.name for v in found})
    aliases = {name: dict(registry.get_model(name).aliases) for name in names}
    history = {name: registry.alias_history(name) for name in names}
    return replace(screen, versions=served_versions(found, aliases, history, deployments))


def request_view(request: LoggedRequest) -> RequestView:
    """The first :data:`ROWS_SHOWN` rows of ``request``: inputs, outputs, then the label."""
    fields_in = list(dict.fromkeys(k for row in request.inputs for k in row))
    fields_out = list(dict.fromkeys(k for row in request.outputs for k in row))
    columns = [f"input {f}" for f in fields_in] + [f"output {f}" for f in fields_out]
    labelled = bool(request.labels)
    if labelled:
        columns.append("label")
    rows = []
    for i in range(min(request.rows, ROWS_SHOWN)):
        inputs = request.inputs[i] if i < len(request.inputs) else {}
        outputs = request.outputs[i]
        row = [_cell(inputs.get(f)) for f in fields_in]
        row += [_cell(outputs.get(f)) for f in fields_out]
        if labelled:
            row.append(_cell(request.labels[i] if i < len(request.labels) else None))
        rows.append(tuple(row))
    return RequestView(request.request_id, request.model, request.version, request.ts,
                       tuple(columns), tuple(rows), request.rows)  # fmt: skip


def _cell(value: Any) -> str:
    """A logged value as short text: numbers to 4 significant digits, None as —."""
    if value is None:
        return "—"
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        value = value.tolist()
    if isinstance(value, float):
        text = f"{value:.4g}"
    elif isinstance(value, list):
        text = "[" + ", ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in value) + "]"
    else:
        text = str(value)
    return text if len(text) <= CELL_CHARS else text[: CELL_CHARS - 1] + "…"


def served_versions(
    versions: Sequence[ModelVersion],
    aliases: Mapping[str, Mapping[str, int]],
    history: Mapping[str, Sequence[AliasMove]],
    deployments: Sequence[JsonDict],
) -> tuple[ServedVersion, ...]:
    """Each of ``versions`` with its aliases now (``aliases[model]``: alias → version), its
    alias moves (``history[model]``, newest first: those to or from it) and the deployments
    whose pinned model (``status.model.pinned``, ``name/version``) it is."""
    serving: dict[str, list[str]] = {}
    for view in deployments:
        status = view.get("status")
        model = status.get("model") if isinstance(status, Mapping) else None
        pinned = model.get("pinned") if isinstance(model, Mapping) else None
        meta = view.get("metadata")
        name = meta.get("name") if isinstance(meta, Mapping) else None
        if isinstance(pinned, str) and isinstance(name, str):
            serving.setdefault(pinned, []).append(name)
    out = []
    for v in sorted(versions, key=lambda v: (v.name, v.version)):
        on = tuple(sorted(a for a, n in aliases.get(v.name, {}).items() if n == v.version))
        moves = tuple(
            m for m in history.get(v.name, ()) if v.version in (m.from_version, m.to_version)
        )[:MOVES_SHOWN]
        served = tuple(sorted(serving.get(f"{v.name}/{v.version}", ())))
        out.append(ServedVersion(v.name, v.version, int(v.artifact_id), on, moves, served))
    return tuple(out)


def _screen(ref: str, title: str, graphs: list[LineageGraph], starts: set[str]) -> LineageScreen:
    nodes: dict[str, LineageNode] = {}
    edges: dict[tuple[str, str], None] = {}
    for g in graphs:
        for a in g.artifacts:
            key = f"a:{a.id}"
            nodes[key] = LineageNode(key, "artifact", int(a.id), a.type_name, a.name or a.uri,
                                     a.state.name.lower(), key in starts)  # fmt: skip
        for e in g.executions:
            key = f"e:{e.id}"
            nodes[key] = LineageNode(key, "execution", int(e.id), e.type_name, e.name or "",
                                     e.state.name.lower(), key in starts)  # fmt: skip
    for g in graphs:
        for ev in g.events:
            art, run = f"a:{ev.artifact_id}", f"e:{ev.execution_id}"
            if art in nodes and run in nodes:
                edges[(art, run) if ev.type is EventType.INPUT else (run, art)] = None
    ordered = sorted(nodes.values(), key=lambda n: (n.kind != "artifact", n.id))
    dag_nodes = [DagNode(n.key, f"{n.type_name} {n.id}", n.state) for n in ordered]
    placed = layout(dag_nodes, list(edges))
    return LineageScreen(ref, title, tuple(ordered), len(edges), _below(placed))


def _below(g: DagLayout | None) -> DagLayout | None:
    """Edges that skip a column dip into the gap under their row, so that they do not pass
    hidden behind the boxes between (the layout's curves join box centres)."""
    if g is None:
        return None
    at = {p.node.id: p for p in g.nodes}
    edges = []
    for e in g.edges:
        a, b = at[e.source], at[e.target]
        if b.x - a.x <= NODE_WIDTH + GAP_X:
            edges.append(e)
            continue
        x1, y1 = a.x + NODE_WIDTH, a.y + NODE_HEIGHT // 2
        x2, y2 = b.x, b.y + NODE_HEIGHT // 2
        dip = max(y1, y2) + NODE_HEIGHT
        path = f"M{x1},{y1} C{x1 + GAP_X},{dip} {x2 - GAP_X},{dip} {x2},{y2}"
        edges.append(PlacedEdge(e.source, e.target, path))
    return replace(g, edges=tuple(edges), height=g.height + NODE_HEIGHT // 4)
