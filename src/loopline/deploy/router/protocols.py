"""The proxy's hot path as asyncio protocols with httptools parsers (no per-request awaits).

A :class:`ClientProtocol` parses requests (bodies buffered, so a request can be retried),
hands each to :meth:`Router.dispatch`, and answers them in order. An
:class:`UpstreamProtocol` is one keep-alive connection to a backend, pooled by the router;
it streams the response back to the client (re-chunking chunked bodies).
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING

import httptools

from loopline.deploy.router.http import HOP_BY_HOP, MAX_BODY, error_response

if TYPE_CHECKING:
    from loopline.deploy.router.balancer import BackendState
    from loopline.deploy.router.proxy import Router


class Exchange:
    """One request on its way through the router."""

    __slots__ = (
        "backend", "body", "client", "done", "fresh_retry", "is_head", "keep_alive",
        "request", "started", "tried",
    )  # fmt: skip

    def __init__(self, client: ClientProtocol, request: bytes, body: bytes, keep_alive: bool,
                 is_head: bool) -> None:  # fmt: skip
        self.client = client
        self.request = request
        self.body = body
        self.keep_alive = keep_alive
        self.is_head = is_head
        self.backend: BackendState | None = None
        self.tried: BackendState | None = None
        self.started = False  # response head already sent to the client: no retry
        self.done = False
        self.fresh_retry = False


class ClientProtocol(asyncio.Protocol):
    """One client connection."""

    def __init__(self, router: Router) -> None:
        self.router = router
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
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
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self.reject(400, "Protocol upgrades are not supported by the router.")
        except httptools.HttpParserError as exc:
            self.reject(400, f"Malformed HTTP request: {exc}.")

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

    # parser callbacks
    def on_message_begin(self) -> None:
        self._url, self._headers, self._body, self._size = b"", [], [], 0
        self._expect = False

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
        self.router.dispatch(self.current)

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
        self.next()

    def reject(self, status: int, message: str) -> None:
        self.write(error_response(status, message, keep_alive=False))
        if self.transport is not None:
            self.transport.close()


class UpstreamProtocol(asyncio.Protocol):
    """One keep-alive connection to a backend."""

    def __init__(self, router: Router, backend: BackendState) -> None:
        self.router = router
        self.backend = backend
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.ex: Exchange | None = None
        self.reused = False
        self.closed = False
        self.timer: asyncio.TimerHandle | None = None
        self._reason = b""
        self._headers: list[bytes] = []
        self._chunked = False
        self._length = False
        self._keep = True
        self._out: list[bytes] = []  # response bytes not yet written to the client
        self._out_size = 0

    def _emit(self, data: bytes, ex: Exchange) -> None:
        """Coalesce writes to the client: one syscall per small response, not per part."""
        self._out.append(data)
        self._out_size += len(data)
        if self._out_size >= 65536:
            self._flush(ex)

    def _flush(self, ex: Exchange) -> None:
        if self._out:
            ex.client.write(b"".join(self._out) if len(self._out) > 1 else self._out[0])
            self._out, self._out_size = [], 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def send(self, ex: Exchange, reused: bool) -> None:
        self.ex, self.reused = ex, reused
        ex.client.upstream = self
        assert self.transport is not None
        self.transport.write(ex.request + ex.body if ex.body else ex.request)
        self.timer = asyncio.get_running_loop().call_later(
            self.router.response_timeout, self._timed_out
        )

    def _timed_out(self) -> None:
        ex = self.ex
        if ex is not None and not ex.started:
            self.ex = None
            self.router.complete(ex, self.backend)
            msg = "The replica did not start answering within the router's response timeout."
            ex.client.write(error_response(504, msg, ex.keep_alive))
            ex.client.finish(ex, ex.keep_alive)
        if self.transport is not None:
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        if self.ex is None:  # bytes on an idle connection: not reusable
            if self.transport is not None:
                self.transport.close()
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self.transport is not None:
                self.transport.close()

    def on_message_begin(self) -> None:
        self._reason, self._headers = b"", []
        self._chunked = self._length = False

    def on_status(self, reason: bytes) -> None:
        self._reason += reason

    def on_header(self, name: bytes, value: bytes) -> None:
        low = name.lower()
        if low in HOP_BY_HOP:
            return
        if low == b"transfer-encoding":
            self._chunked = value.lower().endswith(b"chunked")
            return
        if low == b"content-length":
            self._length = True
        self._headers.append(b"%s: %s\r\n" % (name, value))

    def on_headers_complete(self) -> None:
        ex = self.ex
        if ex is None:
            return
        if self.timer is not None:
            self.timer.cancel()
        ex.started = True
        status = self.parser.get_status_code()
        self._keep = self.parser.should_keep_alive()
        no_body = ex.is_head or status in (204, 304) or status < 200
        delimited = not no_body and not self._length and not self._chunked
        if delimited:
            ex.keep_alive = False  # body ends when the backend closes: close the client too
        conn = b"connection: keep-alive\r\n" if ex.keep_alive else b"connection: close\r\n"
        te = b"transfer-encoding: chunked\r\n" if self._chunked else b""
        self._emit(b"HTTP/1.1 %d %s\r\n%s%s%s\r\n" % (
            status, self._reason, b"".join(self._headers), conn, te), ex)  # fmt: skip
        if ex.is_head:  # httptools would wait for a body a HEAD response never has
            self._keep = False
            self._done(ex)

    def on_body(self, body: bytes) -> None:
        ex = self.ex
        if ex is None:
            return
        if self._chunked:
            self._emit(b"%x\r\n%s\r\n" % (len(body), body), ex)
        else:
            self._emit(body, ex)

    def on_message_complete(self) -> None:
        ex = self.ex
        if ex is None:
            return
        if self._chunked:
            self._emit(b"0\r\n\r\n", ex)
        self._done(ex)

    def _done(self, ex: Exchange) -> None:
        self._flush(ex)
        self.ex = None
        ex.client.upstream = None
        self.router.complete(ex, self.backend)
        if self._keep and not self.backend.draining and not self.closed:
            self.backend.pool.append(self)
        elif self.transport is not None:
            self.transport.close()
        ex.client.finish(ex, ex.keep_alive)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.timer is not None:
            self.timer.cancel()
        ex, self.ex = self.ex, None
        if ex is None or ex.done:
            return
        ex.client.upstream = None
        self._flush(ex)
        if not ex.started:
            self.router.failed(ex, self.backend, self.reused)
        elif not self._length and not self._chunked:
            self.router.complete(ex, self.backend)  # close-delimited body: this is its end
            ex.client.finish(ex, keep_alive=False)
        else:  # the backend died mid-body: nothing sensible to send; drop the client
            self.router.complete(ex, self.backend)
            ex.client.finish(ex, keep_alive=False)
