"""Retention: the policy selects old runs; the protected closure keeps what kept models,
aliases, deployments and newer runs' caches need; collection is crash-safe."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from loopline.artifacts.fs import FsspecArtifactStore
from loopline.errors import BackendError, ConflictError, InvalidInputError
from loopline.metadata import open_store
from loopline.metadata.collection import collect, resume
from loopline.metadata.entities import Artifact, ArtifactState, EventType, ExecutionState
from loopline.metadata.retention import (
    ArtifactNode,
    GcPlan,
    RetentionGraph,
    RetentionPolicy,
    RunNode,
    plan_gc,
    select_runs,
)
from loopline.metadata.store import MetadataStore
from loopline.registry import ModelRegistry

T0 = datetime(2026, 1, 1, tzinfo=UTC)
LATER = datetime.now(UTC) + timedelta(days=365)
_OUT = EventType.OUTPUT


# ---- the policy ------------------------------------------------------------------------------


def _run(i: int, pipeline: str = "taxi", days: int = 0, status: str = "succeeded") -> RunNode:
    return RunNode(i, f"{pipeline}-{i}", pipeline, T0 + timedelta(days=days), status)


def test_the_newest_runs_of_each_pipeline_are_kept_whatever_their_age() -> None:
    runs = [_run(1, days=1), _run(2, days=2), _run(3, days=3), _run(4, "iris", days=0)]
    chosen = select_runs(runs, RetentionPolicy(keep_last=2, older_than=None), T0)
    assert [r.id for r in chosen] == [1]


def test_only_runs_older_than_the_bound_go_and_running_runs_never() -> None:
    runs = [_run(1, days=0), _run(2, days=20, status="running"), _run(3, days=25), _run(4, days=40)]
    now = T0 + timedelta(days=41)
    chosen = select_runs(runs, RetentionPolicy(keep_last=1, older_than=30 * 86_400.0), now)
    assert [r.id for r in chosen] == [1]
    chosen = select_runs(runs, RetentionPolicy(keep_last=1, older_than=None), now)
    assert [r.id for r in chosen] == [1, 3]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"keep_last": 0}, r"keep_last 0 must be ≥ 1"),
        ({"keep_last": "3"}, r"keep_last '3' must be an integer"),
        ({"older_than": -1.0}, r"older_than -1.0 must be ≥ 0"),
    ],
)
def test_a_bad_policy_is_an_error_naming_the_field(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        RetentionPolicy(**kwargs)  # type: ignore[arg-type]


def test_bytes_shared_with_a_kept_artifact_are_never_removed() -> None:
    live = ArtifactState.LIVE
    graph = RetentionGraph(
        runs=(_run(1), _run(2, days=1)),
        executions={1: ExecutionState.COMPLETE, 2: ExecutionState.COMPLETE},
        runs_of={1: frozenset({1}), 2: frozenset({2})},
        artifacts={
            1: ArtifactNode(1, "Model", "file:///a/model", live),
            2: ArtifactNode(2, "PushedModel", "file:///a/model", live),  # same bytes as 1
            3: ArtifactNode(3, "Examples", "file:///a/data", live),
            4: ArtifactNode(4, "Examples", "file:///a/data/train", live),  # inside 3
            5: ArtifactNode(5, "Report", "file:///a/report", live),
        },
        events=(
            (2, 1, _OUT),
            (3, 1, _OUT),
            (5, 1, _OUT),
            (4, 2, _OUT),
            (1, 2, _OUT),
        ),
    )
    plan = plan_gc(graph, RetentionPolicy(keep_last=1, older_than=None), roots=(), now=LATER)
    assert {a.id for a in plan.artifacts} == {2, 3, 5}
    assert plan.uris == ("file:///a/report",)


# ---- a real store ----------------------------------------------------------------------------


@pytest.fixture(params=["sqlite-file", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest) -> Iterator[MetadataStore]:
    fixture = "sqlite_url" if request.param == "sqlite-file" else "postgres_url"
    url = request.getfixturevalue(fixture)
    opened = open_store(url)
    try:
        yield opened
    finally:
        opened.close()


@dataclass
class World:
    """A store with real artifact bytes, and helpers to record runs step by step."""

    metadata: MetadataStore
    artifacts: FsspecArtifactStore
    ids: dict[str, int] = field(default_factory=dict)
    uris: dict[str, str] = field(default_factory=dict)
    runs: dict[str, int] = field(default_factory=dict)
    execs: dict[str, int] = field(default_factory=dict)

    def artifact(self, name: str, type_name: str, **props: int) -> Artifact:
        uri = self.artifacts.allocate(type_name, name)
        with self.artifacts.staging() as staged:
            (staged / "data.bin").write_bytes(name.encode() * 100)
            digest = self.artifacts.publish(staged, uri)
        made = self.metadata.put_artifact(
            type_name, uri, digest=digest, state=ArtifactState.LIVE, properties=props or None
        )
        self.ids[name], self.uris[name] = made.id, uri
        return made

    def run(self, name: str) -> int:
        ctx = self.metadata.put_context(
            "run", name, properties={"pipeline": "taxi", "status": "succeeded"}
        )
        self.runs[name] = ctx.id
        return ctx.id

    def step(
        self,
        name: str,
        run: str,
        reads: list[str],
        writes: list[tuple[str, str]] | None = None,
        *,
        cached: list[str] | None = None,
    ) -> int:
        """Record a step of ``run``: it reads ``reads``, writes new artifacts
        ``(name, type)`` or (``cached``) re-outputs existing ones."""
        outputs = [(n, self.artifact(n, t).id) for n, t in writes or []]
        outputs += [(n, self.ids[n]) for n in cached or []]
        state = ExecutionState.CACHED if cached else ExecutionState.COMPLETE
        execution = self.metadata.put_execution(
            name.split("/")[0],
            name=name,
            state=state,
            inputs=[(n, self.ids[n]) for n in reads],
            outputs=outputs,
            contexts=[self.runs[run]],
        )
        self.execs[name] = execution.id
        return execution.id


@pytest.fixture
def world(store: MetadataStore, tmp_path: Path) -> World:
    return World(store, FsspecArtifactStore(str(tmp_path / "artifacts")))


def build_history(w: World) -> ModelRegistry:
    """Five runs of ``taxi``; the newest two are kept by keep_last=2.

    run1: E1 → S1 → Sc1; (E1, Sc1) → M1 (registered v1, champion, evidence B1)
    run2: E2 → S2; E2 → M2 → B2 (not blessed, not registered)
    run3: cached E1; E1 → M3 (registered v2, no alias)
    run4: E4 → M4 (unregistered, but a kept run)
    run5: cached E2 (a kept run's cache entry)
    """
    registry = ModelRegistry(w.metadata, w.artifacts)
    w.run("run1")
    w.step("ExampleGen/1", "run1", [], [("E1", "Examples")])
    w.step("StatisticsGen/1", "run1", ["E1"], [("S1", "ExampleStatistics")])
    w.step("SchemaGen/1", "run1", ["S1"], [("Sc1", "Schema")])
    w.step("Trainer/1", "run1", ["E1", "Sc1"], [("M1", "Model")])
    m1 = w.ids["M1"]
    b1 = w.artifact("B1", "ModelBlessing", blessed=1, current_model_id=m1)
    w.metadata.put_execution(
        "Evaluator",
        name="Evaluator/1",
        state=ExecutionState.COMPLETE,
        inputs=[("model", m1), ("examples", w.ids["E1"])],
        outputs=[("blessing", b1.id)],
        contexts=[w.runs["run1"]],
    )
    registry.register("taxi", m1, who="ci", why="run1")
    registry.set_alias("taxi", "champion", 1, who="ci", why="first", evidence=[w.ids["B1"]])

    w.run("run2")
    w.step("ExampleGen/2", "run2", [], [("E2", "Examples")])
    w.step("StatisticsGen/2", "run2", ["E2"], [("S2", "ExampleStatistics")])
    w.step("Trainer/2", "run2", ["E2"], [("M2", "Model")])
    w.step("Evaluator/2", "run2", ["M2", "E2"], [("B2", "ModelBlessing")])

    w.run("run3")
    w.step("ExampleGen/3", "run3", [], cached=["E1"])
    w.step("Trainer/3", "run3", ["E1"], [("M3", "Model")])
    registry.register("taxi", w.ids["M3"], who="ci", why="run3")

    w.run("run4")
    w.step("ExampleGen/4", "run4", [], [("E4", "Examples")])
    w.step("Trainer/4", "run4", ["E4"], [("M4", "Model")])
    w.run("run5")
    w.step("ExampleGen/5", "run5", [], cached=["E2"])
    return registry


def _roots(metadata: MetadataStore) -> set[int]:
    return {v.artifact_id for v in metadata.list_model_versions()}


POLICY = RetentionPolicy(keep_last=2, older_than=None)


def _plan(w: World) -> GcPlan:
    return plan_gc(w.metadata.retention_graph(), POLICY, roots=_roots(w.metadata), now=LATER)


def test_gc_keeps_exactly_the_protected_closure(world: World) -> None:
    build_history(world)
    graph = world.metadata.retention_graph()
    plan = plan_gc(graph, POLICY, roots=_roots(world.metadata), now=LATER)
    names = {v: k for k, v in world.ids.items()}
    steps = {v: k for k, v in world.execs.items()}
    assert sorted(names[a.id] for a in plan.artifacts) == ["B2", "M2"]
    assert sorted(steps[e] for e in plan.executions) == [
        "Evaluator/2",
        "ExampleGen/3",  # a cached step only points at E1's producer, which stays
        "Trainer/2",
    ]
    assert plan.runs == tuple(sorted(world.runs[r] for r in ("run1", "run2", "run3")))
    assert sorted(plan.uris) == sorted([world.uris["M2"], world.uris["B2"]])

    results = collect(world.metadata, plan, delete_bytes=world.artifacts.delete, now=LATER)
    assert (results[-1].executions_deleted, results[-1].artifacts_deleted) == (3, 2)
    # run1 is whole (upstream of the champion, its blessing is the alias move's evidence);
    # run2 keeps the examples run5's cache entry points at, and their statistics; run3 keeps
    # the registered M3's trainer. No run context was emptied.
    assert results[-1].runs_deleted == 0 and results[-1].runs_kept == 3
    assert world.metadata.get_artifacts([world.ids["M2"], world.ids["B2"]]) == []
    assert not world.artifacts.exists(world.uris["M2"])
    for kept in ("E1", "S1", "Sc1", "M1", "B1", "E2", "S2", "M3", "E4", "M4"):
        artifact = world.metadata.get_artifact(world.ids[kept])
        assert artifact.state is ArtifactState.LIVE, kept
        assert world.artifacts.exists(artifact.uri), kept
    # The champion's lineage still reaches its data and schema.
    lineage = world.metadata.lineage(artifact_id=world.ids["M1"], hops=6)
    assert {a.id for a in lineage.artifacts} >= {world.ids[n] for n in ("E1", "S1", "Sc1")}
    # run5's cache entry (E2's producer) still answers.
    producer = world.metadata.get_execution(world.execs["ExampleGen/2"])
    assert producer.state is ExecutionState.COMPLETE
    # A second gc finds nothing more.
    again = _plan(world)
    assert again.artifacts == () and again.executions == ()


def test_a_run_with_nothing_protected_is_deleted_whole(world: World) -> None:
    world.run("old")
    world.step("ExampleGen/x", "old", [], [("Ex", "Examples")])
    world.step("Trainer/x", "old", ["Ex"], [("Mx", "Model")])
    world.run("new")
    world.step("ExampleGen/y", "new", [], [("Ey", "Examples")])
    plan = plan_gc(
        world.metadata.retention_graph(),
        RetentionPolicy(keep_last=1, older_than=None),
        roots=(),
        now=LATER,
    )
    (result,) = collect(world.metadata, plan, delete_bytes=world.artifacts.delete, now=LATER)
    assert (result.runs_deleted, result.executions_deleted, result.artifacts_deleted) == (1, 2, 2)
    assert [c.name for c in world.metadata.list_contexts(type_name="run")] == ["new"]
    assert not world.artifacts.exists(world.uris["Ex"])
    assert world.metadata.find_context("gc", result.name) is not None  # the audit record


def test_a_crash_after_marking_hides_the_rows_and_the_next_gc_finishes(world: World) -> None:
    build_history(world)
    plan = _plan(world)
    collection = world.metadata.begin_collection(plan, started_at=LATER)
    # "Crash" here: rows are marked, nothing else done. Nothing marked looks live.
    m2 = world.metadata.get_artifact(world.ids["M2"])
    assert m2.state is ArtifactState.DELETED
    assert world.metadata.latest_artifact("ModelBlessing") == world.metadata.get_artifact(
        world.ids["B1"]
    )
    assert [c.id for c in world.metadata.pending_collections()] == [collection.id]

    removed: list[str] = []

    def flaky_delete(uri: str) -> None:
        if removed:
            raise BackendError(f"the disk went away while removing {uri}")
        world.artifacts.delete(uri)
        removed.append(uri)

    with pytest.raises(BackendError, match="the disk went away"):
        resume(world.metadata, flaky_delete)  # a second crash, half-way through the bytes
    assert [c.id for c in world.metadata.pending_collections()] == [collection.id]

    (result,) = resume(world.metadata, world.artifacts.delete)
    assert (result.executions_deleted, result.artifacts_deleted) == (3, 2)
    assert world.metadata.pending_collections() == []
    assert not any(world.artifacts.exists(world.uris[n]) for n in ("M2", "B2"))
    assert resume(world.metadata, world.artifacts.delete) == []


def test_marking_refuses_a_plan_whose_artifacts_something_new_started_using(
    world: World,
) -> None:
    build_history(world)
    plan = _plan(world)
    # After planning, a new run's step reads M2 (say, as a baseline).
    world.run("run6")
    intruder = world.step("Evaluator/6", "run6", ["M2"])
    with pytest.raises(ConflictError, match=rf"execution {intruder} started using it after gc"):
        world.metadata.begin_collection(plan, started_at=LATER)
    assert world.metadata.get_artifact(world.ids["M2"]).state is ArtifactState.LIVE
    assert world.metadata.pending_collections() == []
