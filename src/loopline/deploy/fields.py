"""Reading a definition's typed fields, with errors that name the field path and value.

Shared by every ``kind`` loopline parses (``Deployment``, its strategies and autoscaling,
``AnalysisTemplate``): a message reads ``Deployment field spec.replicas = -1 is invalid: it
must be at least 0.``
"""

from __future__ import annotations

import builtins
import enum
import math
from collections.abc import Mapping
from typing import Any, TypeVar

from loopline.deploy.duration import parse_duration
from loopline.errors import InvalidDefinitionError, shown, shown_field
from loopline.types import non_finite

E = TypeVar("E", bound=enum.Enum)

MAX_REPLICAS = 1000
"""The most replicas any count in a spec may ask for (``spec.replicas``, the autoscaler's
``maxReplicas``, a blue-green preview): one local control plane cannot run more, and a typo of
10³⁰ must not reach the controllers."""

MAX_INT = 2**31 - 1
"""The bound of an integer field with no bound of its own (Kubernetes' int32): seconds and
counts beyond it are typos, and arithmetic on them could overflow a float."""

FINITE = "must be a finite number (NaN and Infinity are not numbers a spec may hold)"


def invalid(
    path: str, value: object, rule: str, kind: str = "Deployment"
) -> InvalidDefinitionError:
    """The error for field ``path`` of a ``kind`` holding ``value`` that breaks ``rule`` (both
    quoted short: :func:`~loopline.errors.shown`)."""
    where = shown_field(path) if path else "(document)"
    return InvalidDefinitionError(
        f"{kind} field {where} = {shown(value)} is invalid: it {rule}.",
        field=shown_field(path) if path else None,
    )


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
                f"{kind} field {shown_field(path) or '(document)'} has unknown key(s) "
                f"{shown(unknown, 200)}; known keys are {sorted(known)}.",
                field=shown_field(path) if path else None,
            )
        bad = non_finite(dict(data), path)
        if bad is not None:
            raise invalid(bad[0], bad[1], FINITE, kind)
        self.data: Mapping[str, Any] = data
        self.path = path
        self.kind = kind

    def sub(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def invalid(self, key: str, value: object, rule: str) -> InvalidDefinitionError:
        return invalid(self.sub(key), value, rule, self.kind)

    def int(self, key: str, default: int, minimum: int = 0, maximum: int = MAX_INT) -> int:
        value = self.data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.invalid(key, value, "must be an integer")
        if value < minimum or value > maximum:
            raise self.invalid(key, value, f"must be at least {minimum} and at most {maximum}")
        return value

    def float(self, key: str, default: float, minimum: float, maximum: float | None) -> float:
        value = self.data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.invalid(key, value, "must be a number")
        if not math.isfinite(value):
            raise self.invalid(key, value, FINITE)
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
        """A non-empty string, or ``default`` when absent."""
        value = self.data.get(key, default)
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.invalid(key, value, "must be a non-empty string")
        return value

    def duration(
        self, key: str, default: builtins.float | None
    ) -> builtins.float | None:
        """Seconds of a duration (``30s``, ``5m``, ``1h30m``, ``250ms``, a number)."""
        value = self.data.get(key)
        if value is None:
            return default
        try:
            return parse_duration(value, self.sub(key))
        except InvalidDefinitionError:
            rule = "must be a duration such as '30s', '5m', '1h30m' or '250ms'"
            raise self.invalid(key, value, rule) from None

    def choice(self, key: str, kind: type[E], default: E | None = None) -> E:
        """One value of the enum ``kind`` (by value)."""
        value = self.data.get(key)
        if value is None and default is not None:
            return default
        try:
            return kind(value)
        except ValueError:
            allowed = " | ".join(str(m.value) for m in kind)
            raise self.invalid(key, value, f"must be one of {allowed}") from None

    def sequence(self, key: str) -> list[Any]:
        value = self.data.get(key, [])
        if not isinstance(value, list):
            raise self.invalid(key, value, "must be a list")
        return value


def load_yaml(text: str, kind: str) -> Any:
    """One YAML document of a ``kind``. Raises InvalidDefinitionError when it does not parse."""
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidDefinitionError(f"{kind} YAML does not parse: {exc}") from exc
    except RecursionError:
        raise InvalidDefinitionError(f"{kind} YAML is nested too deeply to read.") from None
