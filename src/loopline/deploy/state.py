"""Where deployments live between syncs: specs with generations, revisions, replicas, status.

The control plane persists everything through :class:`DeploymentStateStore`, so a restart
(even ``kill -9``) loses nothing. The sync loop reads with :meth:`~DeploymentStateStore.
snapshot_all` (every deployment in one read transaction) and writes each deployment's changes
with :meth:`~DeploymentStateStore.commit` (one ordered batch of
:mod:`~loopline.deploy.writes`, one write transaction, all or nothing).
:class:`InMemoryDeploymentStateStore` serves tests and embedded use; every backend passes
``loopline.testing.deploy.DeploymentStateStoreContract``.
"""

from __future__ import annotations

import abc
import threading
from collections.abc import Sequence
from dataclasses import replace

from loopline.deploy.deployment import Deployment
from loopline.deploy.replica import Replica
from loopline.deploy.revision import Revision
from loopline.deploy.snapshot import DeploymentSnapshot, apply_writes, check_writes
from loopline.deploy.spec import DeploymentSpec
from loopline.deploy.writes import Write
from loopline.errors import NotFoundError


class DeploymentStateStore(abc.ABC):
    """Deployment state. Each call is one transaction; values returned are frozen."""

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
    def snapshot(self, name: str) -> DeploymentSnapshot:
        """One deployment with its revisions and replicas, read in one transaction.

        Raises:
            NotFoundError: there is no deployment of that name.
        """

    @abc.abstractmethod
    def snapshot_all(self) -> list[DeploymentSnapshot]:
        """Every deployment with its revisions and replicas, by name, in one read
        transaction (the sync loop's one read per tick)."""

    @abc.abstractmethod
    def commit(self, name: str, writes: Sequence[Write]) -> None:
        """Apply ``writes`` to deployment ``name`` in order, in one write transaction: all of
        them or, if one fails, none. An empty batch does nothing (no transaction at all).

        Raises:
            NotFoundError: the deployment does not exist, or a write drops a revision or
                replica that does not exist.
            InvalidInputError: a write concerns another deployment.
        """

    def unreadable(self) -> dict[str, str]:
        """Deployments whose stored record this version refuses (a spec stored before a rule
        that now rejects it), with the reason, as of the last full read. Lists and the sync
        loop leave them out; reading one alone raises ConflictError; applying a corrected
        spec over it, or deleting it, clears it."""
        return {}

    def list_revisions(self, name: str) -> list[Revision]:
        """The deployment's revisions, by number. Raises NotFoundError."""
        return list(self.snapshot(name).revisions)

    def list_replicas(self, name: str) -> list[Replica]:
        """The deployment's replicas, by creation time. Raises NotFoundError."""
        return list(self.snapshot(name).replicas)


class InMemoryDeploymentStateStore(DeploymentStateStore):
    """A thread-safe, dict-backed store (state dies with the process)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._snapshots: dict[str, DeploymentSnapshot] = {}

    def _get(self, name: str) -> DeploymentSnapshot:
        try:
            return self._snapshots[name]
        except KeyError:
            raise NotFoundError(
                f"Deployment {name!r} does not exist; known deployments: "
                f"{sorted(self._snapshots)}."
            ) from None

    def apply_spec(self, spec: DeploymentSpec, now: float) -> Deployment:
        with self._lock:
            current = self._snapshots.get(spec.name)
            if current is None:
                d = Deployment(spec=spec, generation=1, created_at=now)
                self._snapshots[spec.name] = DeploymentSnapshot(d)
                return d
            if current.deployment.spec == spec:
                return current.deployment
            d = replace(current.deployment, spec=spec, generation=current.deployment.generation + 1)
            self._snapshots[spec.name] = replace(current, deployment=d)
            return d

    def get_deployment(self, name: str) -> Deployment:
        with self._lock:
            return self._get(name).deployment

    def list_deployments(self) -> list[Deployment]:
        with self._lock:
            return [self._snapshots[k].deployment for k in sorted(self._snapshots)]

    def delete_deployment(self, name: str) -> None:
        with self._lock:
            self._get(name)
            del self._snapshots[name]

    def snapshot(self, name: str) -> DeploymentSnapshot:
        with self._lock:
            return self._get(name)

    def snapshot_all(self) -> list[DeploymentSnapshot]:
        with self._lock:
            return [self._snapshots[k] for k in sorted(self._snapshots)]

    def commit(self, name: str, writes: Sequence[Write]) -> None:
        check_writes(name, writes)
        if not writes:
            return
        with self._lock:
            self._snapshots[name] = apply_writes(self._get(name), writes)
