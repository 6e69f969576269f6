"""Reading a Monitor definition's typed fields, with errors that name the field and value.

The same message shape as every other ``kind`` (``Monitor field spec.window.rows = 0 is
invalid: it must be a positive integer.``). ``loopline.deploy`` has its own reader; monitor
sits below deploy in the layers and may not import it, so this is the monitor's small copy.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from loopline.errors import InvalidDefinitionError, shown, shown_field
from loopline.types import non_finite

KIND = "Monitor"
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
FINITE = "must be a finite number (NaN and Infinity are not numbers a spec may hold)"


def invalid(path: str, value: object, rule: str) -> InvalidDefinitionError:
    """The error for field ``path`` holding ``value`` that breaks ``rule``."""
    where = shown_field(path) if path else "(document)"
    return InvalidDefinitionError(
        f"{KIND} field {where} = {shown(value)} is invalid: it {rule}.",
        field=shown_field(path) if path else None,
    )


def parse_duration(value: object, path: str) -> float:
    """Seconds of ``30s``, ``10m``, ``1h30m``, ``1d``, ``250ms`` or a number of seconds (> 0)."""
    rule = "must be a positive duration such as '30s', '10m', '1h30m' or '1d'"
    if isinstance(value, bool):
        raise invalid(path, value, rule)
    if isinstance(value, int | float):
        if not value > 0 or not math.isfinite(value):
            raise invalid(path, value, rule)
        return float(value)
    if not isinstance(value, str) or not value:
        raise invalid(path, value, rule)
    pos, total = 0, 0.0
    for m in _PART.finditer(value):
        if m.start() != pos:
            raise invalid(path, value, rule)
        total += float(m.group(1)) * _UNIT[m.group(2)]
        pos = m.end()
    if pos != len(value) or total <= 0:
        raise invalid(path, value, rule)
    return total


def format_duration(seconds: float) -> str:
    """The short form of ``seconds``: ``600`` → ``10m``, ``5400`` → ``1h30m``."""
    if seconds != int(seconds):
        return f"{seconds:g}s"
    h, rest = divmod(int(seconds), 3600)
    m, s = divmod(rest, 60)
    return (f"{h}h" if h else "") + (f"{m}m" if m else "") + (f"{s}s" if s else "")


class Fields:
    """Reads typed fields out of one mapping and rejects unknown keys."""

    def __init__(self, data: object, path: str, known: set[str]) -> None:
        if not isinstance(data, Mapping):
            raise invalid(path, data, "must be a mapping")
        unknown = sorted(str(k) for k in data if k not in known)
        if unknown:
            raise InvalidDefinitionError(
                f"{KIND} field {shown_field(path) or '(document)'} has unknown key(s) "
                f"{shown(unknown, 200)}; known keys are {sorted(known)}.",
                field=shown_field(path) if path else None,
            )
        bad = non_finite(dict(data), path)
        if bad is not None:
            raise invalid(bad[0], bad[1], FINITE)
        self.data: Mapping[str, Any] = data
        self.path = path

    def sub(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def invalid(self, key: str, value: object, rule: str) -> InvalidDefinitionError:
        return invalid(self.sub(key), value, rule)

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def positive_int(self, key: str, default: int | None = None) -> int:
        value = self.data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise self.invalid(key, value, "must be a positive integer")
        return value

    def number(
        self, key: str, default: float | None, low: float | None = None, high: float | None = None
    ) -> float:
        """A number; ``low < value < high`` when bounds are given (exclusive)."""
        value = self.data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.invalid(key, value, "must be a number")
        if not math.isfinite(value):
            raise self.invalid(key, value, FINITE)
        if (low is not None and value <= low) or (high is not None and value >= high):
            raise self.invalid(
                key,
                value,
                f"must be greater than {low:g} and less than {high:g}"
                if low is not None and high is not None
                else f"must be greater than {low:g}"
                if low is not None
                else f"must be less than {high:g}",
            )
        return float(value)

    def text(self, key: str, default: str | None = None) -> str | None:
        """A non-empty string, or ``default`` when absent."""
        value = self.data.get(key, default)
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.invalid(key, value, "must be a non-empty string")
        return value

    def required_text(self, key: str) -> str:
        value = self.text(key)
        if value is None:
            raise self.invalid(key, None, "is required (a non-empty string)")
        return value

    def duration(self, key: str) -> float:
        return parse_duration(self.data.get(key), self.sub(key))

    def strings(self, key: str) -> tuple[str, ...] | None:
        value = self.data.get(key)
        if value is None:
            return None
        if (
            not isinstance(value, list)
            or not value
            or not all(isinstance(v, str) and v for v in value)
        ):
            raise self.invalid(key, value, "must be a non-empty list of names")
        if len(set(value)) != len(value):
            raise self.invalid(key, value, "must not name a feature twice")
        return tuple(value)

    def sequence(self, key: str) -> list[Any]:
        value = self.data.get(key, [])
        if not isinstance(value, list):
            raise self.invalid(key, value, "must be a list")
        return value
