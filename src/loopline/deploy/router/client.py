"""A synchronous client for a router's admin API (used by the sync loop)."""

from __future__ import annotations

from typing import Any

import httpx

from loopline.deploy.route_table import RouteTable
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

    def set_routes(self, table: RouteTable) -> None:
        """``PUT /backends`` with the whole table (see the admin module for the JSON form)."""
        traffic = table.traffic
        self._call(
            "PUT",
            "/backends",
            {
                "backends": [
                    {"id": b.id, "host": b.host, "port": b.port, "revision": b.revision}
                    for b in table.backends
                ],
                "weights": traffic.weight_map(),
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
