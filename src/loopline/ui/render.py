"""The console's Jinja2 environment: templates from the package, autoescaped, and the
filters they share. A template's blocks double as fragments (:func:`render_block`), so a live
update and a full page come from the same markup."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import jinja2


def rfc3339(value: object) -> str:
    """Epoch seconds (or an ISO/RFC 3339 string, or a datetime) as RFC 3339 in UTC, to the
    second (``2026-12-07T03:59:12Z``); ``—`` for None."""
    if value is None or value == "":
        return "—"
    if isinstance(value, datetime):
        when = value if value.tzinfo else value.replace(tzinfo=UTC)
    elif isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        when = datetime.fromtimestamp(float(value), UTC)
    elif isinstance(value, str):
        try:
            when = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
    else:
        return str(value)
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def status_class(value: object) -> str:
    """A CSS class for a phase or state (``ok``, ``busy``, ``warn``, ``bad``)."""
    text = str(value).lower()
    if text in ("healthy", "complete", "succeeded", "cached", "running", "true", "successful"):
        return "ok"
    if text in ("progressing", "pending", "started", "new", "inconclusive", "unknown"):
        return "busy"
    if text in ("paused", "blocked", "canceled", "skipped"):
        return "warn"
    return "bad" if text in ("degraded", "failed", "error", "crashed", "false") else "busy"


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("loopline.ui", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["rfc3339"] = rfc3339
    env.filters["status_class"] = status_class
    return env


def render_page(name: str, context: dict[str, Any]) -> str:
    """A whole page."""
    return environment().get_template(name).render(context)


def render_block(name: str, block: str, context: dict[str, Any]) -> str:
    """One block of a template, alone (an htmx or SSE fragment)."""
    template = environment().get_template(name)
    return "".join(template.blocks[block](template.new_context(context)))
