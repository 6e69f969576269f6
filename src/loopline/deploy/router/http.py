"""Small HTTP/1.1 helpers: head parsing for the admin API, canned responses."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

HOP_BY_HOP = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer", b"upgrade"}
)


# A header that stops a message from being forwarded byte for byte (hop-by-hop, framing,
# 100-continue), searched for in the lowercased head; see loopline.deploy.router.protocols.
NOT_PLAIN = re.compile(
    rb"\n(?:connection|keep-alive|proxy-connection|te|trailer|upgrade|expect|transfer-encoding):"
)


class HttpError(Exception):
    """A malformed message; ``status`` is what the router answers the client."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(slots=True)
class Head:
    """A parsed request or response head. ``headers`` keeps the raw lines minus hop-by-hop."""

    first_line: bytes
    headers: list[tuple[bytes, bytes]]
    content_length: int | None
    chunked: bool
    keep_alive: bool


def parse_head(raw: bytes) -> Head:
    """Parse a head ending in CRLFCRLF. Raises HttpError(400) when malformed."""
    lines = raw[:-4].split(b"\r\n")
    first = lines[0]
    version_11 = first.endswith(b"HTTP/1.1") or first.startswith(b"HTTP/1.1")
    keep_alive = version_11
    length: int | None = None
    chunked = False
    headers: list[tuple[bytes, bytes]] = []
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep:
            raise HttpError(400, f"Malformed header line {line[:80]!r}.")
        key = name.strip().lower()
        value = value.strip()
        if key == b"content-length":
            try:
                length = int(value)
            except ValueError:
                raise HttpError(400, f"Content-Length {value[:40]!r} is not a number.") from None
            if length < 0:
                raise HttpError(400, f"Content-Length {length} is negative.")
        elif key == b"transfer-encoding":
            chunked = value.lower().endswith(b"chunked")
            continue
        elif key == b"connection":
            tokens = value.lower()
            if b"close" in tokens:
                keep_alive = False
            elif b"keep-alive" in tokens:
                keep_alive = True
            continue
        if key in HOP_BY_HOP:
            continue
        headers.append((name.strip(), value))
    return Head(first, headers, length, chunked, keep_alive)


def simple_response(
    status: int, reason: str, body: bytes, keep_alive: bool, *, extra: bytes = b"",
    content_type: bytes = b"application/json",
) -> bytes:  # fmt: skip
    """A complete response (JSON unless ``content_type`` says otherwise); ``extra`` holds
    more header lines, each ending in CRLF."""
    conn = b"keep-alive" if keep_alive else b"close"
    return (
        b"HTTP/1.1 %d %s\r\ncontent-type: %s\r\ncontent-length: %d\r\n"
        b"connection: %s\r\n%s\r\n" % (status, reason.encode(), content_type, len(body), conn,
                                         extra)
    ) + body


REASONS = {
    400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 408: "Request Timeout",
    413: "Payload Too Large", 414: "URI Too Long", 421: "Misdirected Request",
    431: "Request Header Fields Too Large", 502: "Bad Gateway", 503: "Service Unavailable",
    504: "Gateway Timeout",
}  # fmt: skip


def error_response(
    status: int, message: str, keep_alive: bool, retry_after: int | None = None
) -> bytes:
    """A JSON error response ``{"error": message}`` (with ``Retry-After`` if given)."""
    body = json.dumps({"error": message}).encode()
    extra = b"retry-after: %d\r\n" % retry_after if retry_after is not None else b""
    return simple_response(status, REASONS.get(status, "Error"), body, keep_alive, extra=extra)
