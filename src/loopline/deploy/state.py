"""Where deployments live between syncs: specs with generations, revisions, replicas, status.

The control plane persists everything through :class:`DeploymentStateStore`, so a restart
(even ``kill -9``) loses nothing. :class:`InMemoryDeploymentStateStore` serves tests and
embedded use; every backend passes ``loopline.testing.deploy.DeploymentStateStoreContract``.
"""

from __future__ import annotations

import abc
import threading
from dataclasses import replace

from loopline.deploy.deployment import Deployment, RouterProcess
from loopline.deploy.replica import Replica
from loopline.deploy.revision import Revision
from loopline.deploy.spec import DeploymentSpec
from loopline.deploy.status import DeploymentStatus
from loopline.errors import NotFoundError


class DeploymentStateStore(abc.ABC):
    """Deployment state. Each call is atomic; values returned are frozen snapshots."""

    @abc.abstractmethod
    def apply_spec(self, spec: DeploymentSpec, now: float) -> Deployment:
        """Create the deployment or replace its spec; the generation grows only on change."""

    @abc.abstractmethod
    def get_deployment(self, name: str) -> Deployment:
        """The deployment. Raises NotFoundError if there is none of that name."""

    @abc.abstractmethod
    def list_deployments(self) -> list[Deployment]:
        """Every deployment, by name."""

    @abc.abstractmethod
    def delete_deployment(self, name: str) -> None:
        """Forget the deployment, its revisions and replicas. Raises NotFoundError."""

    @abc.abstractmethod
    def set_status(self, name: str, status: DeploymentStatus) -> Deployment:
        """Replace the status (the spec and generation are untouched). Raises NotFoundError."""

    @abc.abstractmethod
    def set_router(self, name: str, router: RouterProcess | None) -> Deployment:
        """Record (or clear) the deployment's router process. Raises NotFoundError."""

    @abc.abstractmethod
    def list_revisions(self, name: str) -> list[Revision]:
        """The deployment's revisions, by number (empty if none)."""

    @abc.abstractmethod
    def put_revision(self, revision: Revision) -> None:
        """Insert or replace the revision with that deployment and hash."""

    @abc.abstractmethod
    def delete_revision(self, name: str, hash: str) -> None:
        """Forget one revision. Raises NotFoundError if it does not exist."""

    @abc.abstractmethod
    def list_replicas(self, name: str) -> list[Replica]:
        """The deployment's replicas, by creation time (empty if none)."""

    @abc.abstractmethod
    def put_replica(self, replica: Replica) -> None:
        """Insert or replace the replica with that id."""

    @abc.abstractmethod
    def delete_replica(self, name: str, replica_id: str) -> None:
        """Forget one replica. Raises NotFoundError if it does not exist."""


class InMemoryDeploymentStateStore(DeploymentStateStore):
    """A thread-safe dict-backed store (state dies with the process)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._deployments: dict[str, Deployment] = {}
        self._revisions: dict[str, dict[str, Revision]] = {}
        self._replicas: dict[str, dict[str, Replica]] = {}

    def _get(self, name: str) -> Deployment:
        try:
            return self._deployments[name]
        except KeyError:
            raise NotFoundError(
                f"Deployment {name!r} does not exist; known deployments: "
                f"{sorted(self._deployments)}."
            ) from None

    def apply_spec(self, spec: DeploymentSpec, now: float) -> Deployment:
        with self._lock:
            current = self._deployments.get(spec.name)
            if current is None:
                d = Deployment(spec=spec, generation=1, created_at=now)
                self._revisions[spec.name] = {}
                self._replicas[spec.name] = {}
            elif current.spec == spec:
                d = current
            else:
                d = replace(current, spec=spec, generation=current.generation + 1)
            self._deployments[spec.name] = d
            return d

    def get_deployment(self, name: str) -> Deployment:
        with self._lock:
            return self._get(name)

    def list_deployments(self) -> list[Deployment]:
        with self._lock:
            return [self._deployments[k] for k in sorted(self._deployments)]

    def delete_deployment(self, name: str) -> None:
        with self._lock:
            self._get(name)
            del self._deployments[name]
            self._revisions.pop(name, None)
            self._replicas.pop(name, None)

    def set_status(self, name: str, status: DeploymentStatus) -> Deployment:
        with self._lock:
            d = replace(self._get(name), status=status)
            self._deployments[name] = d
            return d

    def set_router(self, name: str, router: RouterProcess | None) -> Deployment:
        with self._lock:
            d = replace(self._get(name), router=router)
            self._deployments[name] = d
            return d

    def list_revisions(self, name: str) -> list[Revision]:
        with self._lock:
            revs = self._revisions.get(name, {}).values()
            return sorted(revs, key=lambda r: (r.number, r.created_at))

    def put_revision(self, revision: Revision) -> None:
        with self._lock:
            self._get(revision.deployment)
            self._revisions[revision.deployment][revision.hash] = revision

    def delete_revision(self, name: str, hash: str) -> None:
        with self._lock:
            revs = self._revisions.get(name, {})
            if hash not in revs:
                raise NotFoundError(f"Deployment {name!r} has no revision with hash {hash!r}.")
            del revs[hash]

    def list_replicas(self, name: str) -> list[Replica]:
        with self._lock:
            reps = self._replicas.get(name, {}).values()
            return sorted(reps, key=lambda r: (r.created_at, r.id))

    def put_replica(self, replica: Replica) -> None:
        with self._lock:
            self._get(replica.deployment)
            self._replicas[replica.deployment][replica.id] = replica

    def delete_replica(self, name: str, replica_id: str) -> None:
        with self._lock:
            reps = self._replicas.get(name, {})
            if replica_id not in reps:
                raise NotFoundError(f"Deployment {name!r} has no replica {replica_id!r}.")
            del reps[replica_id]
