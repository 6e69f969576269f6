"""One HTTP/1.1 connection of the model server: uvicorn's httptools protocol, with limits.

uvicorn's ``HttpToolsProtocol`` parses with llhttp and runs the ASGI app; on its own it has
no bound on a request head (httptools joins header pieces in memory: 30 MiB of headers were
accepted), no deadline before a head is complete (a partial head stayed open for good), no
bound on the requests queued from one read, and no connection cap. This subclass adds
:class:`~loopline.serving.limits.HttpLimits`:

- the head: a URL longer than ``max_url_bytes`` gets 414, a head larger than
  ``max_header_bytes`` gets 431, both as soon as the bytes received prove it (a head is never
  buffered beyond the cap plus one socket read);
- deadlines: each connection carries its :class:`~loopline.serving.limits.Phase` and when it
  began; :func:`sweep` (called by the server a few times a second) closes overdue ones,
  answering 408 when a response is still possible;
- ``max_connections`` per worker: the connection beyond it gets 503 and is closed;
- ``max_pipelined``: reading stops while that many pipelined requests are queued. Requests
  already read with the one that filled the queue (a client's writes pile up in the kernel
  while reading is paused, then arrive in one read) are queued up to twice the bound; a
  request past that closes the connection after the queued ones are answered (RFC 9112
  §9.3.2: clients retry unanswered pipelined requests). llhttp cannot stop inside a read, so
  the bound is on the queue, not on the bytes of one read.

A connection the server gives up on while earlier responses are pending stops reading and
closes after the last pending response. Bad client input is answered, never logged per request.

Small V2 infer requests skip the ASGI layer (:mod:`.direct`): the request's cycle is run by
the inference core instead of the ASGI app, with the same answers byte for byte.
"""

from __future__ import annotations

import asyncio
import contextvars
import http
import logging
from collections.abc import Iterable
from typing import Any, ClassVar

import httptools
import orjson
from uvicorn.protocols.http.flow_control import FlowControl
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from loopline.serving.app import ModelServerApp
from loopline.serving.direct import answer_directly, direct_entry
from loopline.serving.limits import HttpLimits, Phase, overdue

log = logging.getLogger(__name__)

_CRLFCRLF = b"\r\n\r\n"


class _Refused(Exception):
    """Raised inside a parser callback to stop parsing; the reason is on the protocol."""


def error_response(status: int, message: str, extra: bytes = b"") -> bytes:
    """A complete ``connection: close`` response with a JSON ``{"error": message}`` body."""
    body = orjson.dumps({"error": message})
    phrase = http.HTTPStatus(status).phrase.encode()
    return b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n%s" % (
        status,
        phrase,
        len(body),
        extra,
    ) + b"connection: close\r\n\r\n" + body


