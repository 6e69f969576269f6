"""Small value types shared by every layer: JSON aliases, ids and model references."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TypeAlias

from loopline.errors import InvalidInputError, shown

Json: TypeAlias = "bool | int | float | str | list[Json] | dict[str, Json] | None"
JsonDict: TypeAlias = "dict[str, Json]"

ArtifactId: TypeAlias = int
ExecutionId: TypeAlias = int
ContextId: TypeAlias = int

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}", re.ASCII)


def is_ascii_digits(text: str, most: int = 18) -> bool:
    """True for 1 to ``most`` ASCII digits, and nothing else. ``str.isdigit`` alone also
    accepts ``²`` and ``٣``, which ``int()`` then refuses."""
    return 0 < len(text) <= most and text.isascii() and text.isdigit()


def non_finite(value: object, path: str = "") -> tuple[str, float] | None:
    """The path (``spec.rules[0].threshold``) and value of the first NaN or ±Infinity inside
    a JSON-like document, or None. JSON has no such numbers, but Python's ``json`` and YAML
    (``.nan``, ``.inf``) read them; a spec must never hold one."""
    if isinstance(value, float):
        return None if math.isfinite(value) else (path or "(document)", value)
    if isinstance(value, dict):
        for key, item in value.items():
            found = non_finite(item, f"{path}.{key}" if path else str(key))
            if found is not None:
                return found
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            found = non_finite(item, f"{path}[{i}]")
            if found is not None:
                return found
    return None


def check_name(kind: str, value: str) -> str:
    """Return ``value`` if it is a valid object name, else raise InvalidInputError.

    Names start with a letter or digit and contain letters, digits, ``_``, ``.`` or ``-``
    (at most 128 characters), so they are safe in URLs, file names and Kubernetes labels.
    """
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise InvalidInputError(
            f"{kind} name {shown(value)} is not valid: use 1-128 letters, digits, '_', '.' or "
            "'-', starting with a letter or digit."
        )
    return value


@dataclass(frozen=True, slots=True)
class ModelRef:
    """A reference to a registered model: ``name@alias``, ``name/version`` or ``name``.

    ``name`` alone means the latest version. Parse user text with :meth:`parse`.
    """

    name: str
    version: int | None = None
    alias: str | None = None

    @classmethod
    def parse(cls, text: str) -> ModelRef:
        """Parse ``taxi@champion``, ``taxi/3`` or ``taxi``.

        Raises:
            InvalidInputError: the text is none of those forms.
        """
        if not isinstance(text, str) or not text:
            raise InvalidInputError(
                f"Model reference {shown(text)} is empty; write name@alias, name/version or "
                "name."
            )
        if "@" in text:
            name, _, alias = text.partition("@")
            check_name("Model", name)
            check_name("Alias", alias)
            return cls(name=name, alias=alias)
        if "/" in text:
            name, _, ver = text.partition("/")
            check_name("Model", name)
            if not is_ascii_digits(ver) or int(ver) < 1:
                raise InvalidInputError(
                    f"Model reference {shown(text)} has version {shown(ver)}; versions are "
                    "integers ≥ 1, "
                    "as in 'taxi/3'."
                )
            return cls(name=name, version=int(ver))
        check_name("Model", text)
        return cls(name=text)

    def __str__(self) -> str:
        if self.alias is not None:
            return f"{self.name}@{self.alias}"
        if self.version is not None:
            return f"{self.name}/{self.version}"
        return self.name


_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([KMGT]i?B|B)?", re.IGNORECASE)
_SIZE_UNIT = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12}
_SIZE_UNIT |= {"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40}
_AGE = re.compile(r"(\d+(?:\.\d+)?)([smhdw]?)")
_AGE_UNIT = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86_400.0, "w": 604_800.0}


def parse_byte_size(value: str | int, field: str) -> int:
    """Bytes for ``1073741824``, ``500MB`` (10⁶) or ``1GiB`` (2³⁰); InvalidInputError naming
    ``field`` otherwise (also for 0: a size bound is at least one byte)."""
    if isinstance(value, int) and not isinstance(value, bool):
        size = value
    else:
        m = _SIZE.fullmatch(str(value).strip())
        if m is None:
            raise InvalidInputError(
                f"{field} {shown(value)} is not a size; write bytes (1073741824) or a number "
                "with a unit: KB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of "
                "1024)."
            )
        size = int(float(m.group(1)) * _SIZE_UNIT[(m.group(2) or "b").lower()])
    if size < 1:
        raise InvalidInputError(f"{field} {shown(value)} must be at least 1 byte.")
    return size


def parse_age(value: str | float, field: str) -> float:
    """Seconds for ``30d``, ``12h``, ``90m``, ``45s``, ``2w`` or a bare number of seconds;
    InvalidInputError naming ``field`` otherwise (also for 0)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        m = _AGE.fullmatch(str(value).strip())
        if m is None:
            raise InvalidInputError(
                f"{field} {shown(value)} is not an age; write a number with a unit: s, m, h, d "
                "or w (30d = 30 days), or a bare number of seconds."
            )
        seconds = float(m.group(1)) * _AGE_UNIT[m.group(2)]
    if not seconds > 0 or seconds == float("inf"):
        raise InvalidInputError(f"{field} {shown(value)} must be a positive, finite age.")
    return seconds


def format_age(seconds: float) -> str:
    """The short form :func:`parse_age` reads back: ``2592000`` → ``30d``, ``90`` → ``90s``."""
    for unit in ("w", "d", "h", "m"):
        size = _AGE_UNIT[unit]
        if seconds >= size and float(seconds / size).is_integer():
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"
