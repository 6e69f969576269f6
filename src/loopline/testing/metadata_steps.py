"""Conformance suite for a step's two transactions: ``start_step`` and ``record_step``.

Part of :class:`loopline.testing.metadata.MetadataStoreContract` (which inherits it); needs
a ``store`` fixture that yields a fresh, empty store.
"""

from __future__ import annotations

import pytest

from loopline.errors import ConflictError, InvalidInputError, NotFoundError
from loopline.metadata.entities import ArtifactState, EventType, ExecutionState
from loopline.metadata.steps import PlannedOutput, StepOutput, StepStart
from loopline.metadata.store import MetadataStore

IN, OUT = EventType.INPUT, EventType.OUTPUT


def _start(store: MetadataStore, *, ports: tuple[str, ...] = ("model",)) -> StepStart:
    data = store.put_artifact("Examples", "file:///d", digest="sha256:d", state=ArtifactState.LIVE)
    run = store.put_context("run", "r1")
    return store.start_step(
        "Trainer",
        name="train",
        cache_key="k1",
        properties={"run": "r1"},
        log_uri="/logs/train.log",
        inputs=[("examples", data.id), ("examples", data.id)],
        contexts=[run.id],
        outputs=[PlannedOutput(p, "Model", f"file:///m/{p}", f"train.{p}") for p in ports],
    )


