"""Fields of Kubernetes objects read as JSON, whatever shape the API server (or a person) sent:
a mapping, a list or an integer, with an empty or default value in place of anything else."""

from __future__ import annotations

from loopline.types import Json


def as_map(value: Json) -> dict[str, Json]:
    """``value`` if it is an object, else ``{}``."""
    return value if isinstance(value, dict) else {}


def as_list(value: Json) -> list[Json]:
    """``value`` if it is an array, else ``[]``."""
    return value if isinstance(value, list) else []


def as_int(value: Json, default: int = 0) -> int:
    """An integer, or a string of digits (annotations are strings), else ``default``."""
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return default
