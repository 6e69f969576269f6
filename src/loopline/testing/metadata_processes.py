"""Helpers for multi-process tests of metadata stores (importable by spawned processes,
which cannot import functions from test modules)."""

from __future__ import annotations

from loopline.metadata.entities import ArtifactState, Event, EventType, ExecutionState

IN, OUT = EventType.INPUT, EventType.OUTPUT


def hammer_store(url: str, worker: int, rounds: int, model_name: str = "shared") -> list[int]:
    """Write ``rounds`` short transactions of each kind to the store at ``url``.

    Meant to run in several OS processes at once (``multiprocessing`` with spawn) against one
    database: records artifacts, executions, events, publishes, and registers a version of
    ``model_name`` per round. Returns the model versions this worker got.
    """
    from loopline.metadata.urls import open_store

    store = open_store(url)
    try:
        versions: list[int] = []
        context = store.ensure_context("Experiment", "hammer")
        for i in range(rounds):
            data = store.put_artifact("Examples", f"mem://w{worker}/d{i}", state=ArtifactState.LIVE)
            execution = store.put_execution(
                "Trainer",
                name=f"w{worker}-{i}",
                state=ExecutionState.RUNNING,
                cache_key=f"w{worker}",
            )
            store.associate(context.id, [execution.id])
            store.put_events([Event(data.id, execution.id, IN, "examples")])
            model = store.put_artifact("Model", f"mem://w{worker}/m{i}")
            store.log_metrics(execution.id, {"loss": 1.0 / (i + 1)}, step=i)
            store.publish_execution(
                execution.id,
                state=ExecutionState.COMPLETE,
                outputs=[Event(model.id, execution.id, OUT, "model")],
            )
            versions.append(store.create_model_version(model_name, model.id).version)
            store.lineage(artifact_id=model.id, hops=2)
        return versions
    finally:
        store.close()


def open_and_put_artifact(url: str) -> int:
    """Open (and so migrate) the store at ``url``, record one artifact, return its id.

    For tests where several processes open a fresh database at the same time.
    """
    from loopline.metadata.urls import open_store

    store = open_store(url)
    try:
        return store.put_artifact("Examples", "mem://first-open").id
    finally:
        store.close()
