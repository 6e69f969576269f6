"""Small HTTP helpers of the raw ASGI app: errors, body reading, responses."""

from __future__ import annotations

import zlib
from collections.abc import Awaitable, Callable, Iterable, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from loopline.errors import InvalidInputError
from loopline.serving.protocols import check_request_id

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_JSON = [(b"content-type", b"application/json")]
#: zlib window bits of each Content-Encoding read (HTTP's deflate is the zlib format).
_WBITS = {b"gzip": 31, b"x-gzip": 31, b"deflate": 15}


class BodyTooLarge(Exception):
    pass


class ClientDisconnected(Exception):
    """The client went away before sending its whole body; nothing is answered."""


class SendFailed(Exception):
    """The server could not send a response (the connection is gone or a header is invalid);
    nothing more can be answered on this request."""


class HttpError(Exception):
    def __init__(self, status: int, message: str, headers: Sequence[tuple[bytes, bytes]] = ()):
        super().__init__(message)
        self.status = status
        self.headers = list(headers)


def error_body(protocol: str, status: int, message: str) -> bytes:
    if protocol == "mlflow":
        code = {
            400: "BAD_REQUEST",
            404: "RESOURCE_DOES_NOT_EXIST",
            413: "BAD_REQUEST",
            415: "BAD_REQUEST",
            503: "TEMPORARILY_UNAVAILABLE",
        }.get(status, "INTERNAL_ERROR")
        return orjson.dumps({"error_code": code, "message": message})
    return orjson.dumps({"error": message})


@dataclass(frozen=True, slots=True)
class RequestBody:
    """A request body, decoded from its Content-Encoding, with the headers that say how to
    read it: ``request_id`` (X-Request-ID, checked), ``inference_header`` (the raw
    Inference-Header-Content-Length value) and ``content_type`` (raw)."""

    data: bytes
    request_id: str | None = None
    inference_header: bytes | None = None
    content_type: bytes | None = None


BodyHeaders = tuple[str | None, bytes | None, bytes | None, bytes | None]


def body_headers(headers: Iterable[tuple[bytes, bytes]], limit: int) -> BodyHeaders:
    """The headers that say how to read a body: ``(request_id, inference_header,
    content_type, content_encoding)``, checked in the order the client sent them.

    Raises:
        BodyTooLarge: a Content-Length over ``limit``.
        InvalidInputError: a bad Content-Length or X-Request-ID.
    """
    rid = None
    inference_header = None
    content_type = None
    encoding = None
    for name, value in headers:
        if name == b"content-length":
            try:
                if int(value) > limit:
                    raise BodyTooLarge
            except ValueError:
                raise InvalidInputError("The Content-Length header is not a number.") from None
        elif name == b"x-request-id":
            rid = value.decode("latin-1")
            check_request_id(rid, "The X-Request-ID header")
        elif name == b"content-type":
            content_type = value
        elif name == b"inference-header-content-length":
            inference_header = value
        elif name == b"content-encoding":
            encoding = value
    return rid, inference_header, content_type, encoding


def complete_body(raw: bytes, heads: BodyHeaders, limit: int) -> RequestBody:
    """The :class:`RequestBody` of the complete body ``raw`` read under ``heads``.

    Raises:
        BodyTooLarge: over ``limit``, before or after decoding its Content-Encoding.
        InvalidInputError: not valid data of its Content-Encoding.
        HttpError: 415 for a Content-Encoding other than gzip, deflate or identity.
    """
    if len(raw) > limit:
        raise BodyTooLarge
    rid, inference_header, content_type, encoding = heads
    if encoding is not None:
        raw = decode_content(raw, encoding, limit)
    return RequestBody(raw, rid, inference_header, content_type)


async def read_body(scope: Scope, receive: Receive, limit: int) -> RequestBody:
    """Read the body (at most ``limit`` bytes, before and after decoding a gzip or deflate
    Content-Encoding) and the headers that say how to read it.

    Raises:
        BodyTooLarge: over ``limit``.
        InvalidInputError: a bad Content-Length or X-Request-ID, or a body that is not valid
            data of its Content-Encoding.
        HttpError: 415 for a Content-Encoding other than gzip, deflate or identity.
        ClientDisconnected: the client went away before its whole body came.
    """
    heads = body_headers(scope["headers"], limit)
    chunks = []
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
        more = message.get("more_body", False)
    raw = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    return complete_body(raw, heads, limit)


def decode_content(data: bytes, encoding: bytes, limit: int) -> bytes:
    """``data`` decoded from Content-Encoding ``encoding`` (gzip, deflate = zlib, identity),
    at most ``limit`` bytes once decoded (a small bomb cannot expand past the body limit)."""
    coding = encoding.strip().lower()
    if coding in (b"", b"identity"):
        return data
    if coding not in _WBITS:
        raise HttpError(
            415,
            f"The Content-Encoding {encoding[:40].decode('latin-1')!r} is not supported; "
            "send the body as gzip, deflate or identity.",
            [(b"accept-encoding", b"gzip, deflate")],
        )
    decoder = zlib.decompressobj(_WBITS[coding])
    try:
        out = decoder.decompress(data, limit + 1)
    except zlib.error as exc:
        raise InvalidInputError(
            f"The body is not valid {coding.decode()} data (its Content-Encoding): {exc}."
        ) from None
    if len(out) > limit:
        raise BodyTooLarge
    if not decoder.eof or decoder.unused_data:
        raise InvalidInputError(
            f"The body is not one complete {coding.decode()} stream (its Content-Encoding): "
            f"{'it ends early' if not decoder.eof else 'bytes follow the end of the stream'}."
        )
    return out


async def read_json(scope: Scope, receive: Receive, limit: int) -> tuple[Any, str | None]:
    """Read the body (at most ``limit`` bytes) and parse it; also return X-Request-ID."""
    body = await read_body(scope, receive, limit)
    try:
        return orjson.loads(body.data), body.request_id
    except orjson.JSONDecodeError as exc:
        raise InvalidInputError(f"The request body is not valid JSON: {exc}.") from None


async def respond(
    send: Send, status: int, body: bytes, headers: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    """Send one complete response.

    Raises:
        SendFailed: the server refused the response (e.g. an invalid header) or the
            connection failed; the caller counts it and moves on.
    """
    base = _JSON if not headers or headers[0][0] != b"content-type" else []
    try:
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [*base, (b"content-length", b"%d" % len(body)), *headers],
            }
        )
        await send({"type": "http.response.body", "body": body})
    except (RuntimeError, OSError) as exc:
        raise SendFailed(str(exc)) from exc
