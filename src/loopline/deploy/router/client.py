"""A synchronous client for a router's admin API (used by the sync loop)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from loopline.deploy.routing import Backend
from loopline.errors import BackendError


class RouterAdminClient:
    """Talks to ``http://127.0.0.1:<admin_port>``; every call has a deadline."""

    def __init__(self, admin_port: int, timeout: float = 5.0) -> None:
        self.base = f"http://127.0.0.1:{admin_port}"
        self.timeout = timeout

    def _call(
        self, method: str, path: str, body: object = None, timeout: float | None = None
    ) -> Any:
        try:
            r = httpx.request(method, self.base + path, json=body, timeout=timeout or self.timeout)
        except httpx.HTTPError as exc:
            raise BackendError(
                f"Router admin at {self.base} did not answer {method} {path}: {exc!r}. "
                "Is the router process running?"
            ) from exc
        if r.status_code != 200:
            raise BackendError(f"Router admin {method} {path} answered {r.status_code}: {r.text}")
        return r.json()

    def healthy(self) -> bool:
        try:
            return bool(self._call("GET", "/healthz", timeout=1.0).get("ok"))
        except BackendError:
            return False

    def set_backends(
        self, backends: Sequence[Backend], weights: Mapping[str, int] | None = None
    ) -> None:
        self._call(
            "PUT",
            "/backends",
            {
                "backends": [
                    {"id": b.id, "host": b.host, "port": b.port, "revision": b.revision}
                    for b in backends
                ],
                "weights": dict(weights) if weights is not None else None,
            },
        )

    def drain(self, backend_id: str, timeout: float) -> bool:
        out = self._call(
            "POST", "/drain", {"id": backend_id, "timeout": timeout}, timeout=timeout + self.timeout
        )
        return bool(out["drained"])

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = self._call("GET", "/backends")
        return out
