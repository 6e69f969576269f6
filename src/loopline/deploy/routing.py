"""The routing contract the sync loop drives: one stable endpoint per deployment."""

from __future__ import annotations

import abc
from typing import Any

from loopline.deploy.deployment import Deployment, RouterProcess
from loopline.deploy.route_table import RouteTable


class Routing(abc.ABC):
    """Keeps each deployment's router running and its route table current."""

    @abc.abstractmethod
    def ensure(self, deployment: Deployment) -> RouterProcess | None:
        """Adopt the recorded router if alive, else start one (on ``spec.port`` if set).

        Returns the router record to store (None if this routing has no processes).

        Raises:
            BackendError: the router could not be started.
        """

    @abc.abstractmethod
    def set_routes(self, deployment: Deployment, table: RouteTable) -> None:
        """Replace the router's whole route table.

        Raises:
            BackendError: the router did not accept the update.
        """

    @abc.abstractmethod
    def drain(self, deployment: Deployment, backend_id: str, timeout: float) -> bool:
        """Stop sending new requests to the backend and wait (≤ ``timeout`` s) for in-flight
        ones; True if it drained in time. Never raises for an unknown backend."""

    @abc.abstractmethod
    def stats(self, deployment: Deployment, window: float) -> dict[str, Any]:
        """The router's figures over the last ``window`` seconds (the ``GET /stats`` JSON:
        per-revision requests, rates, in flight, latency; mirror counters; held requests).

        Raises:
            BackendError: the router could not be asked.
        """

    @abc.abstractmethod
    def stop(self, deployment: Deployment) -> None:
        """Stop the deployment's router (deployment deleted)."""
