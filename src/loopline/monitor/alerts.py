"""Recording alert events in the metadata store, exactly once, with lineage to the model.

Each event becomes an ``Alert`` artifact (uri ``monitor://<key>``: the metadata store needs a
non-empty uri and an alert has no bytes; name = the event's key) produced by a
``MonitorWindow`` execution whose inputs are the model version's ``Model`` artifact (port
``model``) and its reference data (port ``reference``: the examples, statistics and schema), so
lineage goes alert → model → pipeline run. Both are associated with the model's registry
context (type ``model``), so alerts of one model list by context.

Properties of the Alert (the contract triggers read): ``monitor``, ``rule``, ``model``,
``version``, ``state`` (firing | resolved), ``severity``, ``reason``, ``first_window``,
``last_window``, ``metric``, ``value``.

Exactly once: the artifact is created PENDING, the execution RUNNING with the event's key as
its cache key, then :meth:`publish_execution` turns both final in one transaction. A crash in
between leaves a PENDING artifact and, at most, a RUNNING execution; the retry finds both (the
artifact by its name, the execution by its cache key) and publishes them, so no alert stays
PENDING.
"""

from __future__ import annotations

from collections.abc import Sequence

from loopline.metadata import ArtifactState, Event, EventType, ExecutionState, MetadataStore
from loopline.monitor.rules import AlertEvent
from loopline.registry import MODEL_CONTEXT_TYPE
from loopline.types import ArtifactId, Json

ALERT_TYPE = "Alert"
EXECUTION_TYPE = "MonitorWindow"


def record_alert(
    metadata: MetadataStore,
    event: AlertEvent,
    model_artifact: ArtifactId,
    reference: Sequence[ArtifactId] = (),
) -> ArtifactId:
    """The id of the LIVE ``Alert`` artifact of ``event``, recording it unless it already is."""
    done = metadata.list_executions(type_name=EXECUTION_TYPE, cache_key=event.key, limit=1)
    execution = done[0] if done else None
    if execution is not None and execution.state is ExecutionState.COMPLETE:
        outputs = [
            e.artifact_id
            for e in metadata.get_events(execution_ids=[execution.id])
            if e.type is EventType.OUTPUT
        ]
        if outputs:
            return outputs[0]
    context = metadata.find_context(MODEL_CONTEXT_TYPE, event.model)
    contexts = [] if context is None else [context.id]
    props: dict[str, Json] = dict(event.to_dict())
    # A crash between the steps below left this event's artifact PENDING: publish that one, so
    # no PENDING alert is left behind (triggers stop their cursor before a pending alert).
    orphans = metadata.list_artifacts(type_name=ALERT_TYPE, state=ArtifactState.PENDING)
    alert = next((a for a in orphans if a.name == event.key), None)
    if alert is None:
        alert = metadata.put_artifact(
            ALERT_TYPE,
            f"monitor://{event.key}",
            name=event.key,
            properties=props,
            state=ArtifactState.PENDING,
        )
    if execution is None:
        inputs = [("model", model_artifact), *(("reference", a) for a in reference)]
        execution = metadata.put_execution(
            EXECUTION_TYPE,
            name=f"{event.monitor}/{event.version}/{event.first_window}-{event.last_window}",
            state=ExecutionState.RUNNING,
            cache_key=event.key,
            properties={
                "monitor": event.monitor,
                "model": event.model,
                "version": event.version,
                "first_window": event.first_window,
                "last_window": event.last_window,
            },
            inputs=inputs,
            contexts=contexts,
        )
    metadata.publish_execution(
        execution.id,
        state=ExecutionState.COMPLETE,
        outputs=[Event(alert.id, execution.id, EventType.OUTPUT, "alert")],
        contexts=contexts,
    )
    return alert.id
