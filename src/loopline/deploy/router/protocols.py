"""The proxy's hot path as asyncio protocols with httptools parsers (no per-request awaits).

A :class:`ClientProtocol` frames requests, hands each to :meth:`Router.dispatch`, and
answers them in order. An :class:`~loopline.deploy.router.upstream.UpstreamProtocol` is one
keep-alive connection to a backend, pooled by the router; it streams the response back.

Two paths, same behaviour. *Plain* messages (HTTP/1.1, none of the ``NOT_PLAIN`` headers:
hop-by-hop, ``Expect``, ``Transfer-Encoding``; ≤ ``PLAIN_LIMIT`` bytes; responses also need
a ``Content-Length``, a final status, and a request other than HEAD) are forwarded byte for
byte. A second httptools parser per connection, with only begin/complete callbacks, says
where each one ends and rejects malformed ones, so no Python code runs per header. Anything
else (chunked bodies, ``Connection`` headers, HTTP/1.0, ``100-continue``, pipelined
requests, large bodies) goes, from its first byte, through the full parser, which rebuilds
the head without hop-by-hop headers and streams the body. A connection returns to the plain
path at the next message boundary.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

import httptools

from loopline.deploy.router.http import HOP_BY_HOP, NOT_PLAIN, error_response
from loopline.deploy.router.limits import Phase, RouterLimits
from loopline.deploy.router.plain import PLAIN_LIMIT, HeadTooLarge, PlainBuffer

if TYPE_CHECKING:
    from loopline.deploy.router.balancer import BackendState
    from loopline.deploy.router.mirror import Shadow
    from loopline.deploy.router.proxy import Router
    from loopline.deploy.router.upstream import UpstreamProtocol


class Exchange:
    """One request on its way through the router."""

    __slots__ = (
        "backend", "body", "client", "done", "fresh_retry", "hold_until", "is_head",
        "keep_alive", "plain", "request", "route", "shadow", "start", "started", "status",
        "strict", "tried",
    )  # fmt: skip
    hold_until: float  # monotonic() time a held request waits until (set when it is held)

    def __init__(self, client: ClientProtocol, request: bytes, body: bytes, keep_alive: bool,
                 is_head: bool, plain: bool = False) -> None:  # fmt: skip
        self.client = client
        self.request = request
        self.body = body
        self.keep_alive = keep_alive
        self.is_head = is_head
        self.plain = plain  # verbatim HTTP/1.1 keep-alive request: a plain answer may be too
        self.backend: BackendState | None = None
        self.tried: BackendState | None = None
        self.started = False  # response head already sent to the client: no retry
        self.done = False
        self.fresh_retry = False
        self.start = 0.0  # monotonic() when first dispatched (0: not yet)
        self.status = 0  # hundreds digit of the answer's status (0: none yet)
        self.route: str | None = None  # the revision it is pinned to (header route, preview)
        self.strict = False  # pinned without fallback (the preview port)
        self.shadow: Shadow | None = None  # mirrored: the copy's bookkeeping


class _Refused(Exception):
    """Raised in a full-parser callback to stop parsing; ``status`` 0: close after the queue."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class ClientProtocol(asyncio.Protocol):
    """One client connection, within the router's :class:`RouterLimits`.

    Limits cost the plain path nothing per request beyond a counter: the head and URL caps
    are part of the plain predicate (a head over them goes to the full parser, which answers
    414/431), and the deadlines are read off the connection's state by the router's sweep
    (:meth:`phase`, ``requests``).
    """

    def __init__(self, router: Router, preview: bool = False) -> None:
        self.router = router
        # where requests go: by the route table, or (preview port) to the preview revision
        self.dispatch = router.dispatch_preview if preview else router.dispatch
        self.limits: RouterLimits = router.limits
        self.is_plain = router.plain_request
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.plain = PlainBuffer(httptools.HttpRequestParser, self._full,
                                 self.limits.max_header_bytes)  # fmt: skip
        self.known = router.request_heads
        self.full = False  # the full parser is in the middle of a message
        self.queue: deque[Exchange] = deque()
        self.current: Exchange | None = None
        self.closed = False
        self.upstream: UpstreamProtocol | None = None
        self.requests = 0  # requests framed so far (the sweep tells one phase from the next)
        self.seen: tuple[Phase, int] | None = None  # (phase, requests) the sweep saw last
        self.seen_at = 0.0  # since when (monotonic)
        self.paused = False  # reading paused: the pipelined queue is full (or stopped)
        self.stopped = False  # reading stopped for good: answer what is queued, then close
        self._in_body = False  # the full parser has the head of its message
        self._head_fed = 0  # bytes fed to the full parser since its head began
        self._url = b""
        self._headers: list[bytes] = []
        self._hsize = 0
        self._body: list[bytes] = []
        self._size = 0
        self._expect = False

    # transport callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        clients = self.router.clients
        if len(clients) >= self.limits.max_connections:
            msg = (f"The router has {self.limits.max_connections} open client connections, its "
                   "limit; retry shortly.")  # fmt: skip
            self.write(error_response(503, msg, keep_alive=False, retry_after=1))
            self.closed = True
            transport.close()
            self.router.refused_connections += 1
            return
        clients.add(self)

    def data_received(self, data: bytes) -> None:
        """Frame requests: a plain one is buffered until complete, then sent whole.

        The head is vetted once complete; a request that is not plain, outgrows
        PLAIN_LIMIT or is followed by the start of another (pipelining) is handed, from its
        first byte, to the full parser.
        """
        try:
            if self.full:
                self._feed_full(data)
                return
            buf = self.plain.feed(data, self.is_plain, self.known)
            if buf is None:
                return
            # One whole request (a CRLF after it, which llhttp skips, goes along: servers
            # ignore empty lines before a request line).
            self.requests += 1
            ex = Exchange(self, buf, b"", True, buf.startswith(b"HEAD "), True)
            if self.current is None and not self.queue:  # usual: nothing waits before it
                self.current = ex
                self.dispatch(ex)
                return
            self.queue.append(ex)
            if self.current is None:
                self.next()
            elif len(self.queue) >= self.limits.max_pipelined:
                self._pause()
        except httptools.HttpParserUpgrade:
            self.reject(400, "Protocol upgrades are not supported by the router.")
        except HeadTooLarge:
            self.reject(431, self._head_message())
        except httptools.HttpParserError as exc:
            refused = exc.__context__ if isinstance(exc.__context__, _Refused) else None
            if refused is None:
                self.reject(400, f"Malformed HTTP request: {exc}.")
            elif refused.status:
                self.reject(refused.status, str(refused))
            else:
                self._close_after_queue()

    def _feed_full(self, data: bytes) -> None:
        """Feed the full parser; a head it holds beyond the cap (plus one read) gets 431."""
        in_head = not self._in_body
        self.parser.feed_data(data)
        if in_head and self.full and not self._in_body:  # a head still open after this read
            self._head_fed += len(data)
            if self._head_fed > self.limits.max_header_bytes:
                self.reject(431, self._head_message())
                return
        if len(self.queue) >= self.limits.max_pipelined:
            self._pause()

    def _pause(self) -> None:
        """Stop reading while the pipelined queue is full (next() resumes)."""
        if not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()

    def _head_message(self) -> str:
        return (f"The request head is larger than the router's limit of "
                f"{self.limits.max_header_bytes} bytes.")  # fmt: skip

    def _close_after_queue(self) -> None:
        """Stop reading; answer what is queued (or being answered), then close."""
        self.closed_for_reading()
        last = self.queue[-1] if self.queue else self.current
        if last is not None:
            last.keep_alive = False
        elif self.transport is not None:
            self.transport.close()

    def closed_for_reading(self) -> None:
        """Read nothing more from this connection."""
        self.stopped = True
        if self.transport is not None and not self.paused:
            self.paused = True
            self.transport.pause_reading()

    def _full(self, buf: bytes) -> None:
        """Hand ``buf`` (from a message's first byte) and what follows to the full parser."""
        self.full = True
        self.parser.feed_data(buf)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.router.clients.discard(self)
        if self.upstream is not None and self.upstream.transport is not None:
            self.upstream.transport.close()  # an abandoned exchange must not be reused

    def pause_writing(self) -> None:
        if self.upstream is not None and self.upstream.transport is not None:
            self.upstream.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.upstream is not None and self.upstream.transport is not None:
            self.upstream.transport.resume_reading()

    # full-parser callbacks
    def on_message_begin(self) -> None:
        self._url, self._headers, self._body, self._size = b"", [], [], 0
        self._expect = False
        self._in_body = False
        self._head_fed = self._hsize = 0
        self.full = True

    def on_url(self, url: bytes) -> None:
        self._url += url
        if len(self._url) > self.limits.max_url_bytes:
            raise _Refused(414, f"The request URL is longer than the router's limit of "
                                f"{self.limits.max_url_bytes} bytes.")  # fmt: skip

    def on_header(self, name: bytes, value: bytes) -> None:
        self._hsize += len(name) + len(value) + 4
        low = name.lower()
        if low == b"expect":
            self._expect = value.lower() == b"100-continue"
        elif low == b"content-length":
            if value.isdigit() and (len(value) > 18 or int(value) > self.limits.max_body_bytes):
                raise _Refused(413, self._body_message())
        elif low not in HOP_BY_HOP and low != b"transfer-encoding":
            self._headers.append(b"%s: %s\r\n" % (name, value))

    def on_headers_complete(self) -> None:
        if len(self._url) + self._hsize > self.limits.max_header_bytes:
            raise _Refused(431, self._head_message())
        if self.current is not None and len(self.queue) >= 2 * self.limits.max_pipelined:
            # requests read with the one that filled the queue are queued up to twice the
            # bound (reading stops after this read); past that: answer the queue, then close
            raise _Refused(0, "")
        self._in_body = True
        if self._expect:  # the body is buffered here, so say "go on" ourselves
            self.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def _body_message(self) -> str:
        return (f"The request body is larger than the router's limit of "
                f"{self.limits.max_body_bytes} bytes.")  # fmt: skip

    def on_body(self, body: bytes) -> None:
        self._size += len(body)
        if self._size > self.limits.max_body_bytes:
            raise _Refused(413, self._body_message())
        self._body.append(body)

    def on_message_complete(self) -> None:
        self.full = False  # at a message boundary: the next bytes may be framed plainly
        self._in_body = False
        self.requests += 1
        method = self.parser.get_method()
        body = b"".join(self._body)
        version = self.parser.get_http_version().encode()
        head = b"%s %s HTTP/%s\r\n%scontent-length: %d\r\n\r\n" % (
            method, self._url, version, b"".join(self._headers), len(body))  # fmt: skip
        ex = Exchange(self, head, body, self.parser.should_keep_alive(), method == b"HEAD")
        self.queue.append(ex)
        if self.current is None:
            self.next()

    # driving
    def next(self) -> None:
        if self.closed or not self.queue:
            return
        self.current = self.queue.popleft()
        if self.paused and not self.stopped and len(self.queue) < self.limits.max_pipelined \
                and self.transport is not None:  # fmt: skip
            self.paused = False
            self.transport.resume_reading()
        self.dispatch(self.current)

    def phase(self) -> Phase:
        """Where this connection is (for the router's deadline sweep)."""
        if self.current is not None or self.queue:
            return Phase.BUSY
        if self.full:
            return Phase.BODY if self._in_body else Phase.HEAD
        plain = self.plain
        if plain.buf:
            return Phase.BODY if plain.vetted or plain.expect else Phase.HEAD
        return Phase.IDLE

    def overdue(self, phase: Phase) -> None:
        """Past the deadline of ``phase`` (HEAD, BODY or IDLE): 408 unless idle, and close."""
        if phase is Phase.IDLE:
            self.router.idle_closed += 1
            if self.transport is not None:
                self.transport.close()
            return
        self.router.timed_out_requests += 1
        what = "head" if phase is Phase.HEAD else "body"
        timeout = self.limits.timeout(phase)
        self.reject(408, f"The request {what} did not arrive within the router's {timeout:g} s "
                         "limit.")  # fmt: skip

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.closed:
            self.transport.write(data)

    def finish(self, ex: Exchange, keep_alive: bool) -> None:
        self.current = None
        self.upstream = None
        if not keep_alive:
            if self.transport is not None:
                self.transport.close()
            return
        if self.queue:
            self.next()

    def reject(self, status: int, message: str) -> None:
        self.write(error_response(status, message, keep_alive=False))
        self.closed_for_reading()
        if self.transport is not None:
            self.transport.close()


