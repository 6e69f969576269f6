"""DeploymentSnapshot: one deployment with its revisions and replicas, read in one transaction.

The sync loop reads every deployment's snapshot at once
(:meth:`~loopline.deploy.state.DeploymentStateStore.snapshot_all`), works on it in memory and
commits what changed as one batch of :mod:`~loopline.deploy.writes`. :func:`apply_writes` is
the one definition of what a batch does to a snapshot; the in-memory store commits with it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from loopline.deploy.deployment import Deployment
from loopline.deploy.replica import Replica
from loopline.deploy.revision import Revision
from loopline.deploy.writes import (
    DropReplica,
    DropRevision,
    PutReplica,
    PutRevision,
    SetRouter,
    SetStatus,
    Write,
)
from loopline.errors import InvalidInputError, NotFoundError


def revision_order(r: Revision) -> tuple[int, float]:
    """Revisions are listed by number (then creation time)."""
    return (r.number, r.created_at)


def replica_order(r: Replica) -> tuple[float, str]:
    """Replicas are listed by creation time (then id)."""
    return (r.created_at, r.id)


@dataclass(frozen=True, slots=True)
class DeploymentSnapshot:
    """A deployment, its revisions (by number) and its replicas (by creation time)."""

    deployment: Deployment
    revisions: tuple[Revision, ...] = ()
    replicas: tuple[Replica, ...] = ()

    @property
    def name(self) -> str:
        return self.deployment.name

    @classmethod
    def of(
        cls, deployment: Deployment, revisions: Iterable[Revision], replicas: Iterable[Replica]
    ) -> DeploymentSnapshot:
        """A snapshot with revisions and replicas put in their listing order."""
        return cls(
            deployment,
            tuple(sorted(revisions, key=revision_order)),
            tuple(sorted(replicas, key=replica_order)),
        )


def check_writes(name: str, writes: Iterable[Write]) -> None:
    """Every write of a batch must concern deployment ``name``.

    Raises:
        InvalidInputError: a revision or replica of another deployment is in the batch.
    """
    for w in writes:
        if isinstance(w, PutRevision) and w.revision.deployment != name:
            what, owner = f"revision {w.revision.hash!r}", w.revision.deployment
        elif isinstance(w, PutReplica) and w.replica.deployment != name:
            what, owner = f"replica {w.replica.id!r}", w.replica.deployment
        else:
            continue
        raise InvalidInputError(
            f"A commit to deployment {name!r} cannot write {what}: it belongs to deployment "
            f"{owner!r}; commit it separately."
        )


def apply_writes(snapshot: DeploymentSnapshot, writes: Iterable[Write]) -> DeploymentSnapshot:
    """The snapshot after ``writes``, applied in order.

    Raises:
        NotFoundError: a write drops a revision or replica that does not exist.
    """
    d = snapshot.deployment
    name = d.name
    revisions = {r.hash: r for r in snapshot.revisions}
    replicas = {r.id: r for r in snapshot.replicas}
    for w in writes:
        match w:
            case PutRevision(revision=rev):
                revisions[rev.hash] = rev
            case DropRevision(hash=h):
                if revisions.pop(h, None) is None:
                    raise NotFoundError(f"Deployment {name!r} has no revision with hash {h!r}.")
            case PutReplica(replica=rep):
                replicas[rep.id] = rep
            case DropReplica(replica_id=rid):
                if replicas.pop(rid, None) is None:
                    raise NotFoundError(f"Deployment {name!r} has no replica {rid!r}.")
            case SetStatus(status=status):
                d = replace(d, status=status)
            case SetRouter(router=router):
                d = replace(d, router=router)
    return DeploymentSnapshot.of(d, revisions.values(), replicas.values())
