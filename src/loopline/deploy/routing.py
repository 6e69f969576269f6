"""The routing contract the sync loop drives: one stable endpoint per deployment."""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from loopline.deploy.deployment import Deployment, RouterProcess


@dataclass(frozen=True, slots=True)
class Backend:
    """One ready replica as the router sees it."""

    id: str  # the replica id
    host: str
    port: int
    revision: str  # revision hash, for per-revision weights


class Routing(abc.ABC):
    """Keeps each deployment's router running and its backend set current."""

    @abc.abstractmethod
    def ensure(self, deployment: Deployment) -> RouterProcess | None:
        """Adopt the recorded router if alive, else start one (on ``spec.port`` if set).

        Returns the router record to store (None if this routing has no processes).

        Raises:
            BackendError: the router could not be started.
        """

    @abc.abstractmethod
    def set_backends(
        self,
        deployment: Deployment,
        backends: Sequence[Backend],
        weights: Mapping[str, int] | None = None,
    ) -> None:
        """Replace the backend set; ``weights`` maps revision hash → exact traffic share.

        Raises:
            BackendError: the router did not accept the update.
        """

    @abc.abstractmethod
    def drain(self, deployment: Deployment, backend_id: str, timeout: float) -> bool:
        """Stop sending new requests to the backend and wait (≤ ``timeout`` s) for in-flight
        ones; True if it drained in time. Never raises for an unknown backend."""

    @abc.abstractmethod
    def stop(self, deployment: Deployment) -> None:
        """Stop the deployment's router (deployment deleted)."""
