"""Routing through local router processes (one per deployment), driven over loopback."""

from __future__ import annotations

import logging
from typing import Any

from loopline.deploy.deployment import Deployment, RouterProcess
from loopline.deploy.engines.base import DeployEngine, ProcessHandle
from loopline.deploy.engines.local import free_port
from loopline.deploy.route_table import RouteTable
from loopline.deploy.router.client import RouterAdminClient
from loopline.deploy.routing import Routing
from loopline.errors import BackendError

log = logging.getLogger(__name__)


def _handle(router: RouterProcess) -> ProcessHandle:
    return ProcessHandle(pid=router.pid, process_start=router.process_start, port=router.port)


class LocalRouting(Routing):
    """Starts (or re-adopts) each deployment's router process through ``engine``.

    The router keeps its port across restarts: ``spec.port`` if set, else the port it was
    first given (recorded in the store), so clients never see the endpoint move. Its
    preview port (the preview revision only, for blue-green) is allocated once the same way
    and kept. ``workers`` > 1 runs a multi-process router (one supervisor, N proxies on the
    port).
    """

    def __init__(self, engine: DeployEngine, stop_grace: float = 10.0, workers: int = 1) -> None:
        self.engine = engine
        self.stop_grace = stop_grace
        self.workers = workers

    def ensure(self, deployment: Deployment) -> RouterProcess | None:
        current = deployment.router
        wanted = deployment.spec.port
        if current is not None and self.engine.poll(_handle(current)) is None:
            if wanted is None or wanted == current.port:
                return current
            self.engine.stop(_handle(current), self.stop_grace)  # the spec moved the port
        port = wanted or (current.port if current is not None else 0)
        admin_port = free_port("127.0.0.1")
        preview_port = current.preview_port if current is not None else 0
        if not preview_port or preview_port == port:
            preview_port = free_port()
        handle = self.engine.start_router(
            deployment.name, port, admin_port, self.workers, preview_port
        )
        return RouterProcess(
            pid=handle.pid, process_start=handle.process_start, port=handle.port,
            admin_port=admin_port, preview_port=preview_port,
        )  # fmt: skip

    def _client(self, deployment: Deployment) -> RouterAdminClient:
        if deployment.router is None:
            raise BackendError(f"Deployment {deployment.name!r} has no router yet; sync it first.")
        return RouterAdminClient(deployment.router.admin_port)

    def set_routes(self, deployment: Deployment, table: RouteTable) -> None:
        self._client(deployment).set_routes(table)

    def drain(self, deployment: Deployment, backend_id: str, timeout: float) -> bool:
        try:
            return self._client(deployment).drain(backend_id, timeout)
        except BackendError as exc:
            log.warning("Draining %r failed (%s); stopping it anyway.", backend_id, exc)
            return False

    def stats(self, deployment: Deployment, window: float) -> dict[str, Any]:
        return self._client(deployment).stats(window)

    def stop(self, deployment: Deployment) -> None:
        if deployment.router is not None:
            self.engine.stop(_handle(deployment.router), self.stop_grace)
