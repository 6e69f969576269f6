"""Typed reads of one mapping of an AnalysisTemplate; every error names the field path."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any, TypeVar

from loopline.deploy.duration import format_duration, parse_duration
from loopline.errors import InvalidDefinitionError

E = TypeVar("E", bound=enum.Enum)


def invalid(path: str, value: object, rule: str) -> InvalidDefinitionError:
    """``AnalysisTemplate field <path> = <value> is invalid: it <rule>.``"""
    return InvalidDefinitionError(
        f"AnalysisTemplate field {path} = {value!r} is invalid: it {rule}."
    )


class Fields:
    """Reads typed fields out of one mapping and rejects unknown keys."""

    def __init__(self, data: object, path: str, known: set[str]) -> None:
        if not isinstance(data, Mapping):
            raise invalid(path or "(document)", data, "must be a mapping")
        unknown = sorted(str(k) for k in data if k not in known)
        if unknown:
            raise InvalidDefinitionError(
                f"AnalysisTemplate field {path or '(document)'} has unknown key(s) {unknown}; "
                f"known keys are {sorted(known)}."
            )
        self.data: Mapping[str, Any] = data
        self.path = path

    def sub(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def int(self, key: str, default: int, minimum: int = 0) -> int:
        value = self.data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise invalid(self.sub(key), value, "must be an integer")
        if value < minimum:
            raise invalid(self.sub(key), value, f"must be at least {minimum}")
        return value

    def bool(self, key: str, default: bool) -> bool:
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            raise invalid(self.sub(key), value, "must be true or false")
        return value

    def duration(self, key: str, default: float | None) -> float | None:
        value = self.data.get(key)
        if value is None:
            return default
        try:
            return parse_duration(value, self.sub(key))
        except InvalidDefinitionError:
            raise invalid(
                self.sub(key), value, "must be a duration such as '30s', '5m', '1h30m' or '250ms'"
            ) from None

    def string(self, key: str, default: str | None = None) -> str | None:
        value = self.data.get(key, default)
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            raise invalid(self.sub(key), value, "must be a non-empty string")
        return value

    def choice(self, key: str, kind: type[E], default: E | None = None) -> E:
        value = self.data.get(key)
        if value is None and default is not None:
            return default
        try:
            return kind(value)
        except ValueError:
            allowed = " | ".join(str(m.value) for m in kind)
            raise invalid(self.sub(key), value, f"must be one of {allowed}") from None


def duration_out(seconds: float) -> str | float:
    """``seconds`` in the short form (``1m30s``) when that reads back exactly, else the number."""
    text = format_duration(seconds)
    return text if parse_duration(text, "") == seconds else seconds
