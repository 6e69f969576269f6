"""Durations as Argo Rollouts and Kubernetes write them: ``30s``, ``5m``, ``1h30m``, ``250ms``,
or a bare number of seconds."""

from __future__ import annotations

import re

from loopline.errors import InvalidDefinitionError, shown, shown_field

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(value: object, field: str) -> float:
    """Seconds for ``value``; raises InvalidDefinitionError naming ``field`` when malformed.

    >>> parse_duration("1m30s", "spec.x")
    90.0
    """
    if isinstance(value, bool):
        raise _bad(field, value)
    if isinstance(value, int | float):
        if value < 0:
            raise _bad(field, value)
        return float(value)
    if not isinstance(value, str) or not value:
        raise _bad(field, value)
    pos, total = 0, 0.0
    for m in _PART.finditer(value):
        if m.start() != pos:
            raise _bad(field, value)
        total += float(m.group(1)) * _UNIT[m.group(2)]
        pos = m.end()
    if pos != len(value):
        raise _bad(field, value)
    return total


def format_duration(seconds: float) -> str:
    """The short form of ``seconds``: ``90`` → ``1m30s``, ``0.25`` → ``250ms``."""
    if seconds < 1 and seconds != 0:
        return f"{round(seconds * 1000)}ms"
    whole = round(seconds)
    h, rest = divmod(whole, 3600)
    m, s = divmod(rest, 60)
    out = (f"{h}h" if h else "") + (f"{m}m" if m else "") + (f"{s}s" if s or not (h or m) else "")
    return out


def _bad(field: str, value: object) -> InvalidDefinitionError:
    return InvalidDefinitionError(
        f"Field {shown_field(field)} = {shown(value)} is invalid: it must be a duration such as "
        "'30s', '5m', '1h30m', '250ms' or a number of seconds.",
        field=shown_field(field),
    )
