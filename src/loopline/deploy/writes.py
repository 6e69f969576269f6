"""What one sync writes: an ordered batch that a state store commits in one transaction.

The sync loop turns the controller's actions and its own observations into these writes;
:meth:`~loopline.deploy.state.DeploymentStateStore.commit` applies a batch all or nothing.
(Deletions are spelled *Drop* so they are never confused with the controller's
``DeleteRevision`` action.)
"""

from __future__ import annotations

from dataclasses import dataclass

from loopline.deploy.deployment import RouterProcess
from loopline.deploy.replica import Replica
from loopline.deploy.revision import Revision
from loopline.deploy.status import DeploymentStatus


@dataclass(frozen=True, slots=True)
class PutRevision:
    """Insert or replace the revision with that hash."""

    revision: Revision


@dataclass(frozen=True, slots=True)
class DropRevision:
    """Forget one revision (it must exist)."""

    hash: str


@dataclass(frozen=True, slots=True)
class PutReplica:
    """Insert or replace the replica with that id."""

    replica: Replica


@dataclass(frozen=True, slots=True)
class DropReplica:
    """Forget one replica (it must exist)."""

    replica_id: str


@dataclass(frozen=True, slots=True)
class SetStatus:
    """Replace the deployment's status (its spec and generation are untouched)."""

    status: DeploymentStatus


@dataclass(frozen=True, slots=True)
class SetRouter:
    """Record (or clear) the deployment's router process."""

    router: RouterProcess | None


Write = PutRevision | DropRevision | PutReplica | DropReplica | SetStatus | SetRouter
