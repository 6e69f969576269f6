"""Reading a definition's typed fields, with errors that name the field path and value.

Shared by every ``kind`` loopline parses (``Deployment``, its strategies and autoscaling,
``AnalysisTemplate``): a message reads ``Deployment field spec.replicas = -1 is invalid: it
must be at least 0.``
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from loopline.errors import InvalidDefinitionError


def invalid(
    path: str, value: object, rule: str, kind: str = "Deployment"
) -> InvalidDefinitionError:
    """The error for field ``path`` of a ``kind`` holding ``value`` that breaks ``rule``."""
    return InvalidDefinitionError(f"{kind} field {path} = {value!r} is invalid: it {rule}.")


class Fields:
    """Reads typed fields out of one mapping and rejects unknown keys."""

    def __init__(
        self, data: object, path: str, known: set[str], kind: str = "Deployment"
    ) -> None:
        if not isinstance(data, Mapping):
            raise invalid(path, data, "must be a mapping", kind)
        unknown = sorted(str(k) for k in data if k not in known)
        if unknown:
            raise InvalidDefinitionError(
                f"{kind} field {path} has unknown key(s) {unknown}; known keys are "
                f"{sorted(known)}."
            )
        self.data: Mapping[str, Any] = data
        self.path = path
        self.kind = kind

    def sub(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def invalid(self, key: str, value: object, rule: str) -> InvalidDefinitionError:
        return invalid(self.sub(key), value, rule, self.kind)

    def int(self, key: str, default: int, minimum: int = 0, maximum: int | None = None) -> int:
        value = self.data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.invalid(key, value, "must be an integer")
        if value < minimum or (maximum is not None and value > maximum):
            upper = f" and at most {maximum}" if maximum is not None else ""
            raise self.invalid(key, value, f"must be at least {minimum}{upper}")
        return value

    def float(self, key: str, default: float, minimum: float, maximum: float | None) -> float:
        value = self.data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.invalid(key, value, "must be a number")
        if value < minimum or (maximum is not None and value > maximum):
            upper = f" and at most {maximum}" if maximum is not None else ""
            raise self.invalid(key, value, f"must be at least {minimum}{upper}")
        return float(value)

    def bool(self, key: str, default: bool) -> bool:
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            raise self.invalid(key, value, "must be true or false")
        return value

    def text(self, key: str, default: str | None = None) -> str | None:
        value = self.data.get(key, default)
        if value is not None and not isinstance(value, str):
            raise self.invalid(key, value, "must be a string")
        return value

    def sequence(self, key: str) -> list[Any]:
        value = self.data.get(key, [])
        if not isinstance(value, list):
            raise self.invalid(key, value, "must be a list")
        return value
