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
from typing import TYPE_CHECKING

import httptools

from loopline.deploy.router.http import HOP_BY_HOP, MAX_BODY, NOT_PLAIN, error_response
from loopline.deploy.router.plain import PlainBuffer

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


class ClientProtocol(asyncio.Protocol):
    """One client connection."""

    def __init__(self, router: Router, preview: bool = False) -> None:
        self.router = router
        # where requests go: by the route table, or (preview port) to the preview revision
        self.dispatch = router.dispatch_preview if preview else router.dispatch
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.plain = PlainBuffer(httptools.HttpRequestParser, self._full)
        self.known = router.request_heads
        self.full = False  # the full parser is in the middle of a message
        self.queue: deque[Exchange] = deque()
        self.current: Exchange | None = None
        self.closed = False
        self.upstream: UpstreamProtocol | None = None
        self._url = b""
        self._headers: list[bytes] = []
        self._body: list[bytes] = []
        self._size = 0
        self._expect = False

    # transport callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.router.clients.add(self)

    def data_received(self, data: bytes) -> None:
        """Frame requests: a plain one is buffered until complete, then sent whole.

        The head is vetted once complete; a request that is not plain, outgrows
        PLAIN_LIMIT or is followed by the start of another (pipelining) is handed, from its
        first byte, to the full parser.
        """
        try:
            if self.full:
                self.parser.feed_data(data)
                return
            buf = self.plain.feed(data, _plain_request, self.known)
            if buf is None:
                return
            # One whole request (a CRLF after it, which llhttp skips, goes along: servers
            # ignore empty lines before a request line).
            ex = Exchange(self, buf, b"", True, buf.startswith(b"HEAD "), True)
            if self.current is None and not self.queue:  # usual: nothing waits before it
                self.current = ex
                self.dispatch(ex)
                return
            self.queue.append(ex)
            if self.current is None:
                self.next()
        except httptools.HttpParserUpgrade:
            self.reject(400, "Protocol upgrades are not supported by the router.")
        except httptools.HttpParserError as exc:
            self.reject(400, f"Malformed HTTP request: {exc}.")

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
        self.full = True

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        low = name.lower()
        if low == b"expect":
            self._expect = value.lower() == b"100-continue"
        elif low not in HOP_BY_HOP and low not in (b"content-length", b"transfer-encoding"):
            self._headers.append(b"%s: %s\r\n" % (name, value))

    def on_headers_complete(self) -> None:
        if self._expect:  # the body is buffered here, so say "go on" ourselves
            self.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        self._size += len(body)
        if self._size > MAX_BODY:
            raise httptools.HttpParserError(f"request body exceeds {MAX_BODY} bytes")
        self._body.append(body)

    def on_message_complete(self) -> None:
        self.full = False  # at a message boundary: the next bytes may be framed plainly
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
        self.dispatch(self.current)

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
        if self.transport is not None:
            self.transport.close()


def _plain_request(buf: bytes, end: int) -> bool:
    """An HTTP/1.1 request head without any NOT_PLAIN header."""
    return buf.endswith(b" HTTP/1.1", 0, buf.find(b"\r\n")) and not NOT_PLAIN.search(
        buf[:end].lower()
    )
