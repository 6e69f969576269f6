"""The router: where each request goes, and what happens on failure.

The per-request work happens in :mod:`loopline.deploy.router.protocols` (asyncio protocols,
httptools); this class decides. It serves one :class:`~loopline.deploy.route_table.
RouteTable`: exact per-revision weights (:mod:`~loopline.deploy.router.balancer`), header
routes that pin matching requests to a revision (falling back to the weights when that
revision has no ready backend), a mirror (:mod:`~loopline.deploy.router.mirror`), the
preview revision served on the preview port only, and a hold for requests that find no
backend (:mod:`~loopline.deploy.router.hold`). Each answer is counted per revision
(:mod:`~loopline.deploy.router.metrics`).

Client connections are held to :class:`~loopline.deploy.router.limits.RouterLimits` (head,
URL and body caps, head/body/idle deadlines, a connection cap, a bounded pipelined queue).
Requests are buffered (bodies ≤ ``max_body_bytes``, the model server's cap) so that an
inference whose connection fails before any response byte arrives is retried once on another
ready backend (inference is safe to retry). A failed pooled keep-alive connection first gets
one fresh connection to the same backend, since idle connections going stale is normal.

Only a backend the router cannot connect to is taken out of rotation at once (else the
health checks decide): a connection the backend closes after it got the request, or an
answer it sends that is not valid HTTP, says something about that request, not about the
replica, so it is retried elsewhere (a closed connection) or answered 502 (a malformed
answer, or a response head over ``RouterLimits.max_response_head_bytes``), and never marks
the backend unhealthy.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from bisect import bisect_left
from dataclasses import dataclass
from time import monotonic

from loopline.deploy.route_table import RouteTable
from loopline.deploy.router.balancer import BackendState, Balancer
from loopline.deploy.router.header_routes import HeaderRouter
from loopline.deploy.router.health import health_loop
from loopline.deploy.router.hold import HOLD_LIMIT, HoldQueue
from loopline.deploy.router.http import error_response
from loopline.deploy.router.limits import Phase, RouterLimits, overdue
from loopline.deploy.router.metrics import BOUNDS, RevisionMetrics
from loopline.deploy.router.mirror import PER_BACKEND as MIRROR_PER_BACKEND
from loopline.deploy.router.mirror import Mirroring
from loopline.deploy.router.plain import KnownHeads
from loopline.deploy.router.protocols import ClientProtocol, Exchange, plain_request
from loopline.deploy.router.upstream import NOT_HTTP, UpstreamProtocol, plain_response
from loopline.deploy.router.wire import table_to_json

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
        mirror_limit: mirrored copies in flight at most; more are dropped (and counted).
        mirror_per_backend: a copy goes only to a mirror backend with fewer requests
            outstanding (its own served ones included); else it is dropped (and counted).
        mirror_timeout: seconds a mirror backend has for its whole answer (then an error).
        hold_limit: requests held at most while no backend is ready (then 503).
        limits: the client connections' HTTP limits (default: the model server's).
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
        mirror_limit: int = 100,
        mirror_per_backend: int = MIRROR_PER_BACKEND,
        mirror_timeout: float = 30.0,
        hold_limit: int = HOLD_LIMIT,
        limits: RouterLimits | None = None,
    ) -> None:
        self.name = name
        self.limits = RouterLimits() if limits is None else limits
        self.plain_request = plain_request(self.limits)
        self.plain_response = plain_response(self.limits)
        self.refused_connections = 0  # client connections refused at max_connections
        self.timed_out_requests = 0  # requests whose head or body missed its deadline (408)
        self.idle_closed = 0  # idle client connections closed at idle_timeout
        self.connect_timeout = connect_timeout
        self.response_timeout = response_timeout
        self.health_interval = health_interval
        self.health_path = health_path.encode()
        self.unhealthy_after = unhealthy_after
        self.balancer = Balancer()
        self.stats = RouterStats()
        # Client connections; the response timeouts of their exchanges are checked by one
        # periodic sweep over them (a timer per request would cost more than the rest of the
        # routing decision, and a set of the exchanges waiting for an answer about as much).
        self.clients: set[ClientProtocol] = set()
        self.table = RouteTable()
        self.labels: dict[str, str] = {}
        self.header_router: HeaderRouter | None = None  # None: no header is ever looked at
        self.metrics: dict[str, RevisionMetrics] = {}  # by revision; "" = answered unrouted
        self.mirroring = Mirroring(self.balancer, limit=mirror_limit, timeout=mirror_timeout,
                                   connect_timeout=connect_timeout,
                                   per_backend=mirror_per_backend,
                                   max_head=self.limits.max_response_head_bytes)  # fmt: skip
        self.hold = HoldQueue(self._hold_expired, hold_limit)
        # heads seen before, framed by their length alone (see deploy/router/plain.py)
        self.request_heads = KnownHeads(responses=False)
        self.response_heads = KnownHeads(responses=True)
        self.started_at = monotonic()
        self._tasks: list[asyncio.Task[None]] = []

    def protocol(self) -> ClientProtocol:
        """Protocol factory for the stable port (``loop.create_server``)."""
        return ClientProtocol(self)

    def preview_protocol(self) -> ClientProtocol:
        """Protocol factory for the preview port: only the preview revision answers there."""
        return ClientProtocol(self, preview=True)

    def revision_metrics(self, revision: str) -> RevisionMetrics:
        m = self.metrics.get(revision)
        if m is None:
            m = self.metrics[revision] = RevisionMetrics()
        return m

    # ---- control (called by the admin endpoint) ---------------------------------------------

    def set_routes(self, table: RouteTable) -> None:
        """Serve ``table`` from now on; held requests go out if it brings a backend."""
        states = [BackendState(b.id, b.host, b.port, b.revision) for b in table.backends]
        self.balancer.replace(states, table.traffic.weight_map())
        for b in self.balancer.backends.values():
            b.metrics = self.revision_metrics(b.revision)
        traffic = table.traffic
        self.table = table
        self.labels = dict(table.labels)
        self.header_router = HeaderRouter(traffic.header_routes) if traffic.header_routes else None
        self.mirroring.set(traffic.mirror)
        self._release_held()

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
        """Requests currently being proxied (mirrored copies included)."""
        bal = self.balancer
        return sum(b.outstanding for b in [*bal.backends.values(), *bal.retiring.values()])

    def describe(self) -> dict[str, object]:
        return {
            "deployment": self.name,
            **table_to_json(self.table),
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
        if not ex.start:  # first time: count it, match header routes
            ex.start = monotonic()
            self.stats.requests += 1
            if self.header_router is not None:
                ex.route = self.header_router.match(ex.request)
        route = ex.route
        if route is None:
            backend = self.balancer.pick(ex.tried)
        else:
            backend = self.balancer.pick_revision(route, ex.tried)
            if backend is None and not ex.strict:  # header route without a backend
                backend = self.balancer.pick(ex.tried)
        if backend is None:
            self._unserved(ex)
            return
        # self._send(ex, backend, allow_pooled=True), inlined for the pooled case
        ex.backend = backend
        backend.outstanding += 1
        pool = backend.pool
        while pool:
            up = pool.pop()
            if not up.closed:
                up.send(ex, True)
                break
        else:
            asyncio.get_running_loop().create_task(self._connect(ex, backend))
        mirror = self.mirroring.mirror
        if mirror is not None and ex.tried is None and ex.shadow is None and not ex.strict:
            self.mirroring.copy(ex, backend, mirror)

    def dispatch_preview(self, ex: Exchange) -> None:
        """A request on the preview port: only the preview revision may answer it."""
        if not ex.start:
            ex.start = monotonic()
            self.stats.requests += 1
            ex.route, ex.strict = self.table.traffic.preview, True
            if ex.route is None:
                self.stats.no_backend += 1
                msg = (f"Deployment {self.name!r} has no preview revision: the preview port "
                       "serves a new revision only while a blue-green rollout waits for "
                       "promotion; use the main port.")  # fmt: skip
                self._answer(ex, 503, msg, self.revision_metrics(""))
                return
        self.dispatch(ex)

    def _unserved(self, ex: Exchange) -> None:
        """No backend for ``ex``: 502 after a failed try, else hold it or 503."""
        if ex.tried is not None:
            self.stats.failed += 1
            msg = (f"Deployment {self.name!r}: the replica failed before responding and "
                   "no other ready replica was left to retry on.")  # fmt: skip
            self._answer(ex, 502, msg, ex.tried.metrics)
            return
        metrics = self.revision_metrics(ex.route or "")
        if ex.strict:
            self.stats.no_backend += 1
            msg = (f"Deployment {self.name!r}: its preview revision {ex.route!r} has no ready "
                   "replica; check the rollout's status and the replica logs.")  # fmt: skip
            self._answer(ex, 503, msg, metrics)
            return
        hold = self.table.hold_seconds
        if hold > 0:
            if self.hold.add(ex, hold):
                return
            self.stats.no_backend += 1
            msg = (f"Deployment {self.name!r} has no ready replica and {self.hold.limit} "
                   "requests are already waiting for one; retry shortly.")  # fmt: skip
            self._answer(ex, 503, msg, metrics, retry_after=1)
            return
        self.stats.no_backend += 1
        msg = (f"Deployment {self.name!r} has no ready replica to serve this request; "
               "check its status and replica logs.")  # fmt: skip
        self._answer(ex, 503, msg, metrics)

    def _answer(self, ex: Exchange, status: int, message: str, metrics: RevisionMetrics,
                retry_after: int | None = None) -> None:  # fmt: skip
        """Answer ``ex`` with an error made by the router (counted like any answer)."""
        ex.done = True
        ex.status = status // 100
        now = monotonic()
        metrics.record(now - ex.start, ex.status, now)
        ex.client.write(error_response(status, message, ex.keep_alive, retry_after))
        ex.client.finish(ex, ex.keep_alive)

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
            self.failed(ex, backend, reused=False, refused=True)
            return
        if ex.client.closed:
            self.complete(ex, backend)
            if up.transport is not None:
                up.transport.close()
            return
        if up.closed:  # accepted, then lost before the request went out (a backend dying):
            self.failed(ex, backend, reused=False)  # a write now would vanish without a word
            return
        up.send(ex, reused=False)

    def complete(self, ex: Exchange, backend: BackendState) -> None:
        """The exchange is over for ``backend`` (answered, abandoned or failed)."""
        ex.done = True
        backend.outstanding -= 1
        if backend.outstanding == 0 and backend.draining:
            self.balancer.release_idle(backend)
        if ex.status:  # answered (an abandoned request is not counted)
            # RevisionMetrics.record, inlined: this runs once per request
            now = monotonic()
            m = backend.metrics
            if int(now) != m.second:
                m.tick(int(now))
            seconds = now - ex.start
            m.hist[bisect_left(BOUNDS, seconds)] += 1
            m.codes[ex.status] += 1
            m.sum += seconds

    def failed(self, ex: Exchange, backend: BackendState, reused: bool,
               refused: bool = False) -> None:  # fmt: skip
        """The backend failed ``ex`` before sending any response byte: retry or give up.

        ``refused``: no connection could be opened; only that takes the backend out of
        rotation (until its next passed health check). A connection closed after the request
        was sent is this request's failure, not the replica's (a dead replica refuses the
        retry's fresh connection, and is taken out then).
        """
        self.balancer.release(backend)
        if ex.client.closed:
            ex.done = True
            return
        if reused and not ex.fresh_retry:
            ex.fresh_retry = True  # an idle pooled connection went stale: one fresh try
            self._send(ex, backend, allow_pooled=False)
            return
        if refused:
            backend.healthy = False  # until the next health check passes
            backend.close_pool()
        if ex.tried is not None:  # this was already the retry
            ex.tried = backend
            self.stats.failed += 1
            msg = (f"Deployment {self.name!r}: two replicas failed before responding; "
                   "see the replica logs.")  # fmt: skip
            self._answer(ex, 502, msg, backend.metrics)
            return
        ex.tried = backend
        self.stats.retries += 1
        self.dispatch(ex)

    # ---- hold (scale from zero) -------------------------------------------------------------

    def _release_held(self) -> None:
        """After a new table: send the held requests if a backend is there; with the hold
        turned off and still no backend, answer them 503 now."""
        if not self.hold.queue:
            return
        if any(not b.draining for b in self.balancer.backends.values()):
            for ex in self.hold.take_all():
                self.dispatch(ex)
        elif self.table.hold_seconds <= 0:
            for ex in self.hold.expired(math.inf):
                self._hold_expired(ex)

    def malformed_answer(self, ex: Exchange, backend: BackendState, why: str = NOT_HTTP) -> None:
        """``backend`` answered ``ex`` with bytes that are not valid HTTP (or a head over the
        cap; ``why`` says which), before any of them reached the client: 502, no retry (the
        request would likely do the same elsewhere), and the backend stays in rotation."""
        self.balancer.release(backend)
        self.stats.failed += 1
        msg = f"Deployment {self.name!r}: the replica {backend.id!r} {why}; see the replica logs."
        self._answer(ex, 502, msg, backend.metrics)

    def _hold_expired(self, ex: Exchange) -> None:
        self.stats.no_backend += 1
        msg = (f"Deployment {self.name!r} has no ready replica: this request waited "
               f"{monotonic() - ex.start:.1f} s for one to start (scale from zero); "
               "retry later.")  # fmt: skip
        retry = max(1, math.ceil(self.table.hold_seconds))
        self._answer(ex, 503, msg, self.revision_metrics(ex.route or ""), retry_after=retry)

    # ---- background -------------------------------------------------------------------------

    async def _sweep(self) -> None:
        """504 every exchange whose backend sent no byte by its deadline; fail the mirrored
        copies not answered by theirs.

        Checked every ``response_timeout / 10`` (at most 1 s), so a timeout fires up to 10 %
        late; one sweep instead of a timer per request.
        """
        interval = min(1.0, self.response_timeout / 10, self.mirroring.timeout / 10,
                       self.limits.sweep_interval())  # fmt: skip
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            late = []
            overdue_clients = []
            limits = self.limits
            for c in self.clients:
                up = c.upstream
                if up is not None:
                    if up.deadline <= now and up.ex is not None and not up.ex.started:
                        late.append(up)
                    continue
                phase = c.phase()
                if phase is Phase.BUSY:
                    c.seen = None
                    continue
                seen = (phase, c.requests)
                if c.seen != seen:  # first seen in this phase: its clock starts now
                    c.seen, c.seen_at = seen, now
                elif overdue(limits, phase, c.seen_at, now):
                    overdue_clients.append((c, phase))
            for up in late:
                up.timed_out()
            for c, phase in overdue_clients:
                c.overdue(phase)
            self.mirroring.sweep(now)

    def start_background_tasks(self) -> None:
        """Start the health checks and the response-timeout sweep (on the running loop)."""
        loop = asyncio.get_running_loop()
        checks = health_loop(self.balancer, self.health_path, self.health_interval,
                             self.unhealthy_after)  # fmt: skip
        self._tasks = [loop.create_task(checks), loop.create_task(self._sweep())]

    async def shutdown(self) -> None:
        """Stop the background tasks and close every pooled and client connection."""
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.hold.cancel()
        for b in [*self.balancer.backends.values(), *self.balancer.retiring.values()]:
            b.close_pool()
        self.mirroring.close()
        for c in list(self.clients):
            if c.transport is not None:
                c.transport.close()
        await asyncio.sleep(0)
