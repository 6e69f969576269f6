"""The direct inference path: small V2 infer requests answered without the ASGI layer.

A request ``POST /v2/models/{m}[/versions/{v}]/infer`` with a ``Content-Length`` of at most
:data:`DIRECT_BODY_MAX` bytes (no ``Transfer-Encoding``, no ``Expect``), naming a model the
worker serves, is answered by the connection itself: it waits for the body on uvicorn's own
request/response cycle (so pipelining, flow control, deadlines, disconnects and graceful
shutdown are unchanged), calls the same inference core as the ASGI app
(:class:`~loopline.serving.inference.Inference`: same validation, limits, batching, metrics,
prediction log, request id and errors) and writes the response bytes as uvicorn's ASGI
``send`` would: the same status line, default headers (``date``, ``server``), headers in the
same order, ``connection: close`` when the connection ends. Every other request — another
route, an unknown model, a chunked or larger body, ``Expect: 100-continue`` — goes through
ASGI. The ASGI layer's share of such a request (scope and message dicts, the coroutine chain
of the app, header validation on send) was ~35 % of a served LR request's Python time
(``benchmarks/serving/README.md``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, RequestResponseCycle

from loopline.serving.http import (
    ClientDisconnected,
    HttpError,
    RequestBody,
    body_headers,
    complete_body,
)
from loopline.serving.model_table import Entry
from loopline.serving.routes import V2_MODELS, v2_entry

if TYPE_CHECKING:
    from loopline.serving.app import ModelServerApp

log = logging.getLogger(__name__)

#: Larger bodies (and bodies of unknown length) go through the ASGI app.
DIRECT_BODY_MAX = 64 * 1024
_INFER = "/infer"
_JSON_TYPE = b"content-type: application/json\r\n"
_CLOSE = b"connection: close\r\n"


def direct_entry(app: ModelServerApp, cycle: RequestResponseCycle) -> Entry | None:
    """The served entry ``cycle``'s request names when the direct path may answer it, else
    None (the request goes through ASGI)."""
    scope = cycle.scope
    if scope["method"] != "POST" or cycle.waiting_for_100_continue:
        return None
    path: str = scope["path"]
    if not path.startswith(V2_MODELS) or not path.endswith(_INFER):
        return None
    length = None
    for name, value in scope["headers"]:
        if name == b"content-length":
            if length is not None:
                return None
            length = value
        elif name == b"transfer-encoding":
            return None
    if length is None or not length.isdigit() or int(length) > DIRECT_BODY_MAX:
        return None
    try:
        entry, rest = v2_entry(app.table, path)
    except HttpError:
        return None  # the ASGI app answers the 404
    return entry if rest == "infer" else None


async def answer_directly(
    app: ModelServerApp,
    cycle: RequestResponseCycle,
    entry: Entry,
    default_headers: Sequence[tuple[bytes, bytes]],
) -> None:
    """Answer ``cycle``'s V2 infer request on ``entry`` and write the response (see the
    module docstring); a failure of this code is answered 500 as uvicorn answers an ASGI
    app's exception."""
    try:
        await _answer(app, cycle, entry, default_headers)
    except BaseException as exc:
        log.error("Exception in the direct inference path", exc_info=exc)
        if not cycle.response_started:
            cycle.response_started = True
            cycle.keep_alive = False
            cycle.transport.write(
                STATUS_LINE[500] + b"content-type: text/plain; charset=utf-8\r\n"
                b"content-length: 21\r\n" + _CLOSE + b"\r\nInternal Server Error"
            )
        cycle.transport.close()
    finally:
        cycle.on_response = _nothing


async def _answer(
    app: ModelServerApp,
    cycle: RequestResponseCycle,
    entry: Entry,
    default_headers: Sequence[tuple[bytes, bytes]],
) -> None:
    limit = app.options.max_body_bytes

    async def read() -> RequestBody:
        heads = body_headers(cycle.scope["headers"], limit)
        while cycle.more_body and not cycle.disconnected:  # as uvicorn's receive() waits
            cycle.flow.resume_reading()
            await cycle.message_event.wait()
            cycle.message_event.clear()
        if cycle.disconnected:
            raise ClientDisconnected
        body = bytes(cycle.body)
        cycle.body = bytearray()
        return complete_body(body, heads, limit)

    try:
        with entry:  # counted in flight: an unload waits for it
            status, payload, headers = await app.inference.infer(entry, "v2", read)
    except ClientDisconnected:
        return  # nothing to answer, as the ASGI app
    if cycle.flow.write_paused and not cycle.disconnected:
        await cycle.flow.drain()
    if cycle.disconnected:
        return
    cycle.response_started = True
    parts = [STATUS_LINE[status]]
    for name, value in default_headers:
        parts += (name, b": ", value, b"\r\n")
    if not headers or headers[0][0] != b"content-type":
        parts.append(_JSON_TYPE)
    parts.append(b"content-length: %d\r\n" % len(payload))
    for name, value in headers:
        parts += (name, b": ", value, b"\r\n")
    if not cycle.keep_alive:
        parts.append(_CLOSE)
    parts += (b"\r\n", payload)
    cycle.transport.write(b"".join(parts))
    cycle.response_complete = True
    cycle.message_event.set()
    if not cycle.keep_alive:
        cycle.transport.close()
    cycle.on_response()


def _nothing() -> None:
    pass


__all__ = ["DIRECT_BODY_MAX", "answer_directly", "direct_entry"]
