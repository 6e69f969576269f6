"""Recent events per deployment, as ``kubectl describe`` shows them.

Events are kept in memory (a bounded ring per deployment), like Kubernetes events, which
expire after an hour: they explain what the controller just did, they are not history.
Durable history lives elsewhere: revisions and model pins in the database.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from loopline.deploy.actions import (
    Action,
    CreateRevision,
    DeleteRevision,
    RecordRevisionNumber,
    RestartReplica,
    ScaleRevision,
    StartReplica,
    StopReplica,
    UpdateStatus,
)
from loopline.deploy.revision import Revision
from loopline.deploy.status import Condition, DeploymentStatus, Reason
from loopline.types import JsonDict

NORMAL = "Normal"
WARNING = "Warning"
_WARNING_REASONS = frozenset(
    {
        Reason.PROGRESS_DEADLINE_EXCEEDED,
        Reason.CRASH_LOOP_BACK_OFF,
        Reason.FAILED_CREATE,
        Reason.MINIMUM_REPLICAS_UNAVAILABLE,
    }
)


@dataclass(frozen=True, slots=True)
class DeploymentEvent:
    """One thing that happened to a deployment; ``at`` is seconds since the epoch."""

    at: float
    type: str  # "Normal" | "Warning"
    reason: str
    message: str

    def to_dict(self) -> JsonDict:
        return {"at": self.at, "type": self.type, "reason": self.reason, "message": self.message}


class EventLog:
    """A bounded, thread-safe ring of events per deployment.

    Args:
        clock: seconds since the epoch.
        per_deployment: how many recent events each deployment keeps.
    """

    def __init__(self, *, clock: Callable[[], float], per_deployment: int = 200) -> None:
        self.clock = clock
        self.per_deployment = per_deployment
        self._events: dict[str, collections.deque[DeploymentEvent]] = {}
        self._lock = threading.Lock()

    def add(self, deployment: str, reason: str, message: str, type: str = NORMAL) -> None:
        """Append one event."""
        event = DeploymentEvent(at=self.clock(), type=type, reason=reason, message=message)
        with self._lock:
            ring = self._events.setdefault(
                deployment, collections.deque(maxlen=self.per_deployment)
            )
            ring.append(event)

    def list(self, deployment: str, limit: int | None = None) -> list[DeploymentEvent]:
        """The deployment's events, oldest first (the newest ``limit`` if given)."""
        with self._lock:
            events = list(self._events.get(deployment, ()))
        return events if limit is None else events[-limit:]

    def forget(self, deployment: str) -> None:
        with self._lock:
            self._events.pop(deployment, None)

    def record_sync(
        self,
        deployment: str,
        before: Sequence[Revision],
        old_status: DeploymentStatus,
        actions: Sequence[Action],
    ) -> None:
        """Turn the actions of one sync into events (``before``: revisions before the sync)."""
        revs = {r.hash: r for r in before}
        for action in actions:
            for reason, message, kind in _describe(action, revs, old_status):
                self.add(deployment, reason, message, kind)


def _revision_label(revs: dict[str, Revision], h: str) -> str:
    rev = revs.get(h)
    return f"revision {rev.number} ({h})" if rev is not None else f"revision {h}"


def _describe(
    action: Action, revs: dict[str, Revision], old: DeploymentStatus
) -> list[tuple[str, str, str]]:
    if isinstance(action, CreateRevision):
        r = action.revision
        revs[r.hash] = r
        return [
            (
                "RevisionCreated",
                f"Created revision {r.number} ({r.hash}) serving {r.template.model} "
                f"with {r.replicas} replica(s)",
                NORMAL,
            )
        ]
    if isinstance(action, ScaleRevision):
        prev = revs.get(action.hash)
        was = prev.replicas if prev is not None else 0
        if was == action.replicas:
            return []
        verb = "up" if action.replicas > was else "down"
        label = _revision_label(revs, action.hash)
        return [
            ("ScalingRevision", f"Scaled {verb} {label} from {was} to {action.replicas}", NORMAL)
        ]
    if isinstance(action, RecordRevisionNumber):
        label = _revision_label(revs, action.hash)
        return [("RevisionReactivated", f"Re-activated {label} as revision {action.number}",
                 NORMAL)]  # fmt: skip
    if isinstance(action, DeleteRevision):
        label = _revision_label(revs, action.hash)
        return [("RevisionDeleted", f"Deleted old {label} (revisionHistoryLimit)", NORMAL)]
    if isinstance(action, StartReplica):
        label = _revision_label(revs, action.revision)
        return [("ReplicaStarted", f"Started a replica of {label}", NORMAL)]
    if isinstance(action, RestartReplica):
        return [("ReplicaRestarted", f"Restarted failed replica {action.replica_id}", WARNING)]
    if isinstance(action, StopReplica):
        how = "Draining and stopping" if action.drain else "Stopping"
        return [("ReplicaStopping", f"{how} replica {action.replica_id}", NORMAL)]
    if isinstance(action, UpdateStatus):
        return [_condition_event(c) for c in _changed(old, action.status)]
    return []


def _changed(old: DeploymentStatus, new: DeploymentStatus) -> list[Condition]:
    before = {c.type: (c.status, c.reason) for c in old.conditions}
    return [c for c in new.conditions if before.get(c.type) != (c.status, c.reason)]


def _condition_event(c: Condition) -> tuple[str, str, str]:
    kind = WARNING if c.reason in _WARNING_REASONS else NORMAL
    return (c.reason, f"{c.type.value}={c.status}: {c.message}", kind)
