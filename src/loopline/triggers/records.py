"""What a triggered run writes to the metadata store, so the loop is lineage.

Each run is a ``TriggerRun`` execution associated with the context ``trigger/<name>``
(artifacts recorded here have ``trigger://`` URIs: they hold no bytes):

- INPUT ``cause``: the events that started it — an ``Alert`` artifact (which the monitor's
  ``MonitorWindow`` execution made from the model version it watched), a model version's
  ``Model`` (registry events), or a ``DataSpan`` / ``ScheduleTick`` artifact recorded here;
- INPUT ``candidate``: the ``Model`` its pipeline run pushed (property ``pipeline_run`` names
  that run);
- OUTPUT ``outcome``: a ``TriggerOutcome`` artifact (state, message, version), recorded when
  the run ends. A promotion's ``AliasMove`` names it as evidence, so lineage walks
  promotion → outcome → trigger run → alert → monitored model version.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from loopline.metadata.entities import ArtifactState, Event, EventType, ExecutionState
from loopline.metadata.store import MetadataStore
from loopline.triggers.decide import Cause
from loopline.triggers.run import RunState, TriggerRun
from loopline.types import ArtifactId, ExecutionId, Json

TRIGGER_RUN_TYPE = "TriggerRun"
TRIGGER_CONTEXT_TYPE = "trigger"
OUTCOME_TYPE = "TriggerOutcome"


def cause_artifacts(metadata: MetadataStore, causes: Sequence[Cause]) -> list[ArtifactId]:
    """The artifact ids of ``causes``, recording those that are not artifacts yet."""
    ids = []
    for cause in causes:
        if cause.artifact_id is not None:
            ids.append(cause.artifact_id)
            continue
        artifact = metadata.put_artifact(
            cause.type_name,
            cause.uri,
            properties=dict(cause.properties),
            state=ArtifactState.LIVE,
        )
        ids.append(artifact.id)
    return list(dict.fromkeys(ids))


def record_start(
    metadata: MetadataStore, run: TriggerRun, causes: Sequence[ArtifactId]
) -> ExecutionId:
    """The run's ``TriggerRun`` execution (RUNNING), reading its causes."""
    context = metadata.ensure_context(TRIGGER_CONTEXT_TYPE, run.trigger)
    execution = metadata.put_execution(
        TRIGGER_RUN_TYPE,
        name=f"{run.trigger}/{run.id}",
        state=ExecutionState.RUNNING,
        started_at=datetime.now(UTC),
        properties={
            "trigger": run.trigger,
            "run": run.id,
            "model": run.model,
            "key": run.key,
            "keys": list(run.keys),
            "params": dict(run.params),
            "reason": run.cause.get("summary"),
            "state": RunState.PENDING.value,
        },
        inputs=[("cause", artifact) for artifact in causes],
        contexts=[context.id],
    )
    return execution.id


def record_candidate(
    metadata: MetadataStore,
    execution_id: ExecutionId,
    model_artifact: ArtifactId,
    properties: Mapping[str, Json],
) -> None:
    """The pushed model the run goes on to roll out."""
    metadata.put_events([Event(model_artifact, execution_id, EventType.INPUT, "candidate")])
    metadata.update_execution(execution_id, properties=dict(properties))


def record_progress(
    metadata: MetadataStore, execution_id: ExecutionId, properties: Mapping[str, Json]
) -> None:
    metadata.update_execution(execution_id, properties=dict(properties))


def record_outcome(
    metadata: MetadataStore,
    run: TriggerRun,
    state: RunState,
    message: str,
    properties: Mapping[str, Json],
) -> ArtifactId:
    """The run's ``TriggerOutcome`` artifact, as an OUTPUT of its execution (when it has one)."""
    artifact = metadata.put_artifact(
        OUTCOME_TYPE,
        f"trigger://{run.trigger}/runs/{run.id}",
        name=f"{run.trigger}/{run.id}",
        properties={
            "trigger": run.trigger,
            "run": run.id,
            "model": run.model,
            "state": state.value,
            "message": message,
            **properties,
        },
        state=ArtifactState.LIVE,
    )
    if run.execution_id is not None:
        metadata.put_events([Event(artifact.id, run.execution_id, EventType.OUTPUT, "outcome")])
    return artifact.id


def record_end(
    metadata: MetadataStore, execution_id: ExecutionId, state: RunState, message: str
) -> None:
    """Finish the execution: FAILED for a failed run, COMPLETE for every other end (a run
    that was not blessed or whose rollout was aborted did its job: it found out)."""
    metadata.update_execution(
        execution_id,
        state=ExecutionState.FAILED if state is RunState.FAILED else ExecutionState.COMPLETE,
        ended_at=datetime.now(UTC),
        properties={"state": state.value, "message": message},
    )
