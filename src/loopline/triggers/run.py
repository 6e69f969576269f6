"""One firing of a trigger: a ``TriggerRun`` and the states it goes through (a table).

::

    pending ──► running ──► rollingOut ──► promoted
       │           │  │ │         │  └───► aborted     (the rollout ended Degraded)
       │           │  │ │         └──────► failed      (champion moved meanwhile, deployment gone)
       │           │  │ └► succeeded                   (no rollout, or nothing new to roll out)
       │           │  └──► notBlessed / blocked        (the Evaluator or a gate said no)
       └───────────┴─────► failed                      (the process failed, timed out or was lost)

A run is created ``pending`` before its process starts (its keys are reserved in the same
transaction, so an event is never launched twice) and becomes ``running`` with the process's
identity (pid and start time), which a restarted control plane uses to find it again.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from loopline.errors import ConflictError
from loopline.types import Json, JsonDict


class RunState(enum.Enum):
    PENDING = "pending"
    RUNNING = "running"
    ROLLING_OUT = "rollingOut"
    SUCCEEDED = "succeeded"
    PROMOTED = "promoted"
    NOT_BLESSED = "notBlessed"
    BLOCKED = "blocked"
    ABORTED = "aborted"
    FAILED = "failed"

    @property
    def terminal(self) -> bool:
        return not TRANSITIONS[self]


TRANSITIONS: dict[RunState, frozenset[RunState]] = {
    RunState.PENDING: frozenset({RunState.RUNNING, RunState.FAILED}),
    RunState.RUNNING: frozenset(
        {
            RunState.ROLLING_OUT,
            RunState.SUCCEEDED,
            RunState.NOT_BLESSED,
            RunState.BLOCKED,
            RunState.FAILED,
        }
    ),
    RunState.ROLLING_OUT: frozenset({RunState.PROMOTED, RunState.ABORTED, RunState.FAILED}),
    RunState.SUCCEEDED: frozenset(),
    RunState.PROMOTED: frozenset(),
    RunState.NOT_BLESSED: frozenset(),
    RunState.BLOCKED: frozenset(),
    RunState.ABORTED: frozenset(),
    RunState.FAILED: frozenset(),
}

ACTIVE_STATES = frozenset(s for s in RunState if not s.terminal)


def check_transition(run_id: int, old: RunState, new: RunState) -> None:
    """Raise ConflictError unless a run may go from ``old`` to ``new``."""
    if new != old and new not in TRANSITIONS[old]:
        allowed = sorted(s.value for s in TRANSITIONS[old]) or ["none"]
        raise ConflictError(
            f"Trigger run {run_id} is {old.value}; it cannot become {new.value} (allowed: "
            f"{', '.join(allowed)})."
        )


@dataclass(frozen=True, slots=True)
class TriggerRun:
    """A run as stored.

    ``cause`` describes the events (summary, keys, lineage inputs); ``process`` the child
    (pid, start ticks, host, log and result files); ``detail`` what later phases learned (the
    pipeline run, the pushed version, the champion before the rollout, the deployment's
    generation after the model was set, the outcome artifact).
    """

    id: int
    trigger: str
    model: str
    key: str
    keys: tuple[str, ...]
    state: RunState
    params: Mapping[str, Json]
    cause: Mapping[str, Json]
    created_at: float
    updated_at: float
    ended_at: float | None = None
    execution_id: int | None = None
    message: str = ""
    process: Mapping[str, Json] = field(default_factory=dict)
    detail: Mapping[str, Json] = field(default_factory=dict)

    def to_dict(self) -> JsonDict:
        """The run as the API shows it."""
        return {
            "id": self.id,
            "trigger": self.trigger,
            "model": self.model,
            "key": self.key,
            "keys": list(self.keys),
            "state": self.state.value,
            "params": dict(self.params),
            "cause": dict(self.cause),
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
            "endedAt": self.ended_at,
            "executionId": self.execution_id,
            "message": self.message,
            "process": dict(self.process),
            "detail": dict(self.detail),
        }


@dataclass(frozen=True, slots=True)
class RunChange:
    """Fields to change on a run (None: leave as is); ``process``/``detail`` are merged."""

    state: RunState | None = None
    message: str | None = None
    execution_id: int | None = None
    ended_at: float | None = None
    process: Mapping[str, Json] | None = None
    detail: Mapping[str, Json] | None = None
