"""Input checks and small helpers shared by the SQL query modules."""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from loopline.errors import InvalidInputError

T = TypeVar("T")

# Well under SQLite's 32766 and PostgreSQL's 65535 bound parameters per statement.
CHUNK = 5000


def utcnow() -> datetime:
    return datetime.now(UTC)


def chunks(values: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def check_text(kind: str, value: object, *, max_len: int = 255) -> str:
    """Return ``value`` if it is a non-empty string of at most ``max_len`` characters."""
    if not isinstance(value, str) or not value or len(value) > max_len:
        raise InvalidInputError(
            f"{kind} {value!r} is not valid: it must be a non-empty string of at most "
            f"{max_len} characters."
        )
    return value


def check_optional_text(kind: str, value: object, *, max_len: int = 255) -> str | None:
    return None if value is None else check_text(kind, value, max_len=max_len)


def check_id(kind: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInputError(f"{kind} id {value!r} is not valid: ids are integers ≥ 1.")
    return value


def check_ids(kind: str, values: Sequence[object]) -> list[int]:
    if isinstance(values, str | bytes):
        raise InvalidInputError(f"{kind} ids must be a sequence of integers, not {values!r}.")
    return [check_id(kind, value) for value in values]


def check_time(kind: str, value: object) -> datetime | None:
    """Accept None or a timezone-aware datetime; naive datetimes are ambiguous and refused."""
    if value is None:
        return None
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise InvalidInputError(
            f"{kind} {value!r} must be a timezone-aware datetime, e.g. datetime.now(UTC)."
        )
    return value.astimezone(UTC)


def check_properties(properties: Mapping[str, Any] | None) -> dict[str, Any]:
    """Return a JSON-safe copy of ``properties``; raise InvalidInputError naming a bad key."""
    if properties is None:
        return {}
    if not isinstance(properties, Mapping):
        raise InvalidInputError(
            f"Properties must be a mapping of string keys to JSON values, not {properties!r}."
        )
    result: dict[str, Any] = {}
    for key, value in properties.items():
        if not isinstance(key, str):
            raise InvalidInputError(f"Property key {key!r} is not a string; keys must be strings.")
        try:
            text = json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(
                f"Property {key!r} has value {value!r}, which is not JSON (finite numbers, "
                f"strings, booleans, null, lists and objects with string keys): {exc}."
            ) from exc
        result[key] = json.loads(text)
    return result


def merge(current: Mapping[str, Any], update: Mapping[str, Any] | None) -> dict[str, Any]:
    """Shallow merge: keys in ``update`` replace those in ``current``."""
    merged = dict(current)
    merged.update(check_properties(update))
    return merged


def check_metric(key: object, value: object) -> tuple[str, float]:
    name = check_text("Metric key", key)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidInputError(
            f"Metric {name!r} has value {value!r}, which is not a number; log ints or floats."
        )
    number = float(value)
    if not math.isfinite(number):
        raise InvalidInputError(
            f"Metric {name!r} has value {value!r}, which is not finite; log finite numbers only."
        )
    return name, number
