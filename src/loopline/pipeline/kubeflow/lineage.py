"""Lineage of a step run by Kubeflow Pipelines, written to loopline's metadata store from
inside the step's container (when ``LOOPLINE_DB_URL`` reaches one).

The same rows the local runner writes: contexts ``pipeline`` and ``run`` (the KFP job name),
an execution per step with its parameters and code fingerprint, INPUT/OUTPUT events, output
artifacts LIVE with their content digests and KFP URIs. An input produced by an earlier step
of the same run is found by its URI, so the chain of executions is connected.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from loopline import __version__
from loopline.metadata.entities import ArtifactState, Event, EventType, ExecutionState
from loopline.metadata.store import MetadataStore
from loopline.pipeline.kubeflow.executor_io import RuntimeArtifact
from loopline.pipeline.step import Step
from loopline.types import Json

ENGINE = "kubeflow"


class KfpLineage:
    """Records one step's execution in ``store`` under the run's contexts."""

    def __init__(self, store: MetadataStore, pipeline: str, run_name: str) -> None:
        self.store = store
        self.pipeline_ctx = store.ensure_context("pipeline", pipeline)
        self.run_ctx = store.ensure_context(
            "run",
            run_name,
            properties={"pipeline": pipeline, "engine": ENGINE, "loopline_version": __version__},
        )
        self.contexts = (self.pipeline_ctx.id, self.run_ctx.id)

    def begin(
        self,
        step: Step,
        params: Mapping[str, Json],
        inputs: Mapping[str, tuple[str, RuntimeArtifact]],
        code_fingerprint: str,
        now: datetime,
    ) -> tuple[int, dict[str, int]]:
        """A RUNNING execution with its INPUT events; returns its id and each input's
        artifact id. ``inputs`` maps a port to (loopline type name, runtime artifact)."""
        known = {a.uri: a.id for a in self.store.list_artifacts(context_id=self.run_ctx.id)}
        input_ids: dict[str, int] = {}
        for port, (type_name, art) in inputs.items():
            found = known.get(art.uri)
            if found is None:  # produced outside this store (another run, an importer)
                found = self.store.put_artifact(
                    type_name,
                    art.uri,
                    name=art.name,
                    digest=art.digest,
                    properties=art.properties(),
                    state=ArtifactState.LIVE,
                ).id
            input_ids[port] = found
        execution = self.store.put_execution(
            step.component.name,
            name=step.id,
            state=ExecutionState.RUNNING,
            properties={
                "component": step.component.name,
                "step": step.id,
                "run": self.run_ctx.name,
                "pipeline": self.pipeline_ctx.name,
                "engine": ENGINE,
                "parameters": dict(params),
                "input_digests": {p: a.digest for p, (_, a) in inputs.items()},
                "code_fingerprint": code_fingerprint,
                "loopline_version": __version__,
            },
            started_at=now,
            inputs=sorted(input_ids.items()),
            contexts=self.contexts,
        )
        return execution.id, input_ids

    def complete(
        self,
        execution_id: int,
        outputs: Mapping[str, tuple[str, RuntimeArtifact]],
        metrics: list[tuple[str, float, int]],
        extra: Mapping[str, Json],
        now: datetime,
    ) -> dict[str, int]:
        """Publish the outputs (LIVE, with digests) and finish the execution COMPLETE."""
        events = []
        ids: dict[str, int] = {}
        for port, (type_name, art) in outputs.items():
            row = self.store.put_artifact(
                type_name,
                art.uri,
                name=art.name,
                digest=art.digest,
                properties={**art.properties(), "producer_execution": execution_id},
                state=ArtifactState.PENDING,
            )
            ids[port] = row.id
            events.append(Event(row.id, execution_id, EventType.OUTPUT, port))
        for key, value, index in metrics:
            self.store.log_metrics(execution_id, {key: value}, step=index)
        self.store.publish_execution(
            execution_id,
            state=ExecutionState.COMPLETE,
            outputs=events,
            properties=dict(extra),
            ended_at=now,
            contexts=self.contexts,
        )
        return ids

    def failed(self, execution_id: int, error: str, now: datetime) -> None:
        """Finish the execution FAILED with the error."""
        self.store.update_execution(
            execution_id, state=ExecutionState.FAILED, properties={"error": error}, ended_at=now
        )
