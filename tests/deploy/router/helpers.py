"""Helpers for the router tests: push a route table, send many requests fast, a router
thread with a preview port, read the stats."""

from __future__ import annotations

import json
import secrets
import socket
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httptools
from tests.deploy.conftest import RouterThread, wait_until

from loopline.deploy.engines.local import free_port
from loopline.deploy.route_table import Backend, RouteTable
from loopline.deploy.router.client import RouterAdminClient
from loopline.deploy.router.proxy import Router
from loopline.deploy.router.server import serve
from loopline.deploy.traffic import HeaderRoute, Mirror, Traffic

Backends = Sequence[tuple[str, int, str]]  # (id, port, revision)


def push(
    rt: Any,
    backends: Backends,
    weights: dict[str, int] | None = None,
    *,
    header_routes: tuple[HeaderRoute, ...] = (),
    mirror: Mirror | None = None,
    preview: str | None = None,
    hold_seconds: float = 0.0,
    labels: dict[str, str] | None = None,
) -> None:
    """``PUT /backends`` a route table through the real admin client."""
    rt.admin.set_routes(
        RouteTable(
            tuple(Backend(id=i, host="127.0.0.1", port=p, revision=r) for i, p, r in backends),
            Traffic(
                None if weights is None else tuple(sorted(weights.items())),
                header_routes=header_routes,
                mirror=mirror,
                preview=preview,
            ),
            hold_seconds=hold_seconds,
            labels=tuple(sorted((labels or {}).items())),
        )
    )


class Responses:
    """Parses answers off a raw socket: ``[(status, headers, body)]``."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.done: list[tuple[int, dict[bytes, bytes], bytes]] = []
        self._headers: dict[bytes, bytes] = {}
        self._body = b""

    def on_message_begin(self) -> None:
        self._headers, self._body = {}, b""

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.lower()] = value

    def on_body(self, body: bytes) -> None:
        self._body += body

    def on_message_complete(self) -> None:
        self.done.append((self.parser.get_status_code(), self._headers, self._body))


class RawClient:
    """One keep-alive connection sending plain HTTP/1.1 requests, one at a time (fast
    enough for 10,000 requests in a test)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.answers = Responses()

    def post(self, path: str, body: object, headers: dict[str, str] | None = None
             ) -> tuple[int, dict[bytes, bytes], Any]:  # fmt: skip
        data = json.dumps(body).encode()
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items()).encode()
        self.sock.sendall(
            b"POST %s HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n%s"
            b"content-length: %d\r\n\r\n%s" % (path.encode(), extra, len(data), data)
        )
        want = len(self.answers.done) + 1
        while len(self.answers.done) < want:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise AssertionError("the router closed the connection")
            self.answers.parser.feed_data(chunk)
        status, head, raw = self.answers.done[-1]
        return status, head, json.loads(raw) if raw else None

    def close(self) -> None:
        self.sock.close()


def v2(*values: float) -> dict[str, Any]:
    """A V2 inference body with these input values."""
    return {"inputs": [{"name": "x", "shape": [len(values)], "datatype": "FP64",
                        "data": list(values)}]}  # fmt: skip


class PreviewRouterThread(RouterThread):
    """A router thread that also listens on a preview port."""

    def __init__(self, router: Router) -> None:
        super().__init__(router)
        self.preview_port = free_port()

    def _run(self) -> None:
        self.runner.run(
            serve(
                self.router, host="127.0.0.1", port=self.port, admin_port=self.admin_port,
                admin_secret=self.secret, stop=self._stop, shutdown_grace=2.0,
                preview_port=self.preview_port,
            )
        )  # fmt: skip
        self.runner.close()


def admin_secret(directory: Path) -> tuple[Path, str]:
    """A fresh router admin secret in ``directory/admin.secret`` (mode 0600): (path, secret)."""
    secret = secrets.token_urlsafe(32)
    path = directory / "admin.secret"
    path.write_text(secret)
    path.chmod(0o600)
    return path, secret


def stats(rt: Any, window: float = 60) -> dict[str, Any]:
    return RouterAdminClient(rt.admin_port).stats(window)


def wait_for_stats(rt: Any, check: Callable[[dict[str, Any]], bool], what: str,
                   timeout: float = 15) -> dict[str, Any]:  # fmt: skip
    """Poll ``/stats`` until ``check`` holds; return that document."""
    seen: dict[str, Any] = {}

    def ok() -> bool:
        seen.update(stats(rt))
        return check(seen)

    wait_until(ok, timeout, what)
    return seen
