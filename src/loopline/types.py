"""Small value types shared by every layer: JSON aliases, ids and model references."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TypeAlias

from loopline.errors import InvalidInputError

Json: TypeAlias = "bool | int | float | str | list[Json] | dict[str, Json] | None"
JsonDict: TypeAlias = "dict[str, Json]"

ArtifactId: TypeAlias = int
ExecutionId: TypeAlias = int
ContextId: TypeAlias = int

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def check_name(kind: str, value: str) -> str:
    """Return ``value`` if it is a valid object name, else raise InvalidInputError.

    Names start with a letter or digit and contain letters, digits, ``_``, ``.`` or ``-``
    (at most 128 characters), so they are safe in URLs, file names and Kubernetes labels.
    """
    if not isinstance(value, str) or not _NAME.match(value):
        raise InvalidInputError(
            f"{kind} name {value!r} is not valid: use 1-128 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit."
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
                f"Model reference {text!r} is empty; write name@alias, name/version or name."
            )
        if "@" in text:
            name, _, alias = text.partition("@")
            check_name("Model", name)
            check_name("Alias", alias)
            return cls(name=name, alias=alias)
        if "/" in text:
            name, _, ver = text.partition("/")
            check_name("Model", name)
            if not ver.isdigit() or int(ver) < 1:
                raise InvalidInputError(
                    f"Model reference {text!r} has version {ver!r}; versions are integers ≥ 1, "
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
