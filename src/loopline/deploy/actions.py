"""What :func:`~loopline.deploy.controller.reconcile` asks the sync loop to do."""

from __future__ import annotations

from dataclasses import dataclass

from loopline.deploy.revision import Revision
from loopline.deploy.status import DeploymentStatus


@dataclass(frozen=True, slots=True)
class CreateRevision:
    """Store a new revision (already sized)."""

    revision: Revision


@dataclass(frozen=True, slots=True)
class ScaleRevision:
    """Set a revision's desired replica count and its sizing annotations."""

    hash: str
    replicas: int
    desired_replicas: int
    max_replicas: int


@dataclass(frozen=True, slots=True)
class RecordRevisionNumber:
    """Re-number a re-activated revision (undo): ``number`` = max+1, old one in ``history``."""

    hash: str
    number: int
    history: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class DeleteRevision:
    """Forget an old, empty revision beyond ``revisionHistoryLimit``."""

    hash: str


@dataclass(frozen=True, slots=True)
class StartReplica:
    """Create a replica slot for a revision and start its process."""

    revision: str


@dataclass(frozen=True, slots=True)
class RestartReplica:
    """Start a new process in a FAILED slot whose back-off has elapsed."""

    replica_id: str


@dataclass(frozen=True, slots=True)
class StopReplica:
    """Retire a replica: mark it TERMINATING, drain it from the router, stop the process."""

    replica_id: str
    drain: bool = True


@dataclass(frozen=True, slots=True)
class UpdateStatus:
    """Write the deployment status."""

    status: DeploymentStatus


Action = (
    CreateRevision
    | ScaleRevision
    | RecordRevisionNumber
    | DeleteRevision
    | StartReplica
    | RestartReplica
    | StopReplica
    | UpdateStatus
)