class StepRecordContract:
    """How a store records a pipeline step. Needs a ``store`` fixture."""

    __test__ = False

    def test_start_step_records_a_running_execution_its_inputs_and_pending_outputs(
        self, store: MetadataStore
    ) -> None:
        start = _start(store, ports=("model", "report"))
        execution = store.get_execution(start.execution.id)
        assert execution == start.execution
        assert execution.state is ExecutionState.RUNNING and execution.started_at is not None
        assert (execution.name, execution.cache_key, execution.log_uri) == (
            "train", "k1", "/logs/train.log",
        )  # fmt: skip
        assert [a.name for a in start.outputs] == ["train.model", "train.report"]
        for artifact in start.outputs:
            assert store.get_artifact(artifact.id) == artifact
            assert artifact.state is ArtifactState.PENDING
            assert artifact.properties == {"producer_execution": execution.id}
        events = store.get_events(execution_ids=[execution.id])
        assert sorted((e.port, e.index, e.type) for e in events) == [
            ("examples", 0, IN), ("examples", 1, IN),
        ]  # fmt: skip
        [run] = store.list_contexts(type_name="run")
        assert [e.id for e in store.list_executions(context_id=run.id)] == [execution.id]
        assert store.list_artifacts(context_id=run.id) == []  # attributed when published

    def test_start_step_with_an_unknown_input_or_context_records_nothing(
        self, store: MetadataStore
    ) -> None:
        with pytest.raises(NotFoundError, match="Artifact 4242 does not exist"):
            store.start_step("Trainer", inputs=[("examples", 4242)],
                             outputs=[PlannedOutput("m", "Model", "file:///m")])  # fmt: skip
        with pytest.raises(NotFoundError, match="Context 77 does not exist"):
            store.start_step("Trainer", contexts=[77])
        assert store.list_executions() == [] and store.list_artifacts() == []

    def test_start_step_rejects_a_planned_output_without_a_uri(self, store: MetadataStore) -> None:
        with pytest.raises(InvalidInputError, match="Artifact URI ''"):
            store.start_step("Trainer", outputs=[PlannedOutput("m", "Model", "")])
        assert store.list_executions() == []

    def test_record_step_complete_publishes_every_output_at_once(
        self, store: MetadataStore
    ) -> None:
        start = _start(store, ports=("model", "report"))
        model, report = start.outputs
        [run] = store.list_contexts(type_name="run")
        record = store.record_step(
            start.execution.id,
            state=ExecutionState.COMPLETE,
            outputs=[
                StepOutput(model.id, "model", "sha256:m", {"size": 3}),
                StepOutput(report.id, "report", "sha256:r"),
            ],
            properties={"attempts": 1},
            contexts=[run.id],
        )
        done = record.execution
        assert done == store.get_execution(start.execution.id)
        assert record.outputs == (store.get_artifact(model.id), store.get_artifact(report.id))
        assert done.state is ExecutionState.COMPLETE and done.ended_at is not None
        assert done.properties == {"run": "r1", "attempts": 1}
        live = store.get_artifact(model.id)
        assert (live.state, live.digest) == (ArtifactState.LIVE, "sha256:m")
        assert live.properties == {"producer_execution": start.execution.id, "size": 3}
        assert store.get_artifact(report.id).state is ArtifactState.LIVE
        outs = [e for e in store.get_events(execution_ids=[done.id]) if e.type is OUT]
        assert sorted((e.port, e.index, e.artifact_id) for e in outs) == [
            ("model", 0, model.id), ("report", 0, report.id),
        ]  # fmt: skip
        assert {a.id for a in store.list_artifacts(context_id=run.id)} == {model.id, report.id}
        assert store.find_cached_execution("k1") == done

    def test_record_step_failed_discards_the_pending_outputs(self, store: MetadataStore) -> None:
        start = _start(store)
        record = store.record_step(
            start.execution.id,
            state=ExecutionState.FAILED,
            discarded=[start.outputs[0].id],
            properties={"error": "boom"},
        )
        failed = record.execution
        assert record.outputs == ()
        assert failed.state is ExecutionState.FAILED and failed.properties["error"] == "boom"
        assert store.get_artifact(start.outputs[0].id).state is ArtifactState.DELETED
        assert [e.type for e in store.get_events(execution_ids=[failed.id])] == [IN, IN]
        assert store.find_cached_execution("k1") is None

    def test_record_step_is_all_or_nothing(self, store: MetadataStore) -> None:
        start = _start(store)
        [model] = start.outputs
        with pytest.raises(NotFoundError, match="Artifact 4242 does not exist"):
            store.record_step(
                start.execution.id,
                state=ExecutionState.COMPLETE,
                outputs=[StepOutput(model.id, "model", "sha256:m"),
                         StepOutput(4242, "other", "sha256:x")],
            )  # fmt: skip
        assert store.get_execution(start.execution.id).state is ExecutionState.RUNNING
        assert store.get_artifact(model.id).state is ArtifactState.PENDING
        with pytest.raises(NotFoundError, match="Context 99 does not exist"):
            store.record_step(start.execution.id, state=ExecutionState.COMPLETE,
                              outputs=[StepOutput(model.id, "model", "sha256:m")],
                              contexts=[99])  # fmt: skip
        assert store.get_artifact(model.id).state is ArtifactState.PENDING
        assert [e.type for e in store.get_events(execution_ids=[start.execution.id])] == [IN, IN]

    def test_record_step_refuses_a_second_record_and_a_non_pending_output(
        self, store: MetadataStore
    ) -> None:
        start = _start(store)
        [model] = start.outputs
        other = store.put_artifact("Model", "file:///o", state=ArtifactState.LIVE)
        with pytest.raises(ConflictError, match=f"Artifact {other.id} is live, not pending"):
            store.record_step(start.execution.id, state=ExecutionState.COMPLETE,
                              outputs=[StepOutput(other.id, "model", "sha256:o")])  # fmt: skip
        store.record_step(start.execution.id, state=ExecutionState.COMPLETE,
                          outputs=[StepOutput(model.id, "model", "sha256:m")])  # fmt: skip
        with pytest.raises(ConflictError, match="already published as complete"):
            store.record_step(start.execution.id, state=ExecutionState.FAILED)

    def test_record_step_rejects_bad_states_and_outputs_of_a_failed_step(
        self, store: MetadataStore
    ) -> None:
        start = _start(store)
        [model] = start.outputs
        with pytest.raises(InvalidInputError, match="as running: record it with a final state"):
            store.record_step(start.execution.id, state=ExecutionState.RUNNING)
        with pytest.raises(InvalidInputError, match="outputs are published only by a COMPLETE"):
            store.record_step(start.execution.id, state=ExecutionState.FAILED,
                              outputs=[StepOutput(model.id, "model", "sha256:m")])  # fmt: skip
        with pytest.raises(NotFoundError, match="Execution 4242 does not exist"):
            store.record_step(4242, state=ExecutionState.FAILED)
        with pytest.raises(InvalidInputError, match="Artifact digest ''"):
            store.record_step(start.execution.id, state=ExecutionState.COMPLETE,
                              outputs=[StepOutput(model.id, "model", "")])  # fmt: skip
        assert store.get_execution(start.execution.id).state is ExecutionState.RUNNING
