"""Retention: which old pipeline runs go, and what of them must stay. A pure decision.

A **policy** (:class:`RetentionPolicy`) selects runs: per pipeline, every finished run that is
not among the newest ``keep_last`` and that started more than ``older_than`` seconds ago. A
run is a context of type ``run``; its executions are those associated with it.

What a selected run holds is deleted only if nothing kept needs it. The **protected closure**
starts from

- the *roots* the caller passes (the model artifact of every registered version, the models
  deployment revisions serve, the blessings of those models — see ``loopline gc``);
- every artifact that a *kept* execution touches: all executions outside the selected runs
  (the executions of newer runs, alias moves, registrations, deployment pins, monitor
  windows …) are kept, and so are their inputs and outputs;

and walks upstream: the execution that produced a protected artifact (any state but
``CACHED``: a cached execution only points at an earlier producer) is kept, so its inputs and
outputs are protected too, and so on. So everything upstream of a kept model stays (its
training data, schema, transform graph and the runs' executions that made them), and a kept
run's cache entries stay usable (their producers are kept with their outputs). One rule looks
downstream: an execution that read only protected artifacts and wrote only statistics or
schemas (:data:`REFERENCE_TYPES`) is kept too, because a monitor finds a model's training
reference as the statistics of its training data.

The plan deletes the executions of the selected runs that are not kept, and the artifacts
they touch that are not protected (also artifacts only attributed to selected runs). Bytes of
a deleted artifact are removed only when no kept artifact has the same URI or one nested in
it. :func:`plan_gc` reads nothing and writes nothing; ``now`` is a parameter.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from loopline.errors import InvalidInputError
from loopline.metadata.entities import ArtifactState, EventType, ExecutionState

RUN_CONTEXT_TYPE = "run"
#: Facts derived from kept data that stay with it: a monitor's training reference.
REFERENCE_TYPES = frozenset({"ExampleStatistics", "Schema"})
_RUNNING = "running"


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """Which runs are old enough to go.

    Attributes:
        keep_last: the newest N runs of each pipeline are always kept (≥ 1).
        older_than: only runs that started more than this many seconds before ``now`` go;
            None: age does not matter.
    """

    keep_last: int = 10
    older_than: float | None = 30 * 86_400.0

    def __post_init__(self) -> None:
        if isinstance(self.keep_last, bool) or not isinstance(self.keep_last, int):
            raise InvalidInputError(f"keep_last {self.keep_last!r} must be an integer ≥ 1.")
        if self.keep_last < 1:
            raise InvalidInputError(
                f"keep_last {self.keep_last} must be ≥ 1: the newest run of each pipeline "
                "holds its cache and its latest model."
            )
        if self.older_than is not None and not self.older_than >= 0:
            raise InvalidInputError(f"older_than {self.older_than!r} must be ≥ 0 seconds.")


@dataclass(frozen=True, slots=True)
class RunNode:
    """A pipeline run as the planner sees it."""

    id: int
    name: str
    pipeline: str
    started_at: datetime
    status: str


@dataclass(frozen=True, slots=True)
class ArtifactNode:
    """An artifact as the planner sees it."""

    id: int
    type_name: str
    uri: str
    state: ArtifactState


@dataclass(frozen=True, slots=True)
class RetentionGraph:
    """The part of the metadata store retention decides on, read in one transaction.

    ``executions`` maps an execution id to its state; ``runs_of`` maps it to the runs it is
    associated with (absent: none). ``attributed`` maps an artifact to the runs it is
    attributed to. ``events`` are ``(artifact_id, execution_id, type)``.
    """

    runs: tuple[RunNode, ...] = ()
    executions: Mapping[int, ExecutionState] = field(default_factory=dict)
    runs_of: Mapping[int, frozenset[int]] = field(default_factory=dict)
    artifacts: Mapping[int, ArtifactNode] = field(default_factory=dict)
    attributed: Mapping[int, frozenset[int]] = field(default_factory=dict)
    events: tuple[tuple[int, int, EventType], ...] = ()


@dataclass(frozen=True, slots=True)
class GcPlan:
    """What a collection deletes, and what of the selected runs it keeps.

    Attributes:
        runs: the runs the policy selected (their contexts go once nothing is left in them).
        executions: executions deleted (rows, events, associations, metrics).
        artifacts: artifacts deleted (rows, events, attributions), oldest first.
        uris: the artifact URIs whose bytes are removed (a subset of the artifacts' URIs).
        kept_executions: executions of selected runs kept for a protected artifact.
        protected: the protected artifact closure.
    """

    runs: tuple[int, ...] = ()
    executions: tuple[int, ...] = ()
    artifacts: tuple[ArtifactNode, ...] = ()
    uris: tuple[str, ...] = ()
    kept_executions: tuple[int, ...] = ()
    protected: frozenset[int] = frozenset()

    @property
    def empty(self) -> bool:
        """True when the plan deletes nothing."""
        return not (self.runs or self.executions or self.artifacts)


def select_runs(runs: Iterable[RunNode], policy: RetentionPolicy, now: datetime) -> list[RunNode]:
    """The runs ``policy`` lets go at ``now``: per pipeline, beyond the newest ``keep_last``,
    older than ``older_than``, and not running."""
    by_pipeline: dict[str, list[RunNode]] = defaultdict(list)
    for run in runs:
        by_pipeline[run.pipeline].append(run)
    chosen: list[RunNode] = []
    for group in by_pipeline.values():
        group.sort(key=lambda r: (r.started_at, r.id), reverse=True)
        for run in group[policy.keep_last :]:
            if run.status == _RUNNING:
                continue
            age = (now - run.started_at).total_seconds()
            if policy.older_than is None or age > policy.older_than:
                chosen.append(run)
    return sorted(chosen, key=lambda r: r.id)


def plan_gc(
    graph: RetentionGraph,
    policy: RetentionPolicy,
    *,
    roots: Iterable[int],
    now: datetime,
) -> GcPlan:
    """The collection ``policy`` asks for at ``now``, keeping the protected closure of
    ``roots`` (artifact ids) and of every kept execution. Pure."""
    runs = {r.id for r in select_runs(graph.runs, policy, now)}
    if not runs:
        return GcPlan(protected=frozenset(roots))
    touched: dict[int, set[int]] = defaultdict(set)  # execution -> artifacts
    inputs: dict[int, set[int]] = defaultdict(set)  # execution -> its input artifacts
    producers: dict[int, set[int]] = defaultdict(set)  # artifact -> non-cached producers
    for artifact_id, execution_id, kind in graph.events:
        touched[execution_id].add(artifact_id)
        state = graph.executions.get(execution_id)
        if kind is EventType.INPUT:
            inputs[execution_id].add(artifact_id)
        elif state is not ExecutionState.CACHED:
            producers[artifact_id].add(execution_id)
    # Collectable: executions whose every run is selected (a run-less execution is kept).
    collectable = {
        e for e, of in graph.runs_of.items() if of and of <= runs and e in graph.executions
    }
    kept_exec = set(graph.executions) - collectable
    protected: set[int] = {a for a in roots if a in graph.artifacts}
    for execution_id in kept_exec:
        protected |= touched.get(execution_id, set())
    rescued: set[int] = set()

    def keep(execution_id: int, frontier: list[int]) -> None:
        collectable.discard(execution_id)
        rescued.add(execution_id)
        for other in touched.get(execution_id, ()):
            if other not in protected:
                protected.add(other)
                frontier.append(other)

    frontier = list(protected)
    while frontier:
        while frontier:  # upstream: the producers of protected artifacts
            for producer in producers.get(frontier.pop(), ()):
                if producer in collectable:
                    keep(producer, frontier)
        for execution_id in sorted(collectable):  # downstream: the reference facts
            if _derives_reference(execution_id, graph, inputs, touched, protected):
                keep(execution_id, frontier)
    candidates: set[int] = set()
    for execution_id in collectable:
        candidates |= touched.get(execution_id, set())
    for artifact_id, of in graph.attributed.items():
        if of and of <= runs:
            candidates.add(artifact_id)
    doomed = sorted(
        (graph.artifacts[a] for a in candidates - protected if a in graph.artifacts),
        key=lambda a: a.id,
    )
    doomed_ids = {a.id for a in doomed}
    kept_uris = _UriSet(a.uri for a in graph.artifacts.values() if a.id not in doomed_ids)
    uris = sorted(
        {
            a.uri
            for a in doomed
            if a.uri and a.state is not ArtifactState.DELETED and not kept_uris.overlaps(a.uri)
        }
    )
    return GcPlan(
        runs=tuple(sorted(runs)),
        executions=tuple(sorted(collectable)),
        artifacts=tuple(doomed),
        uris=tuple(uris),
        kept_executions=tuple(sorted(rescued)),
        protected=frozenset(protected),
    )


def _derives_reference(
    execution_id: int,
    graph: RetentionGraph,
    inputs: Mapping[int, set[int]],
    touched: Mapping[int, set[int]],
    protected: set[int],
) -> bool:
    """True for a non-cached execution that read only protected artifacts (at least one) and
    wrote only reference facts (statistics, schemas): what a monitor reads as the training
    reference of a kept model."""
    read = inputs.get(execution_id, set())
    wrote = touched.get(execution_id, set()) - read
    if graph.executions.get(execution_id) is ExecutionState.CACHED or not read or not wrote:
        return False
    if not read <= protected:
        return False
    return all(
        a in graph.artifacts and graph.artifacts[a].type_name in REFERENCE_TYPES for a in wrote
    )


class _UriSet:
    """URIs of kept artifacts, asked whether a URI equals, contains or lies inside one."""

    def __init__(self, uris: Iterable[str]) -> None:
        self._exact = {u.rstrip("/") for u in uris if u}
        self._sorted = sorted(self._exact)

    def overlaps(self, uri: str) -> bool:
        base = uri.rstrip("/")
        if base in self._exact:
            return True
        parts = base.split("/")
        if any("/".join(parts[:i]) in self._exact for i in range(1, len(parts))):
            return True  # a kept artifact contains it
        i = bisect.bisect_left(self._sorted, base + "/")
        return i < len(self._sorted) and self._sorted[i].startswith(base + "/")


GC_CONTEXT_TYPE = "gc"


@dataclass(frozen=True, slots=True)
class Collection:
    """A collection in progress: marked in the store, bytes and rows not yet all gone.

    It is recorded as a context of type ``gc`` (state ``collecting``) holding the ids, so a
    collection cut short by a crash is finished by the next one.
    """

    id: int
    name: str
    runs: tuple[int, ...]
    executions: tuple[int, ...]
    artifacts: tuple[int, ...]
    uris: tuple[str, ...]
    started_at: datetime


@dataclass(frozen=True, slots=True)
class CollectionResult:
    """What finishing a collection deleted (and what it had to keep after all)."""

    name: str
    runs_deleted: int
    executions_deleted: int
    artifacts_deleted: int
    runs_kept: int = 0  # selected runs still holding protected executions
    kept_after_all: int = 0  # marked rows something new referenced meanwhile
