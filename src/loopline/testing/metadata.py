"""Conformance suite for ``MetadataStore`` backends.

Subclass it in a test module, set ``__test__ = True`` and provide a ``store`` fixture that
yields a fresh, empty store::

    class TestSqliteStore(MetadataStoreContract):
        __test__ = True

        @pytest.fixture
        def store(self, tmp_path): ...
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import pytest

from loopline.errors import (
    AlreadyExistsError,
    BackendError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
)
from loopline.metadata.entities import (
    ArtifactState,
    Direction,
    Event,
    EventType,
    ExecutionState,
)
from loopline.metadata.store import MetadataStore
from loopline.testing.metadata_steps import StepRecordContract

IN, OUT = EventType.INPUT, EventType.OUTPUT
R = TypeVar("R")


@dataclass(frozen=True)
class PipelineGraph:
    """A hand-drawn run: ids by short name (``a1``… artifacts, ``e1``… executions).

    ::

        a1 Examples ─► e1 StatisticsGen ─► a2 Statistics ─► e2 SchemaGen ─► a3 Schema
        a1, a3 ─► e3 Transform ─► a4 Examples (transformed), a5 TransformGraph
        a3, a4, a5 ─► e4 Trainer ─► a6 Model
        a1, a6 ─► e5 Evaluator ─► a7 ModelBlessing
        a6, a7 ─► e6 Pusher ─► a8 PushedModel
        a9 Examples ─► e7 StatisticsGen ─► a10 Statistics      (an unrelated run)
    """

    ids: dict[str, int]

    def names(self, keys: dict[str, int]) -> set[str]:
        by_key = {f"{'a' if n[0] == 'a' else 'e'}:{i}": n for n, i in self.ids.items()}
        return {by_key[k] for k in keys}


def build_pipeline_graph(store: MetadataStore) -> PipelineGraph:
    """Record :class:`PipelineGraph`'s run in ``store`` (all executions COMPLETE)."""
    types = {
        "a1": "Examples",
        "a2": "ExampleStatistics",
        "a3": "Schema",
        "a4": "Examples",
        "a5": "TransformGraph",
        "a6": "Model",
        "a7": "ModelBlessing",
        "a8": "PushedModel",
        "a9": "Examples",
        "a10": "ExampleStatistics",
    }
    ids = {
        name: store.put_artifact(t, f"mem://{name}", state=ArtifactState.LIVE).id
        for name, t in types.items()
    }
    steps = {
        "e1": ("StatisticsGen", ["a1"], ["a2"]),
        "e2": ("SchemaGen", ["a2"], ["a3"]),
        "e3": ("Transform", ["a1", "a3"], ["a4", "a5"]),
        "e4": ("Trainer", ["a3", "a4", "a5"], ["a6"]),
        "e5": ("Evaluator", ["a1", "a6"], ["a7"]),
        "e6": ("Pusher", ["a6", "a7"], ["a8"]),
        "e7": ("StatisticsGen", ["a9"], ["a10"]),
    }
    for name, (type_name, inputs, outputs) in steps.items():
        execution = store.put_execution(type_name, state=ExecutionState.RUNNING)
        ids[name] = execution.id
        store.put_events([Event(ids[a], execution.id, IN, f"in_{a}") for a in inputs])
        store.publish_execution(
            execution.id,
            state=ExecutionState.COMPLETE,
            outputs=[Event(ids[a], execution.id, OUT, f"out_{a}") for a in outputs],
        )
    return PipelineGraph(ids=ids)


