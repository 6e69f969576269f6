"""Model registry rows: numbered versions of named models, aliases, the latest blessed model."""

from __future__ import annotations

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from loopline.errors import InvalidInputError, NotFoundError
from loopline.metadata.entities import (
    Artifact,
    ArtifactState,
    ModelAlias,
    ModelVersion,
    check_alias_expect,
    check_alias_expected,
)
from loopline.metadata.sql import artifacts, executions
from loopline.metadata.sql._values import check_id, chunks, utcnow
from loopline.metadata.sql.artifacts import check_after, check_limit
from loopline.metadata.sql.schema import (
    ArtifactRow,
    AttributionRow,
    ModelAliasRow,
    ModelVersionRow,
)
from loopline.types import check_name

MODEL_TYPE = "Model"
BLESSING_TYPE = "ModelBlessing"


def to_version(row: ModelVersionRow) -> ModelVersion:
    return ModelVersion(
        name=row.name,
        version=row.version,
        artifact_id=row.artifact_id,
        description=row.description,
        created_at=row.created_at,
    )


def to_alias(row: ModelAliasRow) -> ModelAlias:
    return ModelAlias(
        name=row.name,
        alias=row.alias,
        version=row.version,
        execution_id=row.execution_id,
        updated_at=row.updated_at,
    )


def create_version(
    session: Session, name: str, artifact_id: int, *, description: str
) -> ModelVersion:
    """Insert version max+1. Callers retry the whole transaction on a unique-key collision.

    On SQLite the write lock (``BEGIN IMMEDIATE``) already serialises writers; on PostgreSQL a
    transaction-scoped advisory lock per model name does, so collisions are a last resort.
    """
    check_name("Model", name)
    if not isinstance(description, str):
        raise InvalidInputError(f"Model description {description!r} must be a string.")
    artifacts.load(session, artifact_id)
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:name))"), {"name": name})
    current = session.scalar(
        select(func.max(ModelVersionRow.version)).where(ModelVersionRow.name == name)
    )
    row = ModelVersionRow(
        name=name,
        version=(current or 0) + 1,
        artifact_id=artifact_id,
        description=description,
        created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    return to_version(row)


def _known_versions(session: Session, name: str) -> list[int]:
    query = select(ModelVersionRow.version).where(ModelVersionRow.name == name)
    return sorted(session.scalars(query))


def _missing_version(session: Session, name: str, version: object) -> NotFoundError:
    known = _known_versions(session, name)
    listed = ", ".join(str(v) for v in known) if known else "none"
    return NotFoundError(
        f"Model {name!r} has no version {version}. Known versions: {listed}. "
        "Register one with create_model_version."
    )


def get_version(session: Session, name: str, version: int) -> ModelVersion:
    check_name("Model", name)
    if isinstance(version, bool) or not isinstance(version, int):
        raise InvalidInputError(f"Model version {version!r} is not an integer ≥ 1.")
    row = session.scalars(
        select(ModelVersionRow).where(
            ModelVersionRow.name == name, ModelVersionRow.version == version
        )
    ).one_or_none()
    if row is None:
        raise _missing_version(session, name, version)
    return to_version(row)


def list_versions(
    session: Session,
    name: str | None,
    *,
    newest_first: bool = False,
    after: int | None = None,
    limit: int | None = None,
) -> list[ModelVersion]:
    number = ModelVersionRow.version
    query = select(ModelVersionRow).order_by(
        ModelVersionRow.name, number.desc() if newest_first else number
    )
    if name is not None:
        query = query.where(ModelVersionRow.name == check_name("Model", name))
    if check_after("model version", after) is not None:
        if name is None:
            raise InvalidInputError(
                f"after = {after} is a version number, so it needs the model's name; pass "
                "name= too, or leave after out."
            )
        query = query.where(number < after if newest_first else number > after)
    if check_limit(limit) is not None:
        query = query.limit(limit)
    return [to_version(row) for row in session.scalars(query)]


def list_names(session: Session, *, after: str | None, limit: int | None) -> list[str]:
    """Distinct model names, ascending, past ``after`` (the unique (name, version) index
    serves both the order and the cursor)."""
    query = select(ModelVersionRow.name).distinct().order_by(ModelVersionRow.name)
    if after is not None:
        if not isinstance(after, str):
            raise InvalidInputError(
                f"after = {after!r} is not a valid model cursor: pass the name of the last "
                "model of the previous page, or None for the first page."
            )
        query = query.where(ModelVersionRow.name > after)
    if check_limit(limit) is not None:
        query = query.limit(limit)
    return list(session.scalars(query))


def set_alias(
    session: Session,
    name: str,
    alias: str,
    version: int | None,
    *,
    execution_id: int | None,
    expect: int | None = None,
) -> ModelAlias | None:
    """Move ``name@alias``; with ``expect`` only if it points at ``expect`` now (0: unset).

    The check and the write are one transaction that holds the alias: on SQLite the write
    lock (``BEGIN IMMEDIATE``) serialises every writer; on PostgreSQL a transaction-scoped
    advisory lock on ``name@alias`` serialises the moves of this alias (a row lock alone
    would not cover an alias that does not exist yet), then the row is read ``FOR UPDATE``.
    """
    check_name("Model", name)
    check_name("Alias", alias)
    check_alias_expect(name, alias, expect)
    if execution_id is not None:
        executions.load(session, execution_id)
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"{name}@{alias}"}
        )
    row = session.get(ModelAliasRow, (name, alias), with_for_update=True)
    if expect is not None:
        check_alias_expected(name, alias, None if row is None else row.version, expect)
    if version is None:
        if row is not None:
            session.delete(row)
            session.flush()
        return None
    get_version(session, name, version)
    now = utcnow()
    if row is None:
        row = ModelAliasRow(
            name=name, alias=alias, version=version, execution_id=execution_id, updated_at=now
        )
        session.add(row)
    else:
        row.version = version
        row.execution_id = execution_id
        row.updated_at = now
    session.flush()
    return to_alias(row)


