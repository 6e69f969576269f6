"""The router's admin endpoint (loopback only): the control plane drives the router here.

``GET /healthz`` → ``{"ok": true}``; ``GET /backends`` → the route table, backends with
their state, counters; ``PUT /backends`` with the whole route table (the JSON form in
:mod:`loopline.deploy.router.wire`; a malformed one → 400 naming the field);
``POST /drain`` ``{"id": str, "timeout": seconds}`` → ``{"drained": bool, "inFlight": int}``;
``GET /stats?window=S`` → per-revision figures over a sliding window, and
``GET /metrics`` → Prometheus text (:mod:`loopline.deploy.router.report`;
``/metrics?format=json`` is the raw snapshot a multi-worker supervisor adds up).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qs

from loopline.deploy.router.http import HttpError, parse_head, read_head, simple_response
from loopline.deploy.router.proxy import Router
from loopline.deploy.router.report import render_metrics, snapshot, stats, window_seconds
from loopline.deploy.router.wire import table_from_json

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
PROMETHEUS_TEXT = b"text/plain; version=0.0.4; charset=utf-8"


class Text(str):
    """An admin answer sent as Prometheus text rather than JSON."""


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
        writer.write(admin_response(status, payload))
        try:
            await writer.drain()
        finally:
            writer.close()

    return handle


def admin_response(status: int, payload: object) -> bytes:
    """The HTTP response for an admin answer (JSON, or Prometheus text for :class:`Text`)."""
    reason = "OK" if status == 200 else "Error"
    if isinstance(payload, Text):
        return simple_response(status, reason, payload.encode(), False,
                               content_type=PROMETHEUS_TEXT)  # fmt: skip
    return simple_response(status, reason, json.dumps(payload).encode(), False)


def split_target(first_line: bytes) -> tuple[str, str, dict[str, str]] | None:
    """``(method, path, query)`` of a request line, or None when it is malformed."""
    parts = first_line.split(b" ")
    if len(parts) != 3:
        return None
    path, _, query = parts[1].decode("latin-1").partition("?")
    return parts[0].decode("latin-1"), path, {k: v[0] for k, v in parse_qs(query).items()}


async def _route(router: Router, first_line: bytes, body: bytes) -> tuple[int, object]:
    target = split_target(first_line)
    if target is None:
        return 400, {"error": f"Bad request line {first_line[:80]!r}."}
    method, path, query = target
    if (method, path) == ("GET", "/healthz"):
        return 200, {"ok": True}
    if (method, path) == ("GET", "/backends"):
        return 200, router.describe()
    if (method, path) == ("GET", "/metrics"):
        snap = snapshot(router)
        return 200, snap if query.get("format") == "json" else Text(render_metrics(snap))
    if (method, path) == ("GET", "/stats"):
        try:
            window = window_seconds(query.get("window"))
        except ValueError as exc:
            return 400, {"error": str(exc)}
        return 200, stats(router, window)
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        return 400, {"error": "Body is not JSON."}
    if not isinstance(data, dict):
        return 400, {"error": "Body must be a JSON object."}
    if (method, path) == ("PUT", "/backends"):
        try:
            router.set_routes(table_from_json(data))
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
