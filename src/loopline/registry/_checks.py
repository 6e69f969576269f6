"""Small checks and message helpers of the registry."""

from __future__ import annotations

from loopline.errors import InvalidInputError, NotFoundError
from loopline.metadata.entities import ModelAlias, ModelVersion


def pick_version(name: str, versions: list[ModelVersion], number: int) -> ModelVersion:
    """The version numbered ``number``; NotFoundError listing the known versions otherwise."""
    for version in versions:
        if version.version == number:
            return version
    known = ", ".join(str(v.version) for v in versions)
    raise NotFoundError(f"Model {name!r} has no version {number}. Known versions: {known}.")


def alias_listing(aliases: dict[str, ModelAlias]) -> str:
    """Alias names for a message: ``"challenger, champion"`` or ``"none"``."""
    return ", ".join(sorted(aliases)) or "none"


def check_actor(who: object, why: object) -> tuple[str, str]:
    """Stripped ``(who, why)``; InvalidInputError unless both are non-empty strings."""
    for label, value in (("who", who), ("why", why)):
        if not isinstance(value, str) or not value.strip():
            raise InvalidInputError(
                f"Registry changes need {label!r} as a non-empty string (who: a person or "
                f"service; why: a sentence for the audit trail); got {value!r}."
            )
    return str(who).strip(), str(why).strip()