class MetadataStoreContract(StepRecordContract):
    """Behaviour every ``MetadataStore`` must show. Needs a ``store`` fixture."""

    __test__ = False

    # ---- artifacts -------------------------------------------------------------------------

    def test_put_artifact_returns_it_with_an_id_and_utc_times(self, store: MetadataStore) -> None:
        before = datetime.now(UTC) - timedelta(seconds=5)
        artifact = store.put_artifact(
            "Examples", "file:///data/1", name="train", digest="sha256:ab", properties={"span": 3}
        )
        assert artifact.id >= 1
        assert (artifact.type_name, artifact.uri, artifact.name) == (
            "Examples",
            "file:///data/1",
            "train",
        )
        assert artifact.state is ArtifactState.PENDING
        assert artifact.digest == "sha256:ab"
        assert dict(artifact.properties) == {"span": 3}
        assert artifact.created_at.tzinfo is not None and artifact.created_at >= before
        assert store.get_artifact(artifact.id) == artifact

    def test_get_missing_artifact_raises_not_found_naming_the_id(
        self, store: MetadataStore
    ) -> None:
        with pytest.raises(NotFoundError, match="Artifact 4242 does not exist"):
            store.get_artifact(4242)

    def test_update_artifact_merges_properties_and_sets_fields(self, store: MetadataStore) -> None:
        artifact = store.put_artifact("Model", "file:///m", properties={"a": 1, "b": [1, 2]})
        updated = store.update_artifact(
            artifact.id,
            state=ArtifactState.LIVE,
            digest="sha256:ff",
            uri="file:///m2",
            properties={"b": {"x": None}, "c": "new"},
        )
        assert dict(updated.properties) == {"a": 1, "b": {"x": None}, "c": "new"}
        assert (updated.state, updated.digest, updated.uri) == (
            ArtifactState.LIVE,
            "sha256:ff",
            "file:///m2",
        )
        assert updated.updated_at >= artifact.updated_at
        assert store.get_artifact(artifact.id) == updated

    def test_update_missing_artifact_raises_not_found(self, store: MetadataStore) -> None:
        with pytest.raises(NotFoundError, match="Artifact 99 does not exist"):
            store.update_artifact(99, state=ArtifactState.LIVE)

    def test_artifact_state_cannot_go_back_from_live_to_pending(self, store: MetadataStore) -> None:
        artifact = store.put_artifact("Model", "file:///m", state=ArtifactState.LIVE)
        with pytest.raises(ConflictError, match=r"is live; it cannot become pending"):
            store.update_artifact(artifact.id, state=ArtifactState.PENDING)
        store.update_artifact(artifact.id, state=ArtifactState.DELETED)
        with pytest.raises(ConflictError, match="is deleted; it cannot become live"):
            store.update_artifact(artifact.id, state=ArtifactState.LIVE)

    def test_rejects_properties_that_are_not_json(self, store: MetadataStore) -> None:
        with pytest.raises(InvalidInputError, match="Property 'when' has value"):
            store.put_artifact("Model", "u", properties={"when": datetime.now(UTC)})  # type: ignore[dict-item]
        with pytest.raises(InvalidInputError, match="Property 'x'"):
            store.put_artifact("Model", "u", properties={"x": float("nan")})
        assert store.list_artifacts() == []

    def test_rejects_an_empty_type_name(self, store: MetadataStore) -> None:
        with pytest.raises(InvalidInputError, match="Artifact type name '' is not valid"):
            store.put_artifact("", "u")

    def test_get_artifacts_keeps_the_given_order_and_skips_missing(
        self, store: MetadataStore
    ) -> None:
        a, b, c = (store.put_artifact("Examples", f"u{i}") for i in range(3))
        got = store.get_artifacts([c.id, 999, a.id, b.id])
        assert [x.id for x in got] == [c.id, a.id, b.id]
        assert store.get_artifacts([]) == []

    def test_list_artifacts_filters_by_type_state_and_context(self, store: MetadataStore) -> None:
        e1 = store.put_artifact("Examples", "u1", state=ArtifactState.LIVE)
        e2 = store.put_artifact("Examples", "u2")
        m1 = store.put_artifact("Model", "u3", state=ArtifactState.LIVE)
        run = store.put_context("PipelineRun", "run-1")
        store.attribute(run.id, [e2.id, m1.id])
        assert [a.id for a in store.list_artifacts(type_name="Examples")] == [e2.id, e1.id]
        assert [a.id for a in store.list_artifacts(state=ArtifactState.LIVE)] == [m1.id, e1.id]
        assert [a.id for a in store.list_artifacts(context_id=run.id)] == [m1.id, e2.id]
        assert [a.id for a in store.list_artifacts(type_name="Examples", context_id=run.id)] == [
            e2.id
        ]
        assert store.list_artifacts(type_name="Schema") == []

    def test_list_artifacts_orders_newest_first_and_limits(self, store: MetadataStore) -> None:
        ids = [store.put_artifact("Examples", f"u{i}").id for i in range(5)]
        assert [a.id for a in store.list_artifacts()] == ids[::-1]
        assert [a.id for a in store.list_artifacts(newest_first=False, limit=2)] == ids[:2]
        assert [a.id for a in store.list_artifacts(limit=1)] == [ids[-1]]

    # ---- executions ------------------------------------------------------------------------

    def test_put_and_get_execution(self, store: MetadataStore) -> None:
        execution = store.put_execution(
            "Trainer", name="train", cache_key="k1", properties={"epochs": 3}
        )
        assert execution.state is ExecutionState.NEW
        assert (execution.started_at, execution.ended_at, execution.log_uri) == (None, None, None)
        assert store.get_execution(execution.id) == execution

    def test_get_missing_execution_raises_not_found(self, store: MetadataStore) -> None:
        with pytest.raises(NotFoundError, match="Execution 77 does not exist"):
            store.get_execution(77)

    def test_update_execution_stamps_start_and_end_times(self, store: MetadataStore) -> None:
        execution = store.put_execution("Trainer", properties={"a": 1})
        running = store.update_execution(
            execution.id, state=ExecutionState.RUNNING, log_uri="file:///log", properties={"b": 2}
        )
        assert running.started_at is not None and running.ended_at is None
        assert dict(running.properties) == {"a": 1, "b": 2}
        assert running.log_uri == "file:///log"
        failed = store.update_execution(execution.id, state=ExecutionState.FAILED)
        assert failed.ended_at is not None and failed.ended_at >= running.started_at

    def test_finished_execution_cannot_run_again(self, store: MetadataStore) -> None:
        execution = store.put_execution("Trainer", state=ExecutionState.COMPLETE)
        with pytest.raises(ConflictError, match="is complete; it cannot become running"):
            store.update_execution(execution.id, state=ExecutionState.RUNNING)

    def test_rejects_naive_datetimes(self, store: MetadataStore) -> None:
        with pytest.raises(InvalidInputError, match="must be a timezone-aware datetime"):
            store.put_execution("Trainer", started_at=datetime(2024, 1, 1))

    def test_explicit_times_round_trip_in_utc(self, store: MetadataStore) -> None:
        start = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
        execution = store.put_execution("Trainer", started_at=start)
        end = datetime(2024, 5, 1, 14, 30, tzinfo=UTC) + timedelta(hours=0)
        store.update_execution(execution.id, ended_at=end)
        got = store.get_execution(execution.id)
        assert (got.started_at, got.ended_at) == (start, end)

    def test_list_executions_filters(self, store: MetadataStore) -> None:
        t1 = store.put_execution("Trainer", cache_key="k")
        t2 = store.put_execution("Trainer", state=ExecutionState.RUNNING)
        p1 = store.put_execution("Pusher", cache_key="k")
        run = store.put_context("PipelineRun", "r")
        store.associate(run.id, [t1.id, p1.id])
        assert [e.id for e in store.list_executions(type_name="Trainer")] == [t2.id, t1.id]
        assert [e.id for e in store.list_executions(state=ExecutionState.RUNNING)] == [t2.id]
        assert [e.id for e in store.list_executions(cache_key="k")] == [p1.id, t1.id]
        assert [e.id for e in store.list_executions(context_id=run.id, newest_first=False)] == [
            t1.id,
            p1.id,
        ]
        assert [e.id for e in store.list_executions(limit=1)] == [p1.id]

    # ---- publish and cache -----------------------------------------------------------------

    def _run_with_output(
        self, store: MetadataStore, state: ExecutionState = ExecutionState.COMPLETE
    ) -> tuple[int, int]:
        execution = store.put_execution("Trainer", cache_key="key", state=ExecutionState.RUNNING)
        model = store.put_artifact("Model", f"file:///m{execution.id}")
        store.publish_execution(
            execution.id,
            state=state,
            outputs=[Event(model.id, execution.id, OUT, "model")],
            properties={"accuracy": 0.9},
        )
        return execution.id, model.id

    def test_publish_complete_turns_pending_outputs_live(self, store: MetadataStore) -> None:
        execution_id, model_id = self._run_with_output(store)
        execution = store.get_execution(execution_id)
        assert execution.state is ExecutionState.COMPLETE and execution.ended_at is not None
        assert dict(execution.properties) == {"accuracy": 0.9}
        assert store.get_artifact(model_id).state is ArtifactState.LIVE
        [event] = store.get_events(execution_ids=[execution_id])
        assert (event.artifact_id, event.type, event.port) == (model_id, OUT, "model")

    def test_put_execution_records_inputs_contexts_and_log_in_one_call(
        self, store: MetadataStore
    ) -> None:
        data = store.put_artifact("Examples", "file:///d", state=ArtifactState.LIVE)
        schema = store.put_artifact("Schema", "file:///s", state=ArtifactState.LIVE)
        run = store.put_context("run", "r1")
        execution = store.put_execution(
            "Trainer",
            state=ExecutionState.RUNNING,
            log_uri="/logs/trainer.log",
            inputs=[("examples", data.id), ("examples", schema.id), ("schema", schema.id)],
            contexts=[run.id],
        )
        assert execution.log_uri == "/logs/trainer.log"
        events = store.get_events(execution_ids=[execution.id])
        assert sorted((e.port, e.index, e.artifact_id, e.type) for e in events) == [
            ("examples", 0, data.id, IN),
            ("examples", 1, schema.id, IN),
            ("schema", 0, schema.id, IN),
        ]
        assert [e.id for e in store.list_executions(context_id=run.id)] == [execution.id]

    def test_put_execution_in_a_final_state_records_outputs_and_attributes_them(
        self, store: MetadataStore
    ) -> None:
        model = store.put_artifact("Model", "file:///m", state=ArtifactState.LIVE)
        run = store.put_context("run", "r2")
        cached = store.put_execution(
            "Trainer", state=ExecutionState.CACHED, outputs=[("model", model.id)],
            contexts=[run.id],
        )  # fmt: skip
        [event] = store.get_events(execution_ids=[cached.id])
        assert (event.artifact_id, event.type, event.port) == (model.id, OUT, "model")
        assert [a.id for a in store.list_artifacts(context_id=run.id)] == [model.id]
        with pytest.raises(InvalidInputError, match="outputs with a final state"):
            store.put_execution("Trainer", state=ExecutionState.RUNNING,
                                outputs=[("model", model.id)])  # fmt: skip

    def test_put_execution_with_an_unknown_input_records_nothing(
        self, store: MetadataStore
    ) -> None:
        run = store.put_context("run", "r1")
        with pytest.raises(NotFoundError, match="4242"):
            store.put_execution("Trainer", inputs=[("examples", 4242)], contexts=[run.id])
        assert store.list_executions() == []

    def test_publish_attributes_outputs_to_the_given_contexts(self, store: MetadataStore) -> None:
        run = store.put_context("run", "r1")
        execution = store.put_execution("Trainer", state=ExecutionState.RUNNING)
        model = store.put_artifact("Model", "file:///m")
        store.publish_execution(
            execution.id,
            state=ExecutionState.COMPLETE,
            outputs=[Event(model.id, execution.id, OUT, "model")],
            contexts=[run.id],
        )
        assert [a.id for a in store.list_artifacts(context_id=run.id)] == [model.id]

    def test_publish_failed_leaves_outputs_pending(self, store: MetadataStore) -> None:
        _, model_id = self._run_with_output(store, ExecutionState.FAILED)
        assert store.get_artifact(model_id).state is ArtifactState.PENDING

    def test_publish_is_all_or_nothing(self, store: MetadataStore) -> None:
        execution = store.put_execution("Trainer", state=ExecutionState.RUNNING)
        model = store.put_artifact("Model", "file:///m")
        with pytest.raises(NotFoundError, match=r"Artifact ids \[5555\] do not exist"):
            store.publish_execution(
                execution.id,
                state=ExecutionState.COMPLETE,
                outputs=[
                    Event(model.id, execution.id, OUT, "model"),
                    Event(5555, execution.id, OUT, "other"),
                ],
                properties={"x": 1},
            )
        assert store.get_execution(execution.id) == execution
        assert store.get_artifact(model.id).state is ArtifactState.PENDING
        assert store.get_events(execution_ids=[execution.id]) == []

    def test_publish_twice_is_a_conflict(self, store: MetadataStore) -> None:
        execution_id, _ = self._run_with_output(store)
        with pytest.raises(ConflictError, match="was already published as complete"):
            store.publish_execution(execution_id, state=ExecutionState.COMPLETE)

    def test_publish_needs_a_final_state_and_output_events(self, store: MetadataStore) -> None:
        execution = store.put_execution("Trainer")
        model = store.put_artifact("Model", "u")
        with pytest.raises(InvalidInputError, match="publish with a final state"):
            store.publish_execution(execution.id, state=ExecutionState.RUNNING)
        with pytest.raises(InvalidInputError, match="must be an OUTPUT event"):
            store.publish_execution(
                execution.id,
                state=ExecutionState.COMPLETE,
                outputs=[Event(model.id, execution.id, IN, "model")],
            )
        with pytest.raises(NotFoundError, match="Execution 808 does not exist"):
            store.publish_execution(808, state=ExecutionState.COMPLETE)

    def test_find_cached_execution_returns_newest_complete_with_live_outputs(
        self, store: MetadataStore
    ) -> None:
        first, _ = self._run_with_output(store)
        second, _ = self._run_with_output(store)
        self._run_with_output(store, ExecutionState.FAILED)
        found = store.find_cached_execution("key")
        assert found is not None and found.id == second
        assert first < second
        assert store.find_cached_execution("other-key") is None

    def test_cache_lookup_ignores_executions_with_a_non_live_output(
        self, store: MetadataStore
    ) -> None:
        first, _ = self._run_with_output(store)
        _, second_model = self._run_with_output(store)
        store.update_artifact(second_model, state=ArtifactState.DELETED)
        found = store.find_cached_execution("key")
        assert found is not None and found.id == first
        # An output recorded as PENDING after publishing also disqualifies it.
        store.put_events([Event(store.put_artifact("Model", "late").id, first, OUT, "extra")])
        assert store.find_cached_execution("key") is None

    # ---- events ----------------------------------------------------------------------------

    def test_put_events_names_missing_ids(self, store: MetadataStore) -> None:
        execution = store.put_execution("Trainer")
        artifact = store.put_artifact("Examples", "u")
        with pytest.raises(NotFoundError, match=r"Artifact ids \[41, 42\] do not exist"):
            store.put_events([Event(42, execution.id, IN, "x"), Event(41, execution.id, IN, "y")])
        with pytest.raises(NotFoundError, match=r"Execution ids \[9\] do not exist"):
            store.put_events([Event(artifact.id, 9, IN, "x")])

    def test_get_events_filters_oldest_first_and_ignores_duplicates(
        self, store: MetadataStore
    ) -> None:
        a, b = store.put_artifact("Examples", "a"), store.put_artifact("Schema", "b")
        e1, e2 = store.put_execution("T"), store.put_execution("U")
        store.put_events([Event(a.id, e1.id, IN, "examples"), Event(b.id, e1.id, IN, "schema")])
        store.put_events([Event(a.id, e2.id, IN, "examples", index=1)])
        store.put_events([Event(a.id, e1.id, IN, "examples")])  # duplicate edge
        got = store.get_events(artifact_ids=[a.id])
        assert [(e.execution_id, e.index) for e in got] == [(e1.id, 0), (e2.id, 1)]
        assert [e.artifact_id for e in store.get_events(execution_ids=[e1.id])] == [a.id, b.id]
        assert len(store.get_events(artifact_ids=[b.id], execution_ids=[e2.id])) == 2
        assert all(e.created_at is not None for e in got)
        assert store.get_events() == []

    # ---- contexts --------------------------------------------------------------------------

    def test_put_get_and_find_context(self, store: MetadataStore) -> None:
        context = store.put_context("Pipeline", "taxi", properties={"owner": "ml"})
        assert store.get_context(context.id) == context
        assert store.find_context("Pipeline", "taxi") == context
        assert store.find_context("Pipeline", "other") is None
        assert store.find_context("Experiment", "taxi") is None

    def test_put_context_twice_raises_already_exists(self, store: MetadataStore) -> None:
        store.put_context("Pipeline", "taxi")
        with pytest.raises(AlreadyExistsError, match="Context Pipeline/'taxi' already exists"):
            store.put_context("Pipeline", "taxi")

    def test_get_missing_context_raises_not_found(self, store: MetadataStore) -> None:
        with pytest.raises(NotFoundError, match="Context 31 does not exist"):
            store.get_context(31)
        with pytest.raises(NotFoundError, match="Context 31 does not exist"):
            store.update_context(31, properties={"a": 1})

    def test_ensure_context_returns_the_same_context_under_races(
        self, store: MetadataStore
    ) -> None:
        results: list[int] = []
        errors: list[BaseException] = []

        def ensure() -> None:
            try:
                results.append(store.ensure_context("Experiment", "exp").id)
            except BaseException as exc:  # collected and asserted below
                errors.append(exc)

        threads = [threading.Thread(target=ensure) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert errors == []
        assert len(results) == 6 and len(set(results)) == 1
        assert len(store.list_contexts(type_name="Experiment")) == 1

    def test_update_context_merges_properties(self, store: MetadataStore) -> None:
        context = store.put_context("Experiment", "e", properties={"a": 1, "b": 2})
        updated = store.update_context(context.id, properties={"b": 3, "c": [1]})
        assert dict(updated.properties) == {"a": 1, "b": 3, "c": [1]}
        assert store.get_context(context.id) == updated

    def test_list_contexts_newest_first_by_type(self, store: MetadataStore) -> None:
        p1 = store.put_context("Pipeline", "p1")
        store.put_context("Experiment", "x")
        p2 = store.put_context("Pipeline", "p2")
        assert [c.id for c in store.list_contexts(type_name="Pipeline")] == [p2.id, p1.id]
        assert len(store.list_contexts()) == 3
        assert [c.id for c in store.list_contexts(limit=1)] == [p2.id]

    # ---- keyset pages (the console's lists) ------------------------------------------------

    @staticmethod
    def _pages(
        fetch: Callable[[int | None, int], Sequence[R]], key: Callable[[R], int], limit: int
    ) -> list[list[int]]:
        """Walk a keyset listing page by page: each page starts after the last key shown."""
        pages: list[list[int]] = []
        after: int | None = None
        while True:
            rows = fetch(after, limit)
            pages.append([key(r) for r in rows])
            if len(rows) < limit:
                return pages
            after = key(rows[-1])

    def test_contexts_page_newest_first_after_a_cursor(self, store: MetadataStore) -> None:
        runs = [store.put_context("run", f"r{i}").id for i in range(7)]
        store.put_context("pipeline", "p")  # another type never shows up in a page of runs
        pages = self._pages(
            lambda after, n: store.list_contexts(type_name="run", after=after, limit=n),
            lambda c: c.id,
            3,
        )
        assert pages == [runs[::-1][0:3], runs[::-1][3:6], runs[::-1][6:]]
        assert store.list_contexts(type_name="run", after=runs[0]) == []

    def test_artifacts_page_in_both_orders_with_filters(self, store: MetadataStore) -> None:
        run = store.put_context("run", "r")
        ids = [store.put_artifact("Examples", f"mem://{i}").id for i in range(5)]
        store.put_artifact("Model", "mem://m")
        store.attribute(run.id, ids[1:4])
        newest = store.list_artifacts(type_name="Examples", after=ids[3], limit=2)
        assert [a.id for a in newest] == [ids[2], ids[1]]
        oldest = store.list_artifacts(type_name="Examples", newest_first=False, after=ids[3])
        assert [a.id for a in oldest] == [ids[4]]
        in_run = store.list_artifacts(context_id=run.id, after=ids[3])
        assert [a.id for a in in_run] == [ids[2], ids[1]]

    def test_executions_page_after_a_cursor(self, store: MetadataStore) -> None:
        ids = [store.put_execution("Trainer").id for _ in range(4)]
        pages = self._pages(
            lambda after, n: store.list_executions(type_name="Trainer", after=after, limit=n),
            lambda e: e.id,
            2,
        )
        assert pages == [[ids[3], ids[2]], [ids[1], ids[0]], []]
        rest = store.list_executions(newest_first=False, after=ids[1])
        assert [e.id for e in rest] == ids[2:]

    def test_model_versions_and_names_page_by_key(self, store: MetadataStore) -> None:
        for name in ("churn", "taxi", "taxi", "taxi", "fraud"):
            store.create_model_version(name, self._model(store))
        newest = store.list_model_versions("taxi", newest_first=True, limit=2)
        assert [v.version for v in newest] == [3, 2]
        after = store.list_model_versions("taxi", newest_first=True, after=2)
        assert [v.version for v in after] == [1]
        assert [v.version for v in store.list_model_versions("taxi", after=1)] == [2, 3]
        assert store.list_model_names() == ["churn", "fraud", "taxi"]
        assert store.list_model_names(after="churn", limit=1) == ["fraud"]
        assert store.list_model_names(after="taxi") == []

    def test_count_executions_per_state_of_each_context(self, store: MetadataStore) -> None:
        r1, r2, empty = (store.put_context("run", n) for n in ("r1", "r2", "r3"))
        store.put_execution("A", state=ExecutionState.CACHED, contexts=[r1.id])
        store.put_execution("B", state=ExecutionState.RUNNING, contexts=[r1.id, r2.id])
        store.put_execution("C", state=ExecutionState.RUNNING, contexts=[r1.id])
        counts = store.count_executions([r1.id, r2.id, empty.id, 999])
        assert counts == {
            r1.id: {ExecutionState.CACHED: 1, ExecutionState.RUNNING: 2},
            r2.id: {ExecutionState.RUNNING: 1},
        }
        assert store.count_executions([]) == {}
        with pytest.raises(InvalidInputError, match=r"Context id 0 is not valid"):
            store.count_executions([0])

    def test_bad_cursors_name_the_field(self, store: MetadataStore) -> None:
        with pytest.raises(InvalidInputError, match=r"after = 0 is not a valid context cursor"):
            store.list_contexts(type_name="run", after=0)
        with pytest.raises(InvalidInputError, match=r"after = True is not a valid artifact"):
            store.list_artifacts(after=True)
        with pytest.raises(InvalidInputError, match=r"after = -1 is not a valid execution"):
            store.list_executions(after=-1)
        with pytest.raises(InvalidInputError, match=r"after = 3 is a version number, so it needs"):
            store.list_model_versions(after=3)
        with pytest.raises(InvalidInputError, match=r"Limit -1 is not valid"):
            store.list_model_names(limit=-1)

    def test_attribution_and_association_are_idempotent(self, store: MetadataStore) -> None:
        context, other = store.put_context("PipelineRun", "r1"), store.put_context("Pipeline", "p")
        artifact, execution = store.put_artifact("Examples", "u"), store.put_execution("T")
        for _ in range(2):
            store.attribute(context.id, [artifact.id, artifact.id])
            store.associate(context.id, [execution.id])
        store.attribute(other.id, [artifact.id])
        assert [c.id for c in store.contexts_of_artifact(artifact.id)] == [context.id, other.id]
        assert [c.id for c in store.contexts_of_execution(execution.id)] == [context.id]
        assert [a.id for a in store.list_artifacts(context_id=context.id)] == [artifact.id]

    def test_attribute_unknown_ids_raises_not_found(self, store: MetadataStore) -> None:
        context = store.put_context("PipelineRun", "r1")
        with pytest.raises(NotFoundError, match=r"Artifact ids \[12\] do not exist"):
            store.attribute(context.id, [12])
        with pytest.raises(NotFoundError, match=r"Execution ids \[13\] do not exist"):
            store.associate(context.id, [13])
        with pytest.raises(NotFoundError, match="Context 14 does not exist"):
            store.attribute(14, [])

    # ---- lineage ---------------------------------------------------------------------------

    @pytest.mark.parametrize(
        ("hops", "expected"),
        [
            (0, {"a6"}),
            (1, {"a6", "e4"}),
            (2, {"a6", "e4", "a3", "a4", "a5"}),
            (3, {"a6", "e4", "a3", "a4", "a5", "e2", "e3"}),
            (4, {"a6", "e4", "a3", "a4", "a5", "e2", "e3", "a1", "a2"}),
            (5, {"a6", "e4", "a3", "a4", "a5", "e2", "e3", "a1", "a2", "e1"}),
            (9, {"a6", "e4", "a3", "a4", "a5", "e2", "e3", "a1", "a2", "e1"}),
        ],
    )
    def test_upstream_lineage_of_a_model_by_hops(
        self, store: MetadataStore, hops: int, expected: set[str]
    ) -> None:
        graph = build_pipeline_graph(store)
        result = store.lineage(artifact_id=graph.ids["a6"], hops=hops)
        assert graph.names(dict(result.hops)) == expected
        assert {f"a:{a.id}" for a in result.artifacts} | {
            f"e:{e.id}" for e in result.executions
        } == set(result.hops)

    @pytest.mark.parametrize(
        ("hops", "expected"),
        [
            (1, {"a1", "e1", "e3", "e5"}),
            (2, {"a1", "e1", "e3", "e5", "a2", "a4", "a5", "a7"}),
            (3, {"a1", "e1", "e3", "e5", "a2", "a4", "a5", "a7", "e2", "e4", "e6"}),
            (
                5,
                {"a1", "e1", "e3", "e5", "a2", "a4", "a5", "a7", "e2", "e4", "e6"}
                | {"a3", "a6", "a8"},
            ),
        ],
    )
    def test_downstream_lineage_of_raw_examples_by_hops(
        self, store: MetadataStore, hops: int, expected: set[str]
    ) -> None:
        graph = build_pipeline_graph(store)
        result = store.lineage(
            artifact_id=graph.ids["a1"], direction=Direction.DOWNSTREAM, hops=hops
        )
        assert graph.names(dict(result.hops)) == expected

    def test_lineage_in_both_directions_is_ancestors_and_descendants(
        self, store: MetadataStore
    ) -> None:
        graph = build_pipeline_graph(store)
        result = store.lineage(artifact_id=graph.ids["a6"], direction=Direction.BOTH, hops=2)
        assert graph.names(dict(result.hops)) == {
            "a6",
            "e4",
            "a3",
            "a4",
            "a5",
            "e5",
            "e6",
            "a7",
            "a8",
        }
        ids = graph.ids
        assert result.hops[f"a:{ids['a6']}"] == 0
        assert result.hops[f"e:{ids['e5']}"] == 1 and result.hops[f"a:{ids['a8']}"] == 2

    def test_lineage_from_an_execution(self, store: MetadataStore) -> None:
        graph = build_pipeline_graph(store)
        up = store.lineage(execution_id=graph.ids["e4"], hops=1)
        assert graph.names(dict(up.hops)) == {"e4", "a3", "a4", "a5"}
        down = store.lineage(execution_id=graph.ids["e4"], direction=Direction.DOWNSTREAM, hops=2)
        assert graph.names(dict(down.hops)) == {"e4", "a6", "e5", "e6"}

    def test_lineage_returns_the_walked_edges_and_hop_counts(self, store: MetadataStore) -> None:
        graph = build_pipeline_graph(store)
        ids = graph.ids
        result = store.lineage(artifact_id=ids["a6"], hops=2)
        edges = {(e.artifact_id, e.execution_id, e.type) for e in result.events}
        assert edges == {
            (ids["a6"], ids["e4"], OUT),
            (ids["a3"], ids["e4"], IN),
            (ids["a4"], ids["e4"], IN),
            (ids["a5"], ids["e4"], IN),
        }
        assert result.hops[f"a:{ids['a4']}"] == 2 and result.hops[f"e:{ids['e4']}"] == 1
        assert [a.type_name for a in result.artifacts] == [
            "Schema",
            "Examples",
            "TransformGraph",
            "Model",
        ]
        assert store.lineage(artifact_id=ids["a9"], hops=5).hops == {f"a:{ids['a9']}": 0}

    def test_lineage_rejects_bad_starts(self, store: MetadataStore) -> None:
        graph = build_pipeline_graph(store)
        with pytest.raises(InvalidInputError, match="exactly one start"):
            store.lineage(artifact_id=graph.ids["a1"], execution_id=graph.ids["e1"])
        with pytest.raises(InvalidInputError, match="exactly one start"):
            store.lineage()
        with pytest.raises(InvalidInputError, match="hops -1 is not valid"):
            store.lineage(artifact_id=graph.ids["a1"], hops=-1)
        with pytest.raises(NotFoundError, match="Artifact 987 does not exist"):
            store.lineage(artifact_id=987)
        with pytest.raises(NotFoundError, match="Execution 988 does not exist"):
            store.lineage(execution_id=988, direction=Direction.BOTH)

    def test_lineage_nodes_and_edges_equal_what_the_getters_return(
        self, store: MetadataStore
    ) -> None:
        graph = build_pipeline_graph(store)
        ids = graph.ids
        store.update_artifact(ids["a3"], properties={"columns": ["x", "y"], "nested": {"k": 1.5}})
        store.update_execution(ids["e4"], properties={"epochs": 3, "note": "été"})
        pending = store.put_execution("Trainer")  # never started: started_at/ended_at are None
        store.put_events([Event(ids["a6"], pending.id, IN, "base_model")])
        result = store.lineage(artifact_id=ids["a6"], direction=Direction.BOTH, hops=9)
        assert list(result.artifacts) == store.get_artifacts([a.id for a in result.artifacts])
        assert list(result.executions) == [store.get_execution(e.id) for e in result.executions]
        assert pending.id in {e.id for e in result.executions}
        every_event = {
            (e.artifact_id, e.execution_id, e.type, e.port): e
            for e in store.get_events(artifact_ids=[a.id for a in result.artifacts])
        }
        for event in result.events:
            assert every_event[(event.artifact_id, event.execution_id, event.type, event.port)] == (
                event
            )

    def test_lineage_through_a_cycle_visits_each_node_once(self, store: MetadataStore) -> None:
        # An execution that reads and rewrites the same artifact closes a cycle.
        state = store.put_artifact("State", "mem://state", state=ArtifactState.LIVE)
        step = store.put_execution("Refresh", state=ExecutionState.RUNNING)
        store.put_events([Event(state.id, step.id, IN, "state")])
        store.publish_execution(
            step.id,
            state=ExecutionState.COMPLETE,
            outputs=[Event(state.id, step.id, OUT, "state")],
        )
        for direction in Direction:
            result = store.lineage(artifact_id=state.id, direction=direction, hops=1_000_000)
            assert dict(result.hops) == {f"a:{state.id}": 0, f"e:{step.id}": 1}
            assert len(result.events) == 2 if direction is Direction.BOTH else 1

    def test_lineage_walks_a_chain_longer_than_one_statement(self, store: MetadataStore) -> None:
        # 40 runs, each reading the previous one's output: 80 hops from the last to the first.
        previous = store.put_artifact("Model", "mem://m0", state=ArtifactState.LIVE)
        first = previous.id
        for n in range(1, 41):
            step = store.put_execution("Trainer", state=ExecutionState.RUNNING)
            store.put_events([Event(previous.id, step.id, IN, "base")])
            previous = store.put_artifact("Model", f"mem://m{n}", state=ArtifactState.LIVE)
            store.publish_execution(
                step.id,
                state=ExecutionState.COMPLETE,
                outputs=[Event(previous.id, step.id, OUT, "model")],
            )
        result = store.lineage(artifact_id=previous.id, hops=1000)
        assert result.hops[f"a:{first}"] == 80
        assert (len(result.artifacts), len(result.executions), len(result.events)) == (41, 40, 80)
        assert f"a:{first}" not in store.lineage(artifact_id=previous.id, hops=79).hops

    # ---- latest queries --------------------------------------------------------------------

    def test_latest_artifact_by_type_state_and_context(self, store: MetadataStore) -> None:
        live = store.put_artifact("Schema", "s1", state=ArtifactState.LIVE)
        pending = store.put_artifact("Schema", "s2")
        run = store.put_context("PipelineRun", "r")
        assert store.latest_artifact("Schema") == live
        assert store.latest_artifact("Schema", state=None) == pending
        assert store.latest_artifact("Schema", context_id=run.id) is None
        store.attribute(run.id, [live.id])
        assert store.latest_artifact("Schema", context_id=run.id) == live
        assert store.latest_artifact("Model") is None

    def _model(self, store: MetadataStore, state: ArtifactState = ArtifactState.LIVE) -> int:
        return store.put_artifact("Model", "file:///m", state=state).id

    def _blessing(
        self, store: MetadataStore, model_id: int, blessed: int, state: ArtifactState
    ) -> int:
        props = {"blessed": blessed, "current_model_id": model_id, "baseline_model_id": 0}
        return store.put_artifact("ModelBlessing", "file:///b", properties=props, state=state).id

    def test_latest_blessed_model_follows_tfx_strategy(self, store: MetadataStore) -> None:
        live = ArtifactState.LIVE
        assert store.latest_blessed_model() is None
        m1, m2, m3, m4 = (self._model(store) for _ in range(4))
        m5 = self._model(store, ArtifactState.DELETED)
        self._blessing(store, m1, 1, live)
        self._blessing(store, m3, 0, live)  # evaluated, not blessed
        self._blessing(store, m4, 1, ArtifactState.PENDING)  # blessing not published
        self._blessing(store, m5, 1, live)  # model deleted
        found = store.latest_blessed_model()
        assert found is not None and found.id == m1
        self._blessing(store, m2, 1, live)
        found = store.latest_blessed_model()
        assert found is not None and found.id == m2

    def test_latest_blessed_model_within_a_context(self, store: MetadataStore) -> None:
        m1, m2 = self._model(store), self._model(store)
        self._blessing(store, m1, 1, ArtifactState.LIVE)
        self._blessing(store, m2, 1, ArtifactState.LIVE)
        pipeline = store.put_context("Pipeline", "taxi")
        store.attribute(pipeline.id, [m1])
        found = store.latest_blessed_model(context_id=pipeline.id)
        assert found is not None and found.id == m1

    # ---- metrics ---------------------------------------------------------------------------

    def test_log_and_get_metrics_in_key_step_order(self, store: MetadataStore) -> None:
        execution = store.put_execution("Trainer")
        store.log_metrics(execution.id, {"loss": 0.5, "acc": 0.7}, step=1)
        store.log_metrics(execution.id, {"loss": 0.9}, step=0)
        store.log_metrics(execution.id, {"loss": 0.4, "acc": 1}, step=2)
        got = [(m.key, m.step, m.value) for m in store.get_metrics(execution.id)]
        assert got == [
            ("acc", 1, 0.7),
            ("acc", 2, 1.0),
            ("loss", 0, 0.9),
            ("loss", 1, 0.5),
            ("loss", 2, 0.4),
        ]
        assert all(m.timestamp.tzinfo is not None for m in store.get_metrics(execution.id))

    def test_log_metrics_rejects_bad_values(self, store: MetadataStore) -> None:
        execution = store.put_execution("Trainer")
        with pytest.raises(
            InvalidInputError, match="Metric 'loss' has value inf, which is not finite"
        ):
            store.log_metrics(execution.id, {"acc": 1.0, "loss": float("inf")})
        with pytest.raises(InvalidInputError, match="Metric 'acc' has value 'high'"):
            store.log_metrics(execution.id, {"acc": "high"})  # type: ignore[dict-item]
        with pytest.raises(NotFoundError, match="Execution 321 does not exist"):
            store.log_metrics(321, {"acc": 1.0})
        assert store.get_metrics(execution.id) == []

    # ---- model registry rows ---------------------------------------------------------------

    def test_model_versions_count_up_per_name(self, store: MetadataStore) -> None:
        a, b, c = (self._model(store) for _ in range(3))
        v1 = store.create_model_version("taxi", a, description="first")
        v2 = store.create_model_version("taxi", b)
        w1 = store.create_model_version("churn", c)
        assert (v1.version, v2.version, w1.version) == (1, 2, 1)
        assert v1.description == "first" and v1.artifact_id == a
        assert store.get_model_version("taxi", 2) == v2
        assert [(v.name, v.version) for v in store.list_model_versions()] == [
            ("churn", 1),
            ("taxi", 1),
            ("taxi", 2),
        ]
        assert store.list_model_versions("taxi") == [v1, v2]
        assert store.list_model_versions("nothing") == []

    def test_model_version_errors_name_the_problem(self, store: MetadataStore) -> None:
        store.create_model_version("taxi", self._model(store))
        store.create_model_version("taxi", self._model(store))
        with pytest.raises(
            NotFoundError, match=r"Model 'taxi' has no version 7\. Known versions: 1, 2"
        ):
            store.get_model_version("taxi", 7)
        with pytest.raises(
            NotFoundError, match=r"Model 'nope' has no version 1\. Known versions: none"
        ):
            store.get_model_version("nope", 1)
        with pytest.raises(NotFoundError, match="Artifact 999 does not exist"):
            store.create_model_version("taxi", 999)
        with pytest.raises(InvalidInputError, match="Model name 'bad name' is not valid"):
            store.create_model_version("bad name", 1)

    def test_model_versions_are_unique_under_concurrent_callers(self, store: MetadataStore) -> None:
        model = self._model(store)
        versions: list[int] = []
        errors: list[BaseException] = []

        def register() -> None:
            try:
                for _ in range(5):
                    versions.append(store.create_model_version("taxi", model).version)
            except BaseException as exc:  # collected and asserted below
                errors.append(exc)

        threads = [threading.Thread(target=register) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert errors == []
        assert sorted(versions) == list(range(1, 21))

    def test_set_move_and_unset_alias(self, store: MetadataStore) -> None:
        for _ in range(2):
            store.create_model_version("taxi", self._model(store))
        mover = store.put_execution("AliasMove", state=ExecutionState.COMPLETE)
        alias = store.set_model_alias("taxi", "champion", 1, execution_id=None)
        assert alias is not None and (alias.version, alias.execution_id) == (1, None)
        moved = store.set_model_alias("taxi", "champion", 2, execution_id=mover.id)
        assert moved is not None and (moved.version, moved.execution_id) == (2, mover.id)
        store.set_model_alias("taxi", "challenger", 1, execution_id=None)
        assert [(a.alias, a.version) for a in store.list_model_aliases("taxi")] == [
            ("challenger", 1),
            ("champion", 2),
        ]
        assert store.set_model_alias("taxi", "champion", None, execution_id=mover.id) is None
        assert [a.alias for a in store.list_model_aliases()] == ["challenger"]
        assert store.set_model_alias("taxi", "never-set", None, execution_id=None) is None

    def test_alias_to_a_missing_version_raises_not_found(self, store: MetadataStore) -> None:
        store.create_model_version("taxi", self._model(store))
        with pytest.raises(
            NotFoundError, match=r"Model 'taxi' has no version 3\. Known versions: 1"
        ):
            store.set_model_alias("taxi", "champion", 3, execution_id=None)
        with pytest.raises(NotFoundError, match="Execution 55 does not exist"):
            store.set_model_alias("taxi", "champion", 1, execution_id=55)
        assert store.list_model_aliases() == []

    # ---- lifecycle -------------------------------------------------------------------------

    def test_returned_values_are_detached_copies(self, store: MetadataStore) -> None:
        artifact = store.put_artifact("Examples", "u", properties={"a": [1]})
        store.update_artifact(artifact.id, properties={"a": [2]})
        assert dict(artifact.properties) == {"a": [1]}
        with pytest.raises(AttributeError):
            artifact.uri = "other"  # type: ignore[misc]

    def test_a_closed_store_refuses_calls(self, store: MetadataStore) -> None:
        store.close()
        with pytest.raises(BackendError, match="was closed"):
            store.list_artifacts()
