"""Artifact queries: plain functions over a Session, returning frozen ``Artifact`` values."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from loopline.errors import InvalidInputError, NotFoundError
from loopline.metadata.entities import Artifact, ArtifactState
from loopline.metadata.sql._values import (
    check_id,
    check_ids,
    check_optional_text,
    check_properties,
    check_text,
    chunks,
    merge,
    utcnow,
)
from loopline.metadata.sql.schema import ArtifactRow, AttributionRow
from loopline.metadata.sql.states import check_artifact_transition


def to_artifact(row: ArtifactRow) -> Artifact:
    return Artifact(
        id=row.id,
        type_name=row.type_name,
        uri=row.uri,
        state=ArtifactState(row.state),
        digest=row.digest,
        name=row.name,
        properties=dict(row.properties),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def check_state(value: object) -> ArtifactState:
    if not isinstance(value, ArtifactState):
        raise InvalidInputError(
            f"Artifact state {value!r} is not an ArtifactState; use one of "
            f"{', '.join('ArtifactState.' + s.name for s in ArtifactState)}."
        )
    return value


def put(
    session: Session,
    type_name: str,
    uri: str,
    *,
    name: str | None,
    digest: str | None,
    properties: Mapping[str, Any] | None,
    state: ArtifactState,
) -> Artifact:
    now = utcnow()
    row = ArtifactRow(
        type_name=check_text("Artifact type name", type_name),
        uri=check_text("Artifact URI", uri, max_len=4096),
        name=check_optional_text("Artifact name", name),
        digest=check_optional_text("Artifact digest", digest),
        state=check_state(state).value,
        properties=check_properties(properties),
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    return to_artifact(row)


def load(session: Session, artifact_id: int, *, for_update: bool = False) -> ArtifactRow:
    check_id("Artifact", artifact_id)
    query = select(ArtifactRow).where(ArtifactRow.id == artifact_id)
    if for_update:
        query = query.with_for_update()
    row = session.scalars(query).one_or_none()
    if row is None:
        raise NotFoundError(
            f"Artifact {artifact_id} does not exist in the metadata store; check the id."
        )
    return row


def update(
    session: Session,
    artifact_id: int,
    *,
    state: ArtifactState | None,
    digest: str | None,
    uri: str | None,
    properties: Mapping[str, Any] | None,
) -> Artifact:
    row = load(session, artifact_id, for_update=True)
    if state is not None:
        new = check_state(state)
        check_artifact_transition(row.id, ArtifactState(row.state), new)
        row.state = new.value
    if digest is not None:
        row.digest = check_text("Artifact digest", digest)
    if uri is not None:
        row.uri = check_text("Artifact URI", uri, max_len=4096)
    if properties is not None:
        row.properties = merge(row.properties, properties)
    row.updated_at = utcnow()
    session.flush()
    return to_artifact(row)


def get(session: Session, artifact_id: int) -> Artifact:
    return to_artifact(load(session, artifact_id))


def get_many(session: Session, artifact_ids: Sequence[int]) -> list[Artifact]:
    ids = check_ids("Artifact", artifact_ids)
    found: dict[int, Artifact] = {}
    for part in chunks(sorted(set(ids))):
        for row in session.scalars(select(ArtifactRow).where(ArtifactRow.id.in_(part))):
            found[row.id] = to_artifact(row)
    return [found[i] for i in ids if i in found]


def _filtered(
    type_name: str | None, state: ArtifactState | None, context_id: int | None
) -> Select[ArtifactRow]:
    query = select(ArtifactRow)
    if type_name is not None:
        query = query.where(ArtifactRow.type_name == check_text("Artifact type name", type_name))
    if state is not None:
        query = query.where(ArtifactRow.state == check_state(state).value)
    if context_id is not None:
        query = query.join(AttributionRow, AttributionRow.artifact_id == ArtifactRow.id).where(
            AttributionRow.context_id == check_id("Context", context_id)
        )
    return query


def check_limit(limit: int | None) -> int | None:
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise InvalidInputError(f"Limit {limit!r} is not valid; use an integer ≥ 0 or None.")
    return limit


def check_after(kind: str, after: int | None) -> int | None:
    """A keyset cursor: None, or the id of the last row of the previous page."""
    if after is not None and (isinstance(after, bool) or not isinstance(after, int) or after < 1):
        raise InvalidInputError(
            f"after = {after!r} is not a valid {kind} cursor: pass the id of the last row of "
            "the previous page (an integer ≥ 1), or None for the first page."
        )
    return after


def list_(
    session: Session,
    *,
    type_name: str | None,
    state: ArtifactState | None,
    context_id: int | None,
    limit: int | None,
    newest_first: bool,
    after: int | None = None,
) -> list[Artifact]:
    query = _filtered(type_name, state, context_id)
    if check_after("artifact", after) is not None:
        query = query.where(ArtifactRow.id < after if newest_first else ArtifactRow.id > after)
    query = query.order_by(ArtifactRow.id.desc() if newest_first else ArtifactRow.id.asc())
    if check_limit(limit) is not None:
        query = query.limit(limit)
    return [to_artifact(row) for row in session.scalars(query)]


def latest(
    session: Session, type_name: str, *, context_id: int | None, state: ArtifactState | None
) -> Artifact | None:
    query = _filtered(type_name, state, context_id).order_by(ArtifactRow.id.desc()).limit(1)
    row = session.scalars(query).first()
    return None if row is None else to_artifact(row)


def require_existing(session: Session, artifact_ids: Sequence[int]) -> None:
    """Raise NotFoundError naming every id in ``artifact_ids`` that has no row."""
    wanted = set(check_ids("Artifact", artifact_ids))
    found: set[int] = set()
    for part in chunks(sorted(wanted)):
        found.update(session.scalars(select(ArtifactRow.id).where(ArtifactRow.id.in_(part))))
    missing = sorted(wanted - found)
    if missing:
        raise NotFoundError(
            f"Artifact ids {missing} do not exist in the metadata store; record them first."
        )
