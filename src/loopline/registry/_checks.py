"""Small checks and message helpers of the registry."""

from __future__ import annotations

from collections.abc import Sequence

from loopline.artifacts.store import ArtifactStore
from loopline.errors import InvalidInputError, NotFoundError
from loopline.metadata.entities import Artifact, ArtifactState, ModelAlias, ModelVersion
from loopline.metadata.store import MetadataStore
from loopline.registry.entities import MODEL_ARTIFACT_TYPE
from loopline.types import ArtifactId, check_name


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


def check_evidence(
    metadata: MetadataStore, evidence: Sequence[ArtifactId]
) -> tuple[ArtifactId, ...]:
    """The distinct evidence artifact ids, in order; InvalidInputError for a non-id and
    NotFoundError naming the ids that are not recorded."""
    if isinstance(evidence, str | bytes):
        raise InvalidInputError(
            f"Evidence {evidence!r} must be a sequence of artifact ids, not a string."
        )
    ids = tuple(dict.fromkeys(evidence))
    for artifact_id in ids:
        if isinstance(artifact_id, bool) or not isinstance(artifact_id, int):
            raise InvalidInputError(
                f"Evidence {artifact_id!r} is not an artifact id; pass integer ids such "
                "as the ModelBlessing's."
            )
    found = {a.id for a in metadata.get_artifacts(ids)}
    missing = [i for i in ids if i not in found]
    if missing:
        raise NotFoundError(
            f"Evidence artifact(s) {', '.join(map(str, missing))} do not exist; pass ids of "
            "recorded artifacts such as the ModelBlessing that justifies the move."
        )
    return ids


def registered_versions(metadata: MetadataStore, name: str) -> list[ModelVersion]:
    """The versions of model ``name``, oldest first; NotFoundError listing the known models
    if it has none."""
    check_name("Model", name)
    versions = metadata.list_model_versions(name)
    if not versions:
        known = sorted({v.name for v in metadata.list_model_versions()})
        shown = ", ".join(known[:20]) + (" …" if len(known) > 20 else "") or "none"
        raise NotFoundError(
            f"Model {name!r} is not registered. Known models: {shown}. Register one with: "
            f"loopline models register {name} ARTIFACT_ID"
        )
    return versions


def check_registrable(name: str, artifact: Artifact, artifacts: ArtifactStore) -> None:
    """InvalidInputError unless ``artifact`` is a LIVE ``Model`` with a digest whose bytes
    are published in ``artifacts``."""
    problem = None
    if artifact.type_name != MODEL_ARTIFACT_TYPE:
        problem = f"is of type {artifact.type_name!r}, not {MODEL_ARTIFACT_TYPE!r}"
    elif artifact.state is not ArtifactState.LIVE:
        problem = f"is {artifact.state.value}, not live"
        if artifact.state is ArtifactState.PENDING:
            problem += " (its bytes were never published)"
    elif not artifact.digest:
        problem = "has no content digest"
    elif not artifacts.exists(artifact.uri):
        problem = f"has no bytes at {artifact.uri!r}"
    if problem is not None:
        raise InvalidInputError(
            f"Artifact {artifact.id} {problem}; only live Model artifacts with published, "
            f"digested bytes can become versions of model {name!r}. Register the Model "
            "artifact a successful Trainer run produced."
        )
