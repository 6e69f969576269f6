"""The vocabulary of one sync: the view it works on, its result, and the loop's hooks.

:class:`SyncView` is one deployment during one sync: the snapshot read at the start plus
every write made since, applied with :func:`~loopline.deploy.snapshot.apply_writes` (the
same definition the in-memory store commits with), so the sync never re-reads the store.
:class:`SyncResult` is what the loop reports to its host through :class:`SyncHooks`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from loopline.deploy.actions import Action
from loopline.deploy.deployment import Deployment
from loopline.deploy.replica import Replica
from loopline.deploy.revision import Revision
from loopline.deploy.snapshot import DeploymentSnapshot, apply_writes
from loopline.deploy.writes import DropReplica, Write
from loopline.errors import NotFoundError


@dataclass(frozen=True, slots=True)
class SyncResult:
    """One deployment's sync: the snapshot it started from, the state it committed (and its
    replica stops finished inline), and the controller's actions."""

    before: DeploymentSnapshot
    after: DeploymentSnapshot
    actions: tuple[Action, ...]

    @property
    def name(self) -> str:
        return self.before.name


class SyncHooks(Protocol):
    """What the loop tells its host (the control plane) after each deployment's sync."""

    def synced(self, result: SyncResult) -> None:
        """The deployment synced (called for idle syncs too, with no actions)."""

    def sync_failed(self, name: str, error: Exception) -> None:
        """The deployment's sync raised; the next tick retries it."""


class SyncView:
    """One deployment during one sync: the snapshot plus the writes made so far (in order,
    for the commit)."""

    def __init__(self, snapshot: DeploymentSnapshot) -> None:
        self.current = snapshot
        self.writes: list[Write] = []

    @property
    def deployment(self) -> Deployment:
        return self.current.deployment

    def write(self, w: Write) -> None:
        self.writes.append(w)
        self.current = apply_writes(self.current, (w,))

    def forget_replica(self, replica_id: str) -> None:
        """The replica's record was removed by its own commit (an inline stop)."""
        self.current = apply_writes(self.current, (DropReplica(replica_id),))

    def revision(self, hash: str) -> Revision:
        for rev in self.current.revisions:
            if rev.hash == hash:
                return rev
        raise NotFoundError(f"Deployment {self.current.name!r} has no revision with hash {hash!r}.")

    def replica(self, replica_id: str) -> Replica | None:
        return next((r for r in self.current.replicas if r.id == replica_id), None)
