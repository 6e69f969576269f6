"""Small HTTP helpers of the raw ASGI app: errors, body reading, responses."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

import orjson

from loopline.errors import InvalidInputError
from loopline.serving.protocols import check_request_id

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_JSON = [(b"content-type", b"application/json")]


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
            503: "TEMPORARILY_UNAVAILABLE",
        }.get(status, "INTERNAL_ERROR")
        return orjson.dumps({"error_code": code, "message": message})
    return orjson.dumps({"error": message})


async def read_json(scope: Scope, receive: Receive, limit: int) -> tuple[Any, str | None]:
    """Read the body (at most ``limit`` bytes) and parse it; also return X-Request-ID."""
    rid = None
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                if int(value) > limit:
                    raise BodyTooLarge
            except ValueError:
                raise InvalidInputError("The Content-Length header is not a number.") from None
        elif name == b"x-request-id":
            rid = value.decode("latin-1")
            check_request_id(rid, "The X-Request-ID header")
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
    try:
        return orjson.loads(raw), rid
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
