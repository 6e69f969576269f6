"""Make the store consistent after a runner was killed (``kill -9``, power loss, OOM).

A dead runner leaves executions in RUNNING, output artifacts in PENDING (perhaps with bytes
already renamed into place) and staging directories. Before a run starts, every RUNNING
execution whose owner process is gone is marked FAILED, its PENDING outputs are deleted and
marked DELETED, and the artifact store sweeps its staging area. Steps that had completed are
untouched: their outputs are LIVE, so the next run takes them from the cache.

A power loss can also undo the last committed rows (SQLite ``synchronous=NORMAL``) while the
renames of their bytes into place survive: :func:`sweep_orphaned_folders` removes published
folders no live or pending row names, once ``grace`` seconds old
(:meth:`ArtifactStore.sweep_orphans`). It reads every artifact row and walks the artifact
root, so ``loopline gc`` runs it, not every pipeline run.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from loopline.artifacts.orphans import ORPHAN_GRACE_SECONDS
from loopline.artifacts.owner import Owner
from loopline.artifacts.store import ArtifactStore
from loopline.errors import LooplineError
from loopline.metadata.entities import ArtifactState, ExecutionState
from loopline.metadata.store import MetadataStore


def recover(metadata: MetadataStore, artifacts: ArtifactStore) -> list[int]:
    """Fail the executions of dead runners and delete their unpublished outputs.

    Returns the ids of the executions that were marked FAILED.
    """
    dead: list[int] = []
    for execution in metadata.list_executions(state=ExecutionState.RUNNING):
        owner = Owner.from_dict(execution.properties.get("owner"))
        if owner is None or not owner.is_dead():
            continue
        metadata.update_execution(
            execution.id,
            state=ExecutionState.FAILED,
            ended_at=datetime.now(UTC),
            properties={
                "error": f"the process running this step (pid {owner.pid}) died before it "
                "finished; its unpublished outputs were removed",
            },
        )
        dead.append(execution.id)
    if dead:
        dead_set = set(dead)
        for artifact in metadata.list_artifacts(state=ArtifactState.PENDING):
            if artifact.properties.get("producer_execution") in dead_set:
                _delete(metadata, artifacts, artifact.id, artifact.uri)
    for run in metadata.list_contexts(type_name="run", limit=50):
        if run.properties.get("status") != "running":
            continue
        owner = Owner.from_dict(run.properties.get("owner"))
        if owner is not None and owner.is_dead():
            metadata.update_context(
                run.id,
                properties={"status": "crashed", "ended_at": datetime.now(UTC).isoformat()},
            )
    artifacts.sweep()
    return dead


def sweep_orphaned_folders(
    metadata: MetadataStore, artifacts: ArtifactStore, *, grace: float = ORPHAN_GRACE_SECONDS
) -> list[str]:
    """Remove published folders that no live or pending artifact row names (a power loss
    undid their rows), once ``grace`` seconds old; returns the URIs removed."""
    referenced = [
        a.uri
        for state in (ArtifactState.LIVE, ArtifactState.PENDING)
        for a in metadata.list_artifacts(state=state)
    ]
    return artifacts.sweep_orphans(referenced, now=time.time(), grace=grace)


def _delete(metadata: MetadataStore, artifacts: ArtifactStore, artifact_id: int, uri: str) -> None:
    try:
        artifacts.delete(uri)
    except LooplineError:
        pass  # an invalid URI was never written; the row is still marked deleted
    metadata.update_artifact(artifact_id, state=ArtifactState.DELETED)
