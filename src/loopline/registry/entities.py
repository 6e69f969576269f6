"""Registry values: resolved references, alias moves (with who/why/evidence), model summaries."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from loopline.metadata.entities import Artifact, Execution, ModelVersion
from loopline.types import ArtifactId, ExecutionId

MODEL_ARTIFACT_TYPE = "Model"
MODEL_CONTEXT_TYPE = "model"
ALIAS_MOVE_TYPE = "AliasMove"
REGISTRATION_TYPE = "ModelRegistration"
RESERVED_ALIASES = frozenset({"latest"})


class AliasAction(enum.Enum):
    """What an alias move did."""

    SET = "set"  # pointed the alias at a version (creating it if needed)
    UNSET = "unset"  # removed the alias
    UNDO = "undo"  # put the alias back where it was before its previous move


@dataclass(frozen=True, slots=True)
class ResolvedModel:
    """What a model reference (``taxi@champion``, ``taxi/3``, ``taxi``) points at now."""

    name: str
    version: int
    alias: str | None
    artifact: Artifact

    def __str__(self) -> str:
        via = f"@{self.alias} → " if self.alias else ""
        return f"{self.name}{via}/{self.version}"


@dataclass(frozen=True, slots=True)
class AliasMove:
    """One recorded move of ``model@alias``: an ``AliasMove`` execution in the metadata store.

    ``from_version`` is None when the alias did not exist before; ``to_version`` is None when
    the move removed it.
    """

    execution_id: ExecutionId
    model: str
    alias: str
    action: AliasAction
    from_version: int | None
    to_version: int | None
    who: str
    why: str
    evidence: tuple[ArtifactId, ...]
    at: datetime
    undoes: ExecutionId | None = None

    @classmethod
    def from_execution(cls, execution: Execution, evidence: tuple[ArtifactId, ...]) -> AliasMove:
        """Read a move back from its ``AliasMove`` execution and its evidence events."""
        props = execution.properties
        return cls(
            execution_id=execution.id,
            model=str(props.get("model")),
            alias=str(props.get("alias")),
            action=AliasAction(props.get("action")),
            from_version=_optional_int(props.get("from_version")),
            to_version=_optional_int(props.get("to_version")),
            who=str(props.get("who")),
            why=str(props.get("why")),
            evidence=evidence,
            at=execution.ended_at or execution.created_at,
            undoes=_optional_int(props.get("undoes")),
        )


@dataclass(frozen=True, slots=True)
class ModelSummary:
    """One line of ``list_models``."""

    name: str
    latest_version: int
    version_count: int
    aliases: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RegisteredModel:
    """A model with all its versions (oldest first) and current aliases."""

    name: str
    versions: tuple[ModelVersion, ...]
    aliases: Mapping[str, int]

    @property
    def latest_version(self) -> int:
        """The highest version number."""
        return self.versions[-1].version


def _optional_int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