def list_aliases(session: Session, name: str | None) -> list[ModelAlias]:
    query = select(ModelAliasRow).order_by(ModelAliasRow.name, ModelAliasRow.alias)
    if name is not None:
        query = query.where(ModelAliasRow.name == check_name("Model", name))
    return [to_alias(row) for row in session.scalars(query)]


def _is_one(value: object) -> bool:
    return not isinstance(value, str) and value == 1


def latest_blessed(session: Session, *, context_id: int | None) -> Artifact | None:
    """TFX LatestBlessedModelStrategy: newest LIVE Model with a LIVE blessing saying so.

    Blessing properties are read in Python rather than with JSON SQL operators, so the rule
    (``blessed == 1`` and ``current_model_id == model.id``, ints or floats) is identical on
    SQLite and PostgreSQL.
    """
    if context_id is not None:
        check_id("Context", context_id)
    blessings = session.scalars(
        select(ArtifactRow.properties).where(
            ArtifactRow.type_name == BLESSING_TYPE,
            ArtifactRow.state == ArtifactState.LIVE.value,
        )
    )
    candidates: set[int] = set()
    for props in blessings:
        model_id = props.get("current_model_id")
        if _is_one(props.get("blessed")) and isinstance(model_id, int | float):
            if not isinstance(model_id, bool) and float(model_id).is_integer():
                candidates.add(int(model_id))
    for part in chunks(sorted(candidates, reverse=True)):
        query = select(ArtifactRow).where(
            ArtifactRow.id.in_(part),
            ArtifactRow.type_name == MODEL_TYPE,
            ArtifactRow.state == ArtifactState.LIVE.value,
        )
        if context_id is not None:
            query = query.join(AttributionRow, AttributionRow.artifact_id == ArtifactRow.id).where(
                AttributionRow.context_id == context_id
            )
        # Chunks go from the highest ids down, so the first hit is the newest model.
        row = session.scalars(query.order_by(ArtifactRow.id.desc()).limit(1)).first()
        if row is not None:
            return artifacts.to_artifact(row)
    return None
