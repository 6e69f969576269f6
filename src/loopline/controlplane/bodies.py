"""Reading an API request: path names, query parameters and JSON bodies, each refused with a
400 naming what is wrong (NaN and ±Infinity included; they are not JSON)."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request

from loopline.controlplane.responses import BodyTooLargeError
from loopline.controlplane.views import check_spec_name
from loopline.deploy.fields import FINITE
from loopline.errors import InvalidDefinitionError, InvalidInputError, clip, shown, shown_field
from loopline.types import is_ascii_digits, non_finite

MAX_BODY_BYTES = 1024 * 1024


def path_name(request: Request) -> str:
    """The ``{name}`` of the path, a valid object name (else a 400)."""
    return check_spec_name(request.path_params["name"])


def change_cause(request: Request, default: str) -> str:
    """The ``X-Loopline-Cause`` header (at most 200 characters), else ``default``."""
    given = request.headers.get("x-loopline-cause", "").strip()
    return given[:200] if given else default


def int_param(request: Request, key: str) -> int | None:
    """Query parameter ``key``: 1 to 9 ASCII digits (``²`` is refused), or None if absent."""
    raw = request.query_params.get(key)
    if raw is None:
        return None
    if not is_ascii_digits(raw, most=9):
        raise InvalidInputError(
            f"Query parameter {key}={shown(raw)} is invalid: use an integer from 0 to 999999999 "
            "in ASCII digits."
        )
    return int(raw)


async def bounded_body(request: Request) -> bytes:
    """The raw body, read only up to :data:`MAX_BODY_BYTES`: a larger ``Content-Length`` is
    refused before a byte of the body is read, and a body streamed without one stops being
    read at the limit (both a 413). Read once; later calls return the same bytes."""
    cached: bytes | None = getattr(request, "_body", None)
    if cached is not None:
        return cached
    declared = request.headers.get("content-length")
    if declared is not None and is_ascii_digits(declared, most=19):
        if int(declared) > MAX_BODY_BYTES:
            raise BodyTooLargeError(_too_large(declared))
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise BodyTooLargeError(_too_large(f"more than {MAX_BODY_BYTES}"))
        chunks.append(chunk)
    body = b"".join(chunks)
    request._body = body  # Starlette's own cache: request.body() now returns these bytes
    return body


def _too_large(size: str) -> str:
    return (
        f"The request body has {size} bytes; the control plane accepts at most "
        f"{MAX_BODY_BYTES} bytes (1 MiB)."
    )


async def read_body(request: Request, kind: str = "") -> Any:
    """The JSON body; NaN and ±Infinity (which Python's ``json`` reads) are refused, naming
    the field (as ``{kind} field …`` when the body is an object of that kind)."""
    raw = await bounded_body(request)
    if not raw.strip():
        raise InvalidInputError("The request body is empty; send a JSON object.")
    try:
        doc = json.loads(raw)
        bad = non_finite(doc)
    except ValueError as exc:
        raise InvalidInputError(f"The request body is not valid JSON: {exc}.") from None
    except RecursionError:
        raise InvalidInputError(
            "The request body is nested too deeply; no loopline document needs that."
        ) from None
    if bad is not None:
        field = shown_field(bad[0])
        where = f"{kind} field {field}" if kind else f"The request body's field {field}"
        error = InvalidDefinitionError if kind else InvalidInputError
        raise error(f"{where} = {bad[1]!r} is invalid: it {FINITE}.", field=field)
    return doc


async def named_body(request: Request, kind: str, collection: str) -> Any:
    """The body of a PUT to ``/v1/<collection>/<name>``: its ``metadata.name`` must be the
    URL's name."""
    name = path_name(request)
    doc = await read_body(request, kind)
    meta = doc.get("metadata") if isinstance(doc, dict) else None
    given = meta.get("name") if isinstance(meta, dict) else None
    if given != name:
        raise InvalidDefinitionError(
            f"{kind} field metadata.name = {shown(given)} does not match the URL's name "
            f"{shown(name)}; send the object to /v1/{collection}/{clip(str(given))}.",
            field="metadata.name",
        )
    return doc


async def json_object(request: Request, allow_empty: bool = False) -> dict[str, Any]:
    """A JSON object body (``{}`` for an empty body when ``allow_empty``)."""
    if allow_empty and not (await bounded_body(request)).strip():
        return {}
    doc = await read_body(request)
    if not isinstance(doc, dict):
        raise InvalidInputError(f"The request body must be a JSON object, not {shown(doc)}.")
    return doc
