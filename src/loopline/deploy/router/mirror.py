"""Mirroring: a copy of a served request goes to the mirror revision, its answer is
compared with the served one, then dropped.

:class:`Mirroring` decides which requests are copied (an exact share of the POSTs served by
other revisions) and sends the copies. A copy travels on connections of its own
(:class:`MirrorProtocol`, pooled per backend apart from the serving pool) and nothing on the
client's path ever waits for it: the served answer is forwarded as usual and only *also*
handed to the request's :class:`Shadow`, which compares once both answers are in
(:func:`~loopline.deploy.router.agreement.answers_agree`). Copies in flight are bounded;
one beyond the bound is dropped and counted.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from time import monotonic
from typing import TYPE_CHECKING

import httptools

from loopline.deploy.router.agreement import answers_agree
from loopline.deploy.traffic import Mirror

if TYPE_CHECKING:
    from loopline.deploy.router.balancer import BackendState, Balancer
    from loopline.deploy.router.protocols import Exchange

MAX_COMPARED = 4 * 1024 * 1024  # bytes of an answer kept for the comparison
MIRROR_HEADER = b"x-loopline-mirror: 1\r\n"  # marks the copies a mirror revision receives
_AFTER_REQUEST_LINE = b"\r\n" + MIRROR_HEADER  # the request line's end, then the mark
PER_BACKEND = 4  # a copy goes only to a mirror backend with fewer requests outstanding


@dataclass
class MirrorCounters:
    """What happened to the copies sent to one mirror revision.

    ``sent`` copies went out; ``errors`` of them failed (no answer, non-2xx, timeout);
    ``compared`` were compared with a served 2xx answer of a known protocol, ``agreed`` of
    those predicted the same; ``dropped`` copies were never sent (too many mirrors in
    flight, or no ready backend of the mirror revision).
    """

    sent: int = 0
    compared: int = 0
    agreed: int = 0
    errors: int = 0
    dropped: int = 0


class Shadow:
    """One mirrored request: waits for both answers, then compares them."""

    __slots__ = ("counters", "mirrored", "parts", "served")

    def __init__(self, counters: MirrorCounters) -> None:
        self.counters = counters
        self.served: bytes | None = None  # the served 2xx answer's body
        self.mirrored: bytes | None = None  # the mirror's 2xx answer's body
        self.parts: list[bytes] | None = None  # a served body arriving in pieces

    # the served side (called by the upstream protocol after the client got its bytes)
    def served_message(self, message: bytes) -> None:
        """The whole served response, verbatim (head and body)."""
        if message[9:10] == b"2":
            end = message.find(b"\r\n\r\n")
            self._served(message[end + 4 :])

    def served_head(self, status: int) -> None:
        self.parts = [] if 200 <= status < 300 else None

    def served_body(self, data: bytes) -> None:
        parts = self.parts
        if parts is not None:
            parts.append(data)
            if len(parts) > 1 and sum(map(len, parts)) > MAX_COMPARED:
                self.parts = None

    def served_end(self) -> None:
        if self.parts is not None:
            self._served(b"".join(self.parts))
            self.parts = None

    def _served(self, body: bytes) -> None:
        self.served = body
        if self.mirrored is not None:
            self._compare()

    # the mirror side
    def mirror_answered(self, status: int, body: bytes) -> None:
        if not 200 <= status < 300:
            self.counters.errors += 1
            return
        self.mirrored = body
        if self.served is not None:
            self._compare()

    def mirror_failed(self) -> None:
        self.counters.errors += 1

    def _compare(self) -> None:
        assert self.served is not None and self.mirrored is not None
        verdict = answers_agree(self.served, self.mirrored)
        self.served = self.mirrored = None
        if verdict is not None:
            self.counters.compared += 1
            self.counters.agreed += verdict


class MirrorProtocol(asyncio.Protocol):
    """One keep-alive connection to a backend of the mirror revision."""

    def __init__(self, mirroring: Mirroring, backend: BackendState) -> None:
        self.mirroring = mirroring
        self.backend = backend
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.shadow: Shadow | None = None
        self.closed = False
        self.deadline = 0.0
        self._body: list[bytes] = []
        self._size = 0
        self._keep = True
        self._head_open = False  # inside a response head
        self._head_fed = 0  # bytes received since that head began

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def send(self, shadow: Shadow, request: bytes) -> None:
        self.shadow = shadow
        self._body, self._size = [], 0
        assert self.transport is not None
        self.transport.write(request)
        self.deadline = monotonic() + self.mirroring.timeout
        self.mirroring.waiting.add(self)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self._end(None)
            return
        if self._head_open:  # a head still open beyond the cap (plus one read): an error
            self._head_fed += len(data)
            if self._head_fed > self.mirroring.max_head:
                self._end(None)

    def on_message_begin(self) -> None:
        self._head_open, self._head_fed = True, 0

    def on_headers_complete(self) -> None:
        self._head_open = False

    def on_body(self, body: bytes) -> None:
        self._size += len(body)
        if self._size <= MAX_COMPARED:
            self._body.append(body)

    def on_message_complete(self) -> None:
        if self._size > MAX_COMPARED:
            self._end(None)
            return
        self._keep = self.parser.should_keep_alive()
        body = self._body
        self._end(self.parser.get_status_code(), body[0] if len(body) == 1 else b"".join(body))

    def timed_out(self) -> None:
        """No complete answer by the deadline (called by the router's sweep)."""
        self._end(None)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._end(None)

    def _end(self, status: int | None, body: bytes = b"") -> None:
        """The copy is over: answered with ``status`` and ``body``, or failed (None)."""
        shadow, self.shadow = self.shadow, None
        if shadow is None:  # idle, or already ended
            if self.transport is not None and not self.closed and status is None:
                self.transport.close()
            return
        self.mirroring.done(self)
        if status is None:
            shadow.mirror_failed()
            if self.transport is not None:
                self.transport.close()
        else:
            shadow.mirror_answered(status, body)
            if self._keep and not self.closed and not self.backend.draining:
                self.backend.mirror_pool.append(self)
            elif self.transport is not None:
                self.transport.close()


class Mirroring:
    """The router's mirror: which requests are copied, where to, and the copies in flight.

    Args:
        balancer: where the mirror revision's backends are found (and released).
        limit: copies in flight at most; more are dropped (and counted).
        per_backend: a copy goes only to a mirror backend with fewer requests outstanding
            (its own served ones included); else it is dropped. Shadow traffic yields: it
            never queues behind, or ahead of, the requests a canary really serves.
        timeout: seconds a mirror backend has for its whole answer (then an error).
        connect_timeout: seconds to open a connection to a mirror backend.
        max_head: bytes a mirror backend's response head may hold (more: an error).
    """

    def __init__(self, balancer: Balancer, *, limit: int, timeout: float,
                 connect_timeout: float, max_head: int,
                 per_backend: int = PER_BACKEND) -> None:  # fmt: skip
        self.balancer = balancer
        self.max_head = max_head
        self.limit = limit
        self.per_backend = per_backend
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.mirror: Mirror | None = None
        self.counters: dict[str, MirrorCounters] = {}  # by mirror revision, kept
        self.in_flight = 0
        self.waiting: set[MirrorProtocol] = set()  # swept by the router for timeouts
        self._credit = 0  # percent points accrued; a copy per 100 (exact shares)

    def set(self, mirror: Mirror | None) -> None:
        if mirror != self.mirror:
            self._credit = 0
        self.mirror = mirror
        if mirror is not None:
            self.counters.setdefault(mirror.revision, MirrorCounters())

    def copy(self, ex: Exchange, served_by: BackendState, mirror: Mirror) -> None:
        """Copy ``ex`` (just sent to ``served_by``) if it is a POST served by another
        revision and its turn has come: ``percent`` of every 100, evenly spread."""
        if served_by.revision == mirror.revision or not ex.request.startswith(b"POST "):
            return
        self._credit += mirror.percent
        if self._credit < 100:
            return
        self._credit -= 100
        counters = self.counters.get(mirror.revision)
        if counters is None:
            counters = self.counters[mirror.revision] = MirrorCounters()
        target = None
        if self.in_flight < self.limit:
            target = self.balancer.pick_revision(mirror.revision)
        if target is not None and target.outstanding >= self.per_backend:
            target = None  # busy: a copy must not slow what the mirror backend serves
        if target is None:
            counters.dropped += 1
            return
        counters.sent += 1
        shadow = ex.shadow = Shadow(counters)
        self.in_flight += 1
        target.outstanding += 1
        request = ex.request.replace(b"\r\n", _AFTER_REQUEST_LINE, 1)
        if ex.body:
            request += ex.body
        while target.mirror_pool:
            mp = target.mirror_pool.pop()
            if not mp.closed:
                mp.send(shadow, request)
                return
        asyncio.get_running_loop().create_task(self._connect(target, shadow, request))

    async def _connect(self, target: BackendState, shadow: Shadow, request: bytes) -> None:
        loop = asyncio.get_running_loop()
        try:
            _, mp = await asyncio.wait_for(
                loop.create_connection(
                    lambda: MirrorProtocol(self, target), target.host, target.port
                ),
                self.connect_timeout,
            )
        except (OSError, TimeoutError):
            mp = None
        if mp is None or mp.closed:  # refused, or accepted and lost before the copy went out
            self.in_flight -= 1
            self.balancer.release(target)
            shadow.mirror_failed()
            return
        mp.send(shadow, request)

    def done(self, mp: MirrorProtocol) -> None:
        """The copy on ``mp`` is over (answered or failed)."""
        self.waiting.discard(mp)
        self.in_flight -= 1
        self.balancer.release(mp.backend)

    def sweep(self, now: float) -> None:
        """Fail the copies whose answer did not come by their deadline."""
        for mp in [m for m in self.waiting if m.deadline <= now]:
            mp.timed_out()

    def close(self) -> None:
        for mp in list(self.waiting):
            if mp.transport is not None:
                mp.transport.close()
