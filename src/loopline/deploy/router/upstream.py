"""One pooled keep-alive connection from the router to a backend (see
:mod:`loopline.deploy.router.protocols` for the plain and full paths).

A backend's answer is bounded like a client's request: its head may hold at most
``RouterLimits.max_response_head_bytes`` (an endless header stream is cut there, never
buffered), and it must start reaching the client within the router's ``response_timeout``
(a head that trickles in times out like a silent backend). Either breach answers the client
502 or 504 and closes the connection to the backend, which stays in rotation: only a refused
connection or the health checks take a backend out.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from time import monotonic
from typing import TYPE_CHECKING

import httptools

from loopline.deploy.router.http import HOP_BY_HOP, NOT_PLAIN, error_response
from loopline.deploy.router.plain import HeadTooLarge, PlainBuffer
from loopline.deploy.router.protocols import Exchange

if TYPE_CHECKING:
    from loopline.deploy.router.balancer import BackendState
    from loopline.deploy.router.limits import RouterLimits
    from loopline.deploy.router.proxy import Router

NOT_HTTP = "sent an answer that is not valid HTTP"


class UpstreamProtocol(asyncio.Protocol):
    """One keep-alive connection to a backend."""

    def __init__(self, router: Router, backend: BackendState) -> None:
        self.router = router
        self.backend = backend
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.head_limit = router.limits.max_response_head_bytes
        self.plain = PlainBuffer(httptools.HttpResponseParser, self._full, self.head_limit)
        self.is_plain = router.plain_response
        self.known = router.response_heads
        self.ex: Exchange | None = None
        self.reused = False
        self.closed = False
        self.deadline = 0.0  # monotonic() by which forwarding must start (router sweeps)
        self.full = False  # this response goes through the full parser
        self._reason = b""
        self._headers: list[bytes] = []
        self._hsize = 0  # bytes of the status line's reason and the headers the parser gave
        self._head_open = False  # the full parser is inside a response head
        self._head_fed = 0  # bytes fed to the full parser since that head began
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
        self.deadline = monotonic() + self.router.response_timeout

    def timed_out(self) -> None:
        """Nothing forwarded by the deadline (called by the router's sweep): 504.

        The deadline holds until the client starts receiving: a backend that sends part of
        a head (or of a buffered plain response) and stalls times out like a silent one.
        """
        ex = self.ex
        if ex is not None and not ex.started:
            self.ex = None
            ex.status = 5
            self.router.complete(ex, self.backend)
            msg = "The replica did not start answering within the router's response timeout."
            ex.client.write(error_response(504, msg, ex.keep_alive))
            ex.client.finish(ex, ex.keep_alive)
        if self.transport is not None:
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        ex = self.ex
        if ex is None:  # bytes on an idle connection: not reusable
            if self.transport is not None:
                self.transport.close()
            return
        try:
            if ex.plain and not self.full:
                self._plain(ex, data)
            else:
                self._feed_full(data)
        except HeadTooLarge:
            self._malformed(self._head_message())
        except httptools.HttpParserError as exc:
            too_large = isinstance(exc.__context__, HeadTooLarge)
            self._malformed(self._head_message() if too_large else NOT_HTTP)

    def _feed_full(self, data: bytes) -> None:
        """Feed the full parser; a head still open beyond the cap (plus one read) is refused
        (the parser's own callbacks refuse a complete one over the cap)."""
        self.parser.feed_data(data)
        if self._head_open:
            self._head_fed += len(data)
            if self._head_fed > self.head_limit:
                raise HeadTooLarge(f"no response head within {self.head_limit} bytes")

    def _head_message(self) -> str:
        return (f"sent a response head larger than the router's limit of {self.head_limit} "
                "bytes")  # fmt: skip

    def _malformed(self, why: str = NOT_HTTP) -> None:
        """The backend's answer is not valid HTTP (e.g. a header value with a bare newline)
        or its head is over the cap: 502 if the client has had none of it, else end the
        client's connection. Neither is a sign of an unhealthy replica (see
        :meth:`Router.failed`)."""
        ex, self.ex = self.ex, None
        self.closed = True
        if self.transport is not None:
            self.transport.close()
        if ex is None or ex.done:
            return
        ex.client.upstream = None
        if not ex.started:
            self._out, self._out_size = [], 0
            self.router.malformed_answer(ex, self.backend, why)
        else:
            self._flush(ex)
            self.router.complete(ex, self.backend)
            ex.client.finish(ex, keep_alive=False)

    def _plain(self, ex: Exchange, data: bytes) -> None:
        """Buffer a plain response until the checking parser says it is complete, then
        forward it verbatim. Not plain (or over PLAIN_LIMIT): the full parser, from byte 0.

        Plain responses: HTTP/1.1, final (≥ 200), with a Content-Length, none of the
        NOT_PLAIN headers, answering anything but HEAD (whose Content-Length has no body).
        Chunked ones stream through the full parser.
        """
        if ex.is_head:  # its Content-Length announces a body that never comes: full parser
            buf = self.plain.feed(data, _never, None)
        else:
            buf = self.plain.feed(data, self.is_plain, self.known)
        if buf is None:
            return
        router = self.router
        ex.started = True
        ex.status = buf[9] - 48  # the status class: b"HTTP/1.1 2.." → 2
        client = ex.client
        client.write(buf)
        # self._done(ex), inlined for a plain answer (nothing buffered, keep-alive)
        self.ex = None
        client.upstream = None
        backend = self.backend
        router.complete(ex, backend)
        if not backend.draining and not self.closed:
            backend.pool.append(self)
        elif self.transport is not None:
            self.transport.close()
        client.finish(ex, ex.keep_alive)
        if ex.shadow is not None:  # mirrored: compare once the client has its answer
            ex.shadow.served_message(buf)

    def _full(self, buf: bytes) -> None:
        """Hand ``buf`` (from the response's first byte) and the rest to the full parser."""
        self.full = True
        self._feed_full(buf)

    def on_message_begin(self) -> None:
        self._reason, self._headers = b"", []
        self._chunked = self._length = False
        self._hsize = self._head_fed = 0
        self._head_open = True

    def on_status(self, reason: bytes) -> None:
        self._reason += reason
        self._hsize += len(reason)
        if self._hsize > self.head_limit:
            raise HeadTooLarge("response status line over the cap")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._hsize += len(name) + len(value) + 4
        if self._hsize > self.head_limit:
            raise HeadTooLarge("response head over the cap")
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
        self._head_open = False
        ex = self.ex
        if ex is None:
            return
        ex.started = True
        status = self.parser.get_status_code()
        ex.status = status // 100
        if ex.shadow is not None:
            ex.shadow.served_head(status)
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
        if ex.shadow is not None:
            ex.shadow.served_body(body)

    def on_message_complete(self) -> None:
        ex = self.ex
        if ex is None:
            return
        if self._chunked:
            self._emit(b"0\r\n\r\n", ex)
        self._done(ex)
        if ex.shadow is not None:
            ex.shadow.served_end()

    def _done(self, ex: Exchange) -> None:
        self._flush(ex)
        self.ex = None
        self.full = False
        ex.client.upstream = None
        self.router.complete(ex, self.backend)
        if self._keep and not self.backend.draining and not self.closed:
            self.backend.pool.append(self)
        elif self.transport is not None:
            self.transport.close()
        ex.client.finish(ex, ex.keep_alive)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
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


def plain_response(limits: RouterLimits) -> Callable[[bytes, int], bool]:
    """The predicate of a plain response head within ``limits``: final, HTTP/1.1, with a
    Content-Length and no NOT_PLAIN header, no larger than the response head cap (else the
    full parser takes it, and refuses it)."""
    max_head = limits.max_response_head_bytes

    def is_plain(buf: bytes, end: int) -> bool:
        low = buf[:end].lower()
        return (
            end <= max_head
            and buf.startswith(b"HTTP/1.1 ")
            and buf[9] >= 50  # not 1xx
            and low.find(b"\ncontent-length:") >= 0  # (`in` would try an int first, and raise)
            and not NOT_PLAIN.search(low)
        )

    return is_plain


def _never(buf: bytes, end: int) -> bool:
    return False
