"""The router: an asyncio HTTP/1.1 reverse proxy with keep-alive pools per backend.

Requests are buffered (bodies ≤ 64 MiB) so an inference whose connection fails before any
response byte arrives can be retried once on another ready backend. Responses stream back
(Content-Length, chunked or close-delimited).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass

from loopline.deploy.router.balancer import BackendState, Balancer, Connection
from loopline.deploy.router.http import (
    MAX_BODY,
    Head,
    HttpError,
    build_head,
    parse_head,
    read_chunked,
    read_head,
    simple_response,
)

log = logging.getLogger(__name__)

_REASONS = {
    400: "Bad Request",
    413: "Payload Too Large",
    431: "Request Header Fields Too Large",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


class _BackendFailed(Exception):
    """The backend failed before sending any response byte (safe to retry)."""


@dataclass
class RouterStats:
    requests: int = 0
    retries: int = 0
    failed: int = 0
    no_backend: int = 0


class Router:
    """One deployment's stable endpoint.

    Args:
        name: the deployment name (for messages).
        connect_timeout: seconds to open a backend connection.
        response_timeout: seconds a backend may take to start its response.
        health_interval: seconds between active health checks of each backend.
        health_path: the readiness path probed on backends.
    """

    def __init__(
        self,
        name: str,
        *,
        connect_timeout: float = 2.0,
        response_timeout: float = 300.0,
        health_interval: float = 1.0,
        health_path: str = "/v2/health/ready",
    ) -> None:
        self.name = name
        self.connect_timeout = connect_timeout
        self.response_timeout = response_timeout
        self.health_interval = health_interval
        self.health_path = health_path.encode()
        self.balancer = Balancer()
        self.stats = RouterStats()
        self._health_task: asyncio.Task[None] | None = None
        self._clients: set[asyncio.StreamWriter] = set()

    # ---- control (called by the admin endpoint) ---------------------------------------------

    def set_backends(self, backends: list[dict[str, object]], weights: object) -> None:
        """Install a backend set from its JSON form. Raises ValueError when malformed."""
        states = []
        for b in backends:
            if not isinstance(b, dict):
                raise ValueError(f"Backend {b!r} is not an object.")
            bid, host, port, rev = b.get("id"), b.get("host"), b.get("port"), b.get("revision")
            if not isinstance(bid, str) or not isinstance(host, str) or not isinstance(port, int):
                raise ValueError(f"Backend {b!r} needs string id and host and integer port.")
            states.append(BackendState(bid, host, port, str(rev or "")))
        if weights is not None:
            if not isinstance(weights, dict) or not all(
                isinstance(k, str) and isinstance(v, int) and v >= 0 for k, v in weights.items()
            ):
                raise ValueError(f"Weights {weights!r} must map revision to an integer ≥ 0.")
        self.balancer.replace(states, weights)

    async def drain(self, backend_id: str, timeout: float) -> tuple[bool, int]:
        """Take the backend out of rotation and wait for its in-flight requests."""
        b = self.balancer.find(backend_id)
        if b is None:
            return True, 0
        b.draining = True
        b.close_pool()
        if b.outstanding:
            b.idle.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(b.idle.wait(), timeout)
        return b.outstanding == 0, b.outstanding

    def describe(self) -> dict[str, object]:
        return {
            "deployment": self.name,
            "weights": self.balancer.weights,
            "backends": [
                {
                    "id": b.id,
                    "host": b.host,
                    "port": b.port,
                    "revision": b.revision,
                    "healthy": b.healthy,
                    "draining": b.draining,
                    "outstanding": b.outstanding,
                }
                for b in [*self.balancer.backends.values(), *self.balancer.retiring.values()]
            ],
            "stats": vars(self.stats),
        }

    # ---- serving ----------------------------------------------------------------------------

    def start_health_checks(self) -> None:
        self._health_task = asyncio.get_running_loop().create_task(self._health_loop())

    async def handle_client(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Serve one client connection until it closes."""
        self._clients.add(writer)
        try:
            while True:
                try:
                    raw = await read_head(reader)
                    if raw is None:
                        return
                    head = parse_head(raw)
                    body = await self._read_body(reader, head)
                except HttpError as exc:
                    writer.write(_error(exc.status, str(exc), keep_alive=False))
                    await writer.drain()
                    return
                keep = await self._proxy(head, body, writer)
                if not keep:
                    return
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            return
        finally:
            self._clients.discard(writer)
            writer.close()

    def in_flight(self) -> int:
        """Requests currently being proxied."""
        bal = self.balancer
        return sum(b.outstanding for b in [*bal.backends.values(), *bal.retiring.values()])

    async def shutdown(self) -> None:
        """Stop health checks and close every pooled and client connection."""
        if self._health_task is not None:
            self._health_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._health_task
        for b in [*self.balancer.backends.values(), *self.balancer.retiring.values()]:
            b.close_pool()
        for w in list(self._clients):
            w.close()
        await asyncio.sleep(0)

    async def _read_body(self, reader: asyncio.StreamReader, head: Head) -> bytes:
        if head.chunked:
            return await read_chunked(reader)
        if head.content_length:
            if head.content_length > MAX_BODY:
                raise HttpError(
                    413, f"Request body of {head.content_length} bytes exceeds {MAX_BODY}."
                )
            return await reader.readexactly(head.content_length)
        return b""

    async def _proxy(self, head: Head, body: bytes, writer: asyncio.StreamWriter) -> bool:
        self.stats.requests += 1
        request = build_head(
            head.first_line,
            head.headers,
            b"content-length: %d\r\n" % len(body)
            if body or head.content_length is not None or head.chunked
            else b"",
        )
        tried: BackendState | None = None
        for attempt in range(2):
            backend = self.balancer.pick(exclude=tried)
            if backend is None:
                break
            if attempt:
                self.stats.retries += 1
            backend.outstanding += 1
            try:
                return await self._exchange(backend, request, body, head, writer)
            except _BackendFailed as exc:
                log.warning("Backend %s failed before responding: %s", backend.id, exc)
                backend.healthy = False
                backend.close_pool()
                tried = backend
            finally:
                self.balancer.release(backend)
        if tried is None:
            self.stats.no_backend += 1
            msg = (
                f"Deployment {self.name!r} has no ready replica to serve this request; "
                "check its status and replica logs."
            )
            writer.write(_error(503, msg, head.keep_alive))
        else:
            self.stats.failed += 1
            msg = (
                f"Deployment {self.name!r}: the replica failed before responding and the "
                "retry found no other ready replica."
            )
            writer.write(_error(502, msg, head.keep_alive))
        await writer.drain()
        return head.keep_alive

    async def _connect(self, b: BackendState, fresh: bool) -> tuple[Connection, bool]:
        if not fresh:
            while b.pool:
                conn = b.pool.pop()
                if not conn[1].is_closing() and not conn[0].at_eof():
                    return conn, True
                conn[1].close()
        try:
            conn = await asyncio.wait_for(
                asyncio.open_connection(b.host, b.port), self.connect_timeout
            )
        except (OSError, TimeoutError) as exc:
            raise _BackendFailed(f"connect to {b.host}:{b.port}: {exc!r}") from exc
        return conn, False

    async def _exchange(
        self,
        b: BackendState,
        request: bytes,
        body: bytes,
        head: Head,
        client: asyncio.StreamWriter,
    ) -> bool:
        fresh = False
        while True:
            (up_r, up_w), reused = await self._connect(b, fresh)
            try:
                up_w.write(request)
                if body:
                    up_w.write(body)
                raw = await asyncio.wait_for(read_head(up_r), self.response_timeout)
                if raw is None:
                    raise ConnectionResetError("closed before responding")
                break
            except (OSError, HttpError, TimeoutError, asyncio.IncompleteReadError) as exc:
                up_w.close()
                if reused and not fresh:
                    fresh = True  # an idle pooled connection went stale: one fresh try
                    continue
                raise _BackendFailed(repr(exc)) from exc
        resp = parse_head(raw)
        is_head = head.first_line.startswith(b"HEAD ")
        status = int(resp.first_line[9:12])
        no_body = is_head or status in (204, 304) or 100 <= status < 200
        close_delimited = not no_body and resp.content_length is None and not resp.chunked
        keep_client = head.keep_alive and not close_delimited
        extra = b"connection: keep-alive\r\n" if keep_client else b"connection: close\r\n"
        if resp.chunked:
            extra += b"transfer-encoding: chunked\r\n"
        client.write(build_head(resp.first_line, resp.headers, extra))
        reusable = resp.keep_alive and not close_delimited
        try:
            if no_body:
                pass
            elif resp.content_length is not None:
                remaining = resp.content_length
                while remaining:
                    chunk = await up_r.read(min(remaining, 256 * 1024))
                    if not chunk:
                        raise ConnectionResetError("backend closed mid-body")
                    client.write(chunk)
                    remaining -= len(chunk)
            elif resp.chunked:
                await _relay_chunked(up_r, client)
            else:
                while chunk := await up_r.read(256 * 1024):
                    client.write(chunk)
        except (OSError, asyncio.IncompleteReadError):
            up_w.close()
            return False  # response already started: cannot retry; drop the client
        if reusable and not b.draining:
            b.pool.append((up_r, up_w))
        else:
            up_w.close()
        await client.drain()
        return keep_client

    async def _health_loop(self) -> None:
        while True:
            await asyncio.sleep(self.health_interval)
            backends = list(self.balancer.backends.values())
            results = await asyncio.gather(*(self._check(b) for b in backends))
            for b, ok in zip(backends, results, strict=True):
                b.healthy = ok

    async def _check(self, b: BackendState) -> bool:
        try:
            r, w = await asyncio.wait_for(asyncio.open_connection(b.host, b.port), 1.0)
        except (OSError, TimeoutError):
            return False
        try:
            w.write(
                b"GET %s HTTP/1.1\r\nhost: %s\r\nconnection: close\r\n\r\n"
                % (self.health_path, b.host.encode())
            )
            line = await asyncio.wait_for(r.readline(), 1.0)
            return line[9:12] == b"200"
        except (OSError, TimeoutError, asyncio.IncompleteReadError):
            return False
        finally:
            w.close()


async def _relay_chunked(up: asyncio.StreamReader, client: asyncio.StreamWriter) -> None:
    while True:
        size_line = await up.readuntil(b"\r\n")
        client.write(size_line)
        size = int(size_line.split(b";", 1)[0].strip(), 16)
        if size == 0:
            while True:
                line = await up.readuntil(b"\r\n")
                client.write(line)
                if line == b"\r\n":
                    return
        client.write(await up.readexactly(size + 2))


def _error(status: int, message: str, keep_alive: bool) -> bytes:
    body = json.dumps({"error": message}).encode()
    return simple_response(status, _REASONS.get(status, "Error"), body, keep_alive)
