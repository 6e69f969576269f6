"""A synchronous client for a router's admin API (used by the sync loop, the autoscaler and
the analysis metrics)."""

from __future__ import annotations

from typing import Any

import httpx

from loopline.deploy.route_table import RouteTable
from loopline.deploy.router.wire import table_to_json
from loopline.errors import BackendError


class RouterAdminClient:
    """Talks to ``http://127.0.0.1:<admin_port>``; every call has a deadline.

    ``secret``: the router's admin secret (the content of the file it was started with),
    sent on every call. Without it only reads work (health, backends, stats, metrics); a
    change answers 401, raised as :class:`BackendError`.
    """

    def __init__(self, admin_port: int, secret: str | None = None, timeout: float = 5.0) -> None:
        self.base = f"http://127.0.0.1:{admin_port}"
        self.timeout = timeout
        self._headers = {} if secret is None else {"authorization": f"Bearer {secret}"}

    def __repr__(self) -> str:  # never shows the secret
        return f"RouterAdminClient({self.base!r})"

    def _request(
        self, method: str, path: str, body: object = None, timeout: float | None = None
    ) -> httpx.Response:
        try:
            r = httpx.request(method, self.base + path, json=body, headers=self._headers,
                              timeout=timeout or self.timeout)  # fmt: skip
        except httpx.HTTPError as exc:
            raise BackendError(
                f"Router admin at {self.base} did not answer {method} {path}: {exc!r}. "
                "Is the router process running?"
            ) from exc
        if r.status_code != 200:
            raise BackendError(f"Router admin {method} {path} answered {r.status_code}: {r.text}")
        return r

    def _call(
        self, method: str, path: str, body: object = None, timeout: float | None = None
    ) -> Any:
        return self._request(method, path, body, timeout).json()

    def healthy(self) -> bool:
        try:
            return bool(self._call("GET", "/healthz", timeout=1.0).get("ok"))
        except BackendError:
            return False

    def set_routes(self, table: RouteTable) -> None:
        """``PUT /backends`` with the whole table (JSON form: :mod:`loopline.deploy.router.wire`).

        Raises:
            BackendError: the router is not reachable or refused the table (400 names the
                field).
        """
        self._call("PUT", "/backends", table_to_json(table))

    def drain(self, backend_id: str, timeout: float) -> bool:
        out = self._call(
            "POST", "/drain", {"id": backend_id, "timeout": timeout}, timeout=timeout + self.timeout
        )
        return bool(out["drained"])

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = self._call("GET", "/backends")
        return out

    def stats(self, window: float = 60.0) -> dict[str, Any]:
        """Per-revision requests, errors, rates, latency quantiles and in-flight over the last
        ``window`` seconds (≤ 600), mirror counters and held requests (the JSON form is in
        :mod:`loopline.deploy.router.report`)."""
        out: dict[str, Any] = self._call("GET", f"/stats?window={window:g}")
        return out

    def metrics(self) -> str:
        """The router's Prometheus text exposition."""
        return self._request("GET", "/metrics").text
