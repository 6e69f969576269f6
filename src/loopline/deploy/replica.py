"""Replica: one model-server process of a revision (the Kubernetes pod equivalent).

Phase changes go through :func:`transition`, which checks :data:`ALLOWED_TRANSITIONS` (the
state machine as data, checked in one place).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from typing import Any

from loopline.errors import ConflictError


class ReplicaPhase(enum.Enum):
    """Lifecycle of a replica slot.

    PENDING → RUNNING (``ready`` follows the readiness probe) → TERMINATING → (record removed).
    RUNNING/PENDING → FAILED when the process exits or cannot start; FAILED → PENDING when the
    controller restarts it after its crash back-off.
    """

    PENDING = "Pending"  # process started, readiness not yet seen
    RUNNING = "Running"  # process alive; ``ready`` says whether it passes readiness
    TERMINATING = "Terminating"  # draining, then SIGTERM → SIGKILL; counts for nothing
    FAILED = "Failed"  # process exited or failed to start; restarts after back-off


ALLOWED_TRANSITIONS: dict[ReplicaPhase, frozenset[ReplicaPhase]] = {
    ReplicaPhase.PENDING: frozenset(
        {ReplicaPhase.RUNNING, ReplicaPhase.FAILED, ReplicaPhase.TERMINATING}
    ),
    ReplicaPhase.RUNNING: frozenset({ReplicaPhase.FAILED, ReplicaPhase.TERMINATING}),
    ReplicaPhase.FAILED: frozenset({ReplicaPhase.PENDING, ReplicaPhase.TERMINATING}),
    ReplicaPhase.TERMINATING: frozenset(),
}


@dataclass(frozen=True, slots=True)
class ExitInfo:
    """How a replica's last process ended."""

    at: float  # seconds since the epoch
    code: int | None  # None when the process was re-adopted (not our child) or never started
    message: str  # "exited with code 1", "failed to start: …"
    start_failed: bool = False  # the engine could not launch it (FailedCreate)


@dataclass(frozen=True, slots=True)
class Replica:
    """A replica slot and the process currently filling it.

    ``pid`` with ``process_start`` (clock ticks since boot, from ``/proc/<pid>/stat``)
    identifies the process, so a reused pid is never mistaken for it. ``restarts`` counts
    every restart (reported); ``crash_streak`` drives the back-off and is reset when the
    process ran long enough.
    """

    id: str
    deployment: str
    revision: str  # revision hash
    phase: ReplicaPhase
    created_at: float
    port: int | None = None
    pid: int | None = None
    process_start: int | None = None
    started_at: float | None = None
    ready: bool = False
    ready_since: float | None = None
    restarts: int = 0
    crash_streak: int = 0
    probe_failures: int = 0  # consecutive failed readiness probes while ready
    last_exit: ExitInfo | None = None
    log_path: str | None = None

    def is_failing(self) -> bool:
        """Exited (or could not start), or crashed before and not ready again yet."""
        if self.last_exit is None:
            return False
        return self.phase is ReplicaPhase.FAILED or (self.crash_streak >= 2 and not self.ready)

    def is_available(self, min_ready_seconds: int, now: float) -> bool:
        """Ready for at least ``min_ready_seconds`` (Kubernetes ``IsPodAvailable``)."""
        if self.phase is not ReplicaPhase.RUNNING or not self.ready or self.ready_since is None:
            return False
        return min_ready_seconds == 0 or self.ready_since + min_ready_seconds < now


def transition(replica: Replica, phase: ReplicaPhase, **changes: Any) -> Replica:
    """``replica`` moved to ``phase`` (with other fields ``changes``d).

    Raises:
        ConflictError: :data:`ALLOWED_TRANSITIONS` forbids the move (staying in the same phase
            is not a transition either: change other fields with ``dataclasses.replace``).
    """
    old = replica.phase
    if phase not in ALLOWED_TRANSITIONS[old]:
        allowed = sorted(p.value for p in ALLOWED_TRANSITIONS[old]) or ["none"]
        raise ConflictError(
            f"Replica {replica.id!r} is {old.value}; it cannot become {phase.value} "
            f"(allowed from {old.value}: {', '.join(allowed)}). The sync loop tried an illegal "
            "phase change: report it as a bug with the control plane's log."
        )
    return replace(replica, phase=phase, **changes)
