"""The router's admin endpoint (loopback only): the control plane drives the router here.

``GET /healthz`` → ``{"ok": true}``; ``GET /backends`` → backends, weights, stats;
``PUT /backends`` ``{"backends": [{"id", "host", "port", "revision"}], "weights": {rev: int}
| null}``; ``POST /drain`` ``{"id": str, "timeout": seconds}`` → ``{"drained": bool,
"inFlight": int}``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

from loopline.deploy.router.http import HttpError, parse_head, read_head, simple_response
from loopline.deploy.router.proxy import Router

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def admin_handler(router: Router) -> Handler:
    """A ``start_server`` callback serving the admin API of ``router``."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            raw = await read_head(reader)
            if raw is None:
                return
            head = parse_head(raw)
            body = await reader.readexactly(head.content_length or 0)
            status, payload = await _route(router, head.first_line, body)
        except HttpError as exc:
            status, payload = exc.status, {"error": str(exc)}
        except (ConnectionError, asyncio.IncompleteReadError):
            writer.close()
            return
        reason = "OK" if status == 200 else "Error"
        writer.write(simple_response(status, reason, json.dumps(payload).encode(), False))
        try:
            await writer.drain()
        finally:
            writer.close()

    return handle


async def _route(router: Router, first_line: bytes, body: bytes) -> tuple[int, object]:
    parts = first_line.split(b" ")
    if len(parts) != 3:
        return 400, {"error": f"Bad request line {first_line[:80]!r}."}
    method, path = parts[0].decode(), parts[1].decode()
    if (method, path) == ("GET", "/healthz"):
        return 200, {"ok": True}
    if (method, path) == ("GET", "/backends"):
        return 200, router.describe()
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        return 400, {"error": "Body is not JSON."}
    if not isinstance(data, dict):
        return 400, {"error": "Body must be a JSON object."}
    if (method, path) == ("PUT", "/backends"):
        backends = data.get("backends")
        if not isinstance(backends, list):
            return 400, {"error": "Field 'backends' must be a list."}
        try:
            router.set_backends(backends, data.get("weights"))
        except ValueError as exc:
            return 400, {"error": str(exc)}
        return 200, router.describe()
    if (method, path) == ("POST", "/drain"):
        bid, timeout = data.get("id"), data.get("timeout", 30)
        if not isinstance(bid, str) or not isinstance(timeout, int | float):
            return 400, {"error": "Drain needs a string 'id' and a numeric 'timeout'."}
        drained, in_flight = await router.drain(bid, float(timeout))
        return 200, {"drained": drained, "inFlight": in_flight}
    return 404, {"error": f"No admin route {method} {path}."}
