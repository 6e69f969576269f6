"""The router: exact-weight load balancing, retries, drain and health checks.

The per-request work happens in :mod:`loopline.deploy.router.protocols` (asyncio protocols,
httptools); this class decides where each request goes and what happens on failure.
Requests are buffered (bodies ≤ 64 MiB) so that an inference whose connection fails before
any response byte arrives is retried once on another ready backend (inference is safe to
retry). A failed pooled keep-alive connection first gets one fresh connection to the same
backend, since idle connections going stale is normal.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass

from loopline.deploy.router.balancer import BackendState, Balancer
from loopline.deploy.router.http import error_response
from loopline.deploy.router.protocols import ClientProtocol, Exchange
from loopline.deploy.router.upstream import UpstreamProtocol

log = logging.getLogger(__name__)


@dataclass
class RouterStats:
    """Counters since the router started."""

    requests: int = 0
    retries: int = 0
    failed: int = 0
    no_backend: int = 0


class Router:
    """One deployment's stable endpoint.

    Args:
        name: the deployment name (for messages).
        connect_timeout: seconds to open a backend connection.
        response_timeout: seconds a backend may take to send its first response byte (then
            504); checked by a sweep every ``min(1, response_timeout / 10)`` seconds.
        health_interval: seconds between active health checks of each backend.
        health_path: the readiness path probed on backends.
        unhealthy_after: consecutive failed health checks before a backend is taken out
            (a refused connection while proxying takes it out at once).
    """

    def __init__(
        self,
        name: str,
        *,
        connect_timeout: float = 2.0,
        response_timeout: float = 300.0,
        health_interval: float = 1.0,
        health_path: str = "/v2/health/ready",
        unhealthy_after: int = 3,
    ) -> None:
        self.name = name
        self.connect_timeout = connect_timeout
        self.response_timeout = response_timeout
        self.health_interval = health_interval
        self.health_path = health_path.encode()
        self.unhealthy_after = unhealthy_after
        self.balancer = Balancer()
        self.stats = RouterStats()
        self.clients: set[ClientProtocol] = set()
        # Connections waiting for the first response byte, checked by one periodic sweep
        # (a timer per request would cost more than the rest of the routing decision).
        self.waiting: set[UpstreamProtocol] = set()
        self._tasks: list[asyncio.Task[None]] = []

    def protocol(self) -> ClientProtocol:
        """Protocol factory for ``loop.create_server``."""
        return ClientProtocol(self)

    # ---- control (called by the admin endpoint) ---------------------------------------------

    def set_backends(self, backends: list[object], weights: object) -> None:
        """Install a backend set from its JSON form. Raises ValueError when malformed."""
        states = []
        for b in backends:
            if not isinstance(b, dict):
                raise ValueError(f"Backend {b!r} is not an object.")
            bid, host, port, rev = b.get("id"), b.get("host"), b.get("port"), b.get("revision")
            if not isinstance(bid, str) or not isinstance(host, str) or not isinstance(port, int):
                raise ValueError(f"Backend {b!r} needs a string id and host and an integer port.")
            states.append(BackendState(bid, host, port, str(rev or "")))
        if weights is not None and not (
            isinstance(weights, dict)
            and all(isinstance(k, str) and type(v) is int and v >= 0 for k, v in weights.items())
        ):
            raise ValueError(f"Weights {weights!r} must map revision hash to an integer ≥ 0.")
        self.balancer.replace(states, weights)

    async def drain(self, backend_id: str, timeout: float) -> tuple[bool, int]:
        """Take the backend out of rotation and wait (≤ ``timeout`` s) for in-flight requests.

        Returns ``(drained, still_in_flight)``; an unknown backend counts as drained.
        """
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

    def in_flight(self) -> int:
        """Requests currently being proxied."""
        bal = self.balancer
        return sum(b.outstanding for b in [*bal.backends.values(), *bal.retiring.values()])

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

    # ---- request routing (called by the protocols) ------------------------------------------

    def dispatch(self, ex: Exchange) -> None:
        """Send ``ex`` to the best backend (never the one that already failed it)."""
        if ex.tried is None and not ex.fresh_retry:
            self.stats.requests += 1
        backend = self.balancer.pick(exclude=ex.tried)
        if backend is None:
            if ex.tried is None:
                self.stats.no_backend += 1
                msg = (f"Deployment {self.name!r} has no ready replica to serve this request; "
                       "check its status and replica logs.")  # fmt: skip
                status = 503
            else:
                self.stats.failed += 1
                msg = (f"Deployment {self.name!r}: the replica failed before responding and "
                       "no other ready replica was left to retry on.")  # fmt: skip
                status = 502
            ex.done = True
            ex.client.write(error_response(status, msg, ex.keep_alive))
            ex.client.finish(ex, ex.keep_alive)
            return
        self._send(ex, backend, allow_pooled=True)

    def _send(self, ex: Exchange, backend: BackendState, allow_pooled: bool) -> None:
        ex.backend = backend
        backend.outstanding += 1
        if allow_pooled:
            while backend.pool:
                up = backend.pool.pop()
                if not up.closed:
                    up.send(ex, reused=True)
                    return
        asyncio.get_running_loop().create_task(self._connect(ex, backend))

    async def _connect(self, ex: Exchange, backend: BackendState) -> None:
        loop = asyncio.get_running_loop()
        try:
            _, up = await asyncio.wait_for(
                loop.create_connection(
                    lambda: UpstreamProtocol(self, backend), backend.host, backend.port
                ),
                self.connect_timeout,
            )
        except (OSError, TimeoutError) as exc:
            log.warning("Cannot connect to backend %s: %r", backend.id, exc)
            self.failed(ex, backend, reused=False)
            return
        if ex.client.closed:
            self.complete(ex, backend)
            if up.transport is not None:
                up.transport.close()
            return
        up.send(ex, reused=False)

    def complete(self, ex: Exchange, backend: BackendState) -> None:
        """The exchange is over for ``backend`` (answered, abandoned or failed)."""
        ex.done = True
        self.balancer.release(backend)

    def failed(self, ex: Exchange, backend: BackendState, reused: bool) -> None:
        """The backend failed ``ex`` before sending any response byte: retry or give up."""
        self.balancer.release(backend)
        if ex.client.closed:
            ex.done = True
            return
        if reused and not ex.fresh_retry:
            ex.fresh_retry = True  # an idle pooled connection went stale: one fresh try
            self._send(ex, backend, allow_pooled=False)
            return
        backend.healthy = False  # until the next health check passes
        backend.close_pool()
        if ex.tried is not None:  # this was already the retry
            ex.tried = backend
            self.stats.failed += 1
            ex.done = True
            msg = (f"Deployment {self.name!r}: two replicas failed before responding; "
                   "see the replica logs.")  # fmt: skip
            ex.client.write(error_response(502, msg, ex.keep_alive))
            ex.client.finish(ex, ex.keep_alive)
            return
        ex.tried = backend
        self.stats.retries += 1
        self.dispatch(ex)

    # ---- background -------------------------------------------------------------------------

    async def _sweep(self) -> None:
        """504 every exchange whose backend sent no byte by its deadline.

        Checked every ``response_timeout / 10`` (at most 1 s), so a timeout fires up to 10 %
        late; one sweep instead of a timer per request.
        """
        while True:
            await asyncio.sleep(min(1.0, self.response_timeout / 10))
            now = time.monotonic()
            for up in [u for u in self.waiting if u.deadline <= now]:
                up.timed_out()

    def start_background_tasks(self) -> None:
        """Start the health checks and the response-timeout sweep (on the running loop)."""
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._health_loop()), loop.create_task(self._sweep())]

    async def shutdown(self) -> None:
        """Stop the background tasks and close every pooled and client connection."""
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for b in [*self.balancer.backends.values(), *self.balancer.retiring.values()]:
            b.close_pool()
        for c in list(self.clients):
            if c.transport is not None:
                c.transport.close()
        await asyncio.sleep(0)

    async def _health_loop(self) -> None:
        while True:
            await asyncio.sleep(self.health_interval)
            backends = list(self.balancer.backends.values())
            results = await asyncio.gather(*(self._check(b) for b in backends))
            for b, ok in zip(backends, results, strict=True):
                b.failures = 0 if ok else b.failures + 1
                if ok:
                    b.healthy = True
                elif b.failures >= self.unhealthy_after:
                    b.healthy = False

    async def _check(self, b: BackendState) -> bool:
        try:
            r, w = await asyncio.wait_for(asyncio.open_connection(b.host, b.port), 1.0)
        except (OSError, TimeoutError):
            return False
        try:
            w.write(b"GET %s HTTP/1.1\r\nhost: %s\r\nconnection: close\r\n\r\n"
                    % (self.health_path, b.host.encode()))  # fmt: skip
            line = await asyncio.wait_for(r.readline(), 1.0)
            return line[9:12] == b"200"
        except (OSError, TimeoutError, asyncio.IncompleteReadError):
            return False
        finally:
            w.close()
