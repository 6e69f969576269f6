"""Routing through local router processes (one per deployment), driven over loopback.

Each router is started with a fresh admin secret (``secrets.token_urlsafe(32)``) that its admin
API asks of every change. The secret lives in ``<secret_dir>/<deployment>.secret`` (the
directory 0700, the file 0600, written before the router starts, removed when it is stopped):
a control plane that restarts reads it back and keeps driving the routers it re-adopts. A
running router whose secret file is gone (or unreadable) cannot be driven, so it is replaced
by a new one on the same port.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
from pathlib import Path
from typing import Any

from loopline.deploy.deployment import Deployment, RouterProcess
from loopline.deploy.engines.base import DeployEngine, ProcessHandle
from loopline.deploy.engines.local import free_port
from loopline.deploy.route_table import RouteTable
from loopline.deploy.router.admin import read_secret
from loopline.deploy.router.client import RouterAdminClient
from loopline.deploy.routing import Routing
from loopline.errors import BackendError

log = logging.getLogger(__name__)
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,252}")


def _handle(router: RouterProcess) -> ProcessHandle:
    return ProcessHandle(pid=router.pid, process_start=router.process_start, port=router.port)


class LocalRouting(Routing):
    """Starts (or re-adopts) each deployment's router process through ``engine``.

    The router keeps its port across restarts: ``spec.port`` if set, else the port it was
    first given (recorded in the store), so clients never see the endpoint move. Its
    preview port (the preview revision only, for blue-green) is allocated once the same way
    and kept. ``workers`` > 1 runs a multi-process router (one supervisor, N proxies on the
    port). ``secret_dir`` holds each router's admin secret (see the module docstring).
    """

    def __init__(self, engine: DeployEngine, stop_grace: float = 10.0, workers: int = 1, *,
                 secret_dir: Path) -> None:  # fmt: skip
        self.engine = engine
        self.stop_grace = stop_grace
        self.workers = workers
        self.secret_dir = Path(secret_dir)

    def secret_file(self, deployment: str) -> Path:
        """Where the admin secret of ``deployment``'s router is kept."""
        if not _SAFE_NAME.fullmatch(deployment):
            raise BackendError(
                f"Deployment name {deployment!r} cannot name a secret file; use letters, digits, "
                "'.', '_' and '-'."
            )
        return self.secret_dir / f"{deployment}.secret"

    def _secret(self, deployment: str) -> str | None:
        try:
            return read_secret(self.secret_file(deployment))
        except ValueError:
            return None

    def _new_secret(self, deployment: str) -> Path:
        """Write a fresh secret for ``deployment``'s next router (0600, atomically)."""
        self.secret_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.secret_dir.chmod(0o700)
        path = self.secret_file(deployment)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, secrets.token_urlsafe(32).encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        tmp.replace(path)
        return path

    def ensure(self, deployment: Deployment) -> RouterProcess | None:
        current = deployment.router
        wanted = deployment.spec.port
        if current is not None and self.engine.poll(_handle(current)) is None:
            if (wanted is None or wanted == current.port) and self._secret(deployment.name):
                return current
            # the spec moved the port, or the secret to drive it is gone: a new router
            self.engine.stop(_handle(current), self.stop_grace)
        port = wanted or (current.port if current is not None else 0)
        admin_port = free_port("127.0.0.1")
        preview_port = current.preview_port if current is not None else 0
        if not preview_port or preview_port == port:
            preview_port = free_port()
        handle = self.engine.start_router(
            deployment.name, port, admin_port, self.workers, preview_port,
            admin_secret_file=self._new_secret(deployment.name),
        )  # fmt: skip
        return RouterProcess(
            pid=handle.pid, process_start=handle.process_start, port=handle.port,
            admin_port=admin_port, preview_port=preview_port,
        )  # fmt: skip

    def _client(self, deployment: Deployment) -> RouterAdminClient:
        if deployment.router is None:
            raise BackendError(f"Deployment {deployment.name!r} has no router yet; sync it first.")
        secret = self._secret(deployment.name)
        if secret is None:
            raise BackendError(
                f"The admin secret of deployment {deployment.name!r}'s router is missing from "
                f"{str(self.secret_file(deployment.name))!r}; the next sync replaces the router."
            )
        return RouterAdminClient(deployment.router.admin_port, secret)

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
            self.secret_file(deployment.name).unlink(missing_ok=True)
