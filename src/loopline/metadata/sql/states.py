"""Allowed state transitions of artifacts and executions (a table, not scattered ifs).

Setting the state an object already has is always allowed (a no-op for the state).
"""

from __future__ import annotations

from loopline.errors import ConflictError
from loopline.metadata.entities import ArtifactState, ExecutionState

ARTIFACT_TRANSITIONS: dict[ArtifactState, frozenset[ArtifactState]] = {
    ArtifactState.PENDING: frozenset({ArtifactState.LIVE, ArtifactState.DELETED}),
    ArtifactState.LIVE: frozenset({ArtifactState.DELETED}),
    ArtifactState.DELETED: frozenset(),
}

EXECUTION_TRANSITIONS: dict[ExecutionState, frozenset[ExecutionState]] = {
    ExecutionState.NEW: frozenset(
        {
            ExecutionState.RUNNING,
            ExecutionState.COMPLETE,
            ExecutionState.FAILED,
            ExecutionState.CACHED,
            ExecutionState.CANCELED,
        }
    ),
    ExecutionState.RUNNING: frozenset(
        {
            ExecutionState.COMPLETE,
            ExecutionState.FAILED,
            ExecutionState.CACHED,
            ExecutionState.CANCELED,
        }
    ),
    ExecutionState.COMPLETE: frozenset(),
    ExecutionState.FAILED: frozenset(),
    ExecutionState.CACHED: frozenset(),
    ExecutionState.CANCELED: frozenset(),
}


def check_artifact_transition(artifact_id: int, old: ArtifactState, new: ArtifactState) -> None:
    if new != old and new not in ARTIFACT_TRANSITIONS[old]:
        allowed = sorted(s.value for s in ARTIFACT_TRANSITIONS[old]) or ["none"]
        raise ConflictError(
            f"Artifact {artifact_id} is {old.value}; it cannot become {new.value} "
            f"(allowed from {old.value}: {', '.join(allowed)}). Record a new artifact instead."
        )


def check_execution_transition(execution_id: int, old: ExecutionState, new: ExecutionState) -> None:
    if new != old and new not in EXECUTION_TRANSITIONS[old]:
        allowed = sorted(s.value for s in EXECUTION_TRANSITIONS[old]) or ["none"]
        raise ConflictError(
            f"Execution {execution_id} is {old.value}; it cannot become {new.value} "
            f"(allowed from {old.value}: {', '.join(allowed)}). Record a new execution instead."
        )