class _Flow(FlowControl):
    """uvicorn's read/write flow control, except that reading stays paused while the
    connection's pipeline queue is full or the connection is given up (uvicorn resumes
    reading whenever a response completes or the application asks for body)."""

    def __init__(self, transport: asyncio.Transport, protocol: LimitedHttpToolsProtocol) -> None:
        super().__init__(transport)
        self._protocol = protocol

    def resume_reading(self) -> None:
        if not self.read_paused:
            return
        p = self._protocol
        if p._closing or len(p.pipeline) >= p.limits.max_pipelined:
            return
        self.read_paused = False
        self._transport.resume_reading()


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with :class:`HttpLimits` (see the module docstring).

    Build a class bound to limits with :func:`protocol_class`; the server must call
    :func:`sweep` periodically for the deadlines.
    """

    limits: ClassVar[HttpLimits] = HttpLimits()
    #: Answer small V2 infer requests without ASGI (:mod:`.direct`) when the app allows it.
    direct: ClassVar[bool] = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        app = self.app
        self._server_app = app if self.direct and isinstance(app, ModelServerApp) else None
        self.phase = Phase.IDLE
        self.since = self.loop.time()
        self._closing = False  # reading stopped; close after the pending responses
        self._refusal: tuple[int | None, str] | None = None
        self._head_bytes = 0  # bytes of the open head received in earlier reads
        self._feed_len = 0
        self._body_in_feed = 0  # body bytes of the last message parsed in this read
        self._began_in_feed = False

    # ---------------------------------------------------------------- connection
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if len(self.connections) >= self.limits.max_connections:
            self.transport = transport
            self._closing = True
            transport.write(
                error_response(
                    503,
                    f"The server has {self.limits.max_connections} open connections, its "
                    "limit; retry shortly or on another replica.",
                    b"retry-after: 1\r\n",
                )
            )
            transport.close()
            return
        super().connection_made(transport)
        self.flow = _Flow(transport, self)
        self.since = self.loop.time()

    def data_received(self, data: bytes) -> None:
        if self._closing:
            return  # we stopped reading: what still arrives is dropped
        self._feed_len = len(data)
        self._body_in_feed = 0
        self._began_in_feed = False
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # No protocol upgrades here: the request was answered as plain HTTP; llhttp no
            # longer frames what follows, so the connection ends after the pending answers.
            self._give_up(None, "")
            return
        except httptools.HttpParserError:
            status, message = self._refusal or (400, "The request is not valid HTTP/1.1.")
            self._give_up(status, message)
            return
        if self.phase is Phase.HEAD:
            if self._began_in_feed:  # the head starts after the last message of this read
                end = data.rfind(_CRLFCRLF)
                start = end + len(_CRLFCRLF) if end >= 0 else 0
                self._head_bytes = max(len(data) - start - self._body_in_feed, 0)
            else:  # the whole read belongs to a head begun earlier
                self._head_bytes += len(data)
            if self._head_bytes > self.limits.max_header_bytes:
                self._give_up(431, self._head_message())

    def on_response_complete(self) -> None:
        # uvicorn's, without a keep-alive timer per response (the sweep keeps the deadlines)
        # and without reading again once the connection is given up.
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self.flow.resume_reading()  # not while closing or the queue is full: see _Flow
        if self.pipeline:
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
        elif self._closing:
            self.transport.close()
        elif self.phase is Phase.BUSY:
            self.phase = Phase.IDLE
            self.since = self.loop.time()

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        server_app = self._server_app
        if server_app is not None and app is server_app:
            entry = direct_entry(server_app, cycle)
            if entry is not None:
                coro = answer_directly(
                    server_app, cycle, entry, self.server_state.default_headers
                )
                if self.config.reset_contextvars:  # as uvicorn starts an ASGI task
                    task = self.loop.create_task(coro, context=contextvars.Context())
                else:
                    task = self.loop.create_task(coro)
                task.add_done_callback(self.tasks.discard)
                self.tasks.add(task)
                return
        super()._start_asgi_task(cycle, app)

    # ------------------------------------------------------------ parser callbacks
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.phase = Phase.HEAD
        self.since = self.loop.time()
        self._head_bytes = 0
        self._began_in_feed = True

    def on_url(self, url: bytes) -> None:
        self.url += url
        if len(self.url) > self.limits.max_url_bytes:
            self._refusal = (
                414,
                f"The request URL is longer than the server's limit of "
                f"{self.limits.max_url_bytes} bytes.",
            )
            raise _Refused

    def on_headers_complete(self) -> None:
        limit = self.limits.max_header_bytes
        if self._head_bytes + self._feed_len > limit and self._head_size() > limit:
            self._refusal = (431, self._head_message())
            raise _Refused
        cycle = self.cycle
        if (
            cycle is not None
            and not cycle.response_complete
            and len(self.pipeline) >= 2 * self.limits.max_pipelined
        ):
            self._refusal = (None, "")  # answer what is queued, then close
            raise _Refused
        super().on_headers_complete()
        self.phase = Phase.BODY
        self.since = self.loop.time()
        self._body_in_feed = 0

    def on_body(self, body: bytes) -> None:
        self._body_in_feed += len(body)
        super().on_body(body)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        cycle = self.cycle
        pending = self.pipeline or (cycle is not None and not cycle.response_complete)
        self.phase = Phase.BUSY if pending else Phase.IDLE
        self.since = self.loop.time()

    # -------------------------------------------------------------------- limits
    def check_deadline(self, now: float) -> None:
        """Close this connection if its phase is overdue at ``now`` (see :mod:`.limits`)."""
        if self._closing or self.transport is None or self.transport.is_closing():
            return
        if self.flow.read_paused and self.phase in (Phase.HEAD, Phase.BODY):
            self.since = now  # the server is not reading: the client's clock waits
            return
        if not overdue(self.limits, self.phase, self.since, now):
            return
        if self.phase is Phase.IDLE:
            self._closing = True
            self.transport.close()
        elif self.phase is Phase.HEAD:
            timeout = self.limits.head_timeout
            self._give_up(408, f"The request head was not complete within {timeout:g} s.")
        else:
            timeout = self.limits.body_timeout
            self._give_up(408, f"The request body was not complete within {timeout:g} s.")

    def _pending(self) -> RequestResponseCycle | None:
        """The last request whose response is not complete (queued or in flight), if any."""
        if self.pipeline:
            return self.pipeline[0][0]
        cycle = self.cycle
        return cycle if cycle is not None and not cycle.response_complete else None

    def _give_up(self, status: int | None, message: str) -> None:
        """Stop reading; answer ``status`` (None: no answer) when no response is pending,
        else close after the pending ones. A request whose body is incomplete is dropped."""
        self._closing = True
        self.flow.pause_reading()
        if self.phase is Phase.BODY and self.cycle is not None:
            cycle = self.cycle
            if self.pipeline and self.pipeline[0][0] is cycle:
                self.pipeline.popleft()  # queued, its body will never come: never run it
            elif not cycle.response_started:
                cycle.disconnected = True  # the application waiting for the body stops
                cycle.message_event.set()
                if status is not None:
                    self.transport.write(error_response(status, message))
                self.transport.close()
                return
            else:
                status = None  # the application answered it already; no second answer
        pending = self._pending()
        if pending is not None:
            pending.keep_alive = False
            return
        if status is not None:
            self.transport.write(error_response(status, message))
        self.transport.close()

    def _head_size(self) -> int:
        """The size of the completed head (request line and headers, with separators)."""
        size = len(self.url) + 16
        for name, value in self.headers:
            size += len(name) + len(value) + 4
        return size

    def _head_message(self) -> str:
        return (
            f"The request head is larger than the server's limit of "
            f"{self.limits.max_header_bytes} bytes (request line and headers)."
        )


def protocol_class(limits: HttpLimits, *, direct: bool = True) -> type[LimitedHttpToolsProtocol]:
    """A :class:`LimitedHttpToolsProtocol` class bound to ``limits`` (uvicorn's ``http=``);
    ``direct=False`` sends every request through ASGI (benchmarks compare the two)."""
    attrs = {"limits": limits, "direct": direct}
    return type("LimitedHttpToolsProtocol", (LimitedHttpToolsProtocol,), attrs)


def sweep(connections: Iterable[object], now: float) -> None:
    """Apply the deadlines to every limited connection of a server at ``now``."""
    for connection in list(connections):
        if isinstance(connection, LimitedHttpToolsProtocol):
            connection.check_deadline(now)


__all__ = ["LimitedHttpToolsProtocol", "error_response", "protocol_class", "sweep"]