def plain_request(limits: RouterLimits) -> Callable[[bytes, int], bool]:
    """The predicate of a plain request head within ``limits``: HTTP/1.1, no NOT_PLAIN
    header, a request line, a head and an announced body no longer than the caps (else the
    full parser takes the request, and answers 414, 431 or 413 at once).

    With a body cap of ``PLAIN_LIMIT`` or more (the default) the announced length is not
    read here: a plain message never grows past ``PLAIN_LIMIT`` before the full parser takes
    it over, and that one answers 413 as soon as it reads the Content-Length.
    """
    max_line = limits.max_url_bytes + 24  # method, spaces, " HTTP/1.1": ≥ the URL's cap
    max_head = limits.max_header_bytes
    max_body = limits.max_body_bytes

    def is_plain(buf: bytes, end: int) -> bool:
        line_end = buf.find(b"\r\n")
        return (
            line_end <= max_line
            and end <= max_head
            and buf.endswith(b" HTTP/1.1", 0, line_end)
            and not NOT_PLAIN.search(buf[:end].lower())
        )

    if max_body >= PLAIN_LIMIT:
        return is_plain

    def is_plain_small_body(buf: bytes, end: int) -> bool:
        if not is_plain(buf, end):
            return False
        low = buf[:end].lower()
        at = low.find(b"\ncontent-length:")
        if at < 0:
            return True
        stop = low.find(b"\r", at)
        value = low[at + 16 : stop if stop >= 0 else end].strip()
        if not value.isdigit():
            return True  # the checking parser refuses it
        return len(value) <= 18 and int(value) <= max_body

    return is_plain_small_body
