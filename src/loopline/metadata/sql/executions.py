"""Execution queries: plain functions over a Session, returning frozen ``Execution`` values."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, exists, select
from sqlalchemy.orm import Session

from loopline.errors import InvalidInputError, NotFoundError
from loopline.metadata.entities import (
    TERMINAL_STATES,
    ArtifactState,
    EventType,
    Execution,
    ExecutionState,
)
from loopline.metadata.sql._values import (
    check_id,
    check_ids,
    check_optional_text,
    check_properties,
    check_text,
    check_time,
    chunks,
    merge,
    utcnow,
)
from loopline.metadata.sql.artifacts import check_after, check_limit
from loopline.metadata.sql.schema import ArtifactRow, AssociationRow, EventRow, ExecutionRow
from loopline.metadata.sql.states import check_execution_transition


def to_execution(row: ExecutionRow) -> Execution:
    return Execution(
        id=row.id,
        type_name=row.type_name,
        state=ExecutionState(row.state),
        name=row.name,
        cache_key=row.cache_key,
        properties=dict(row.properties),
        log_uri=row.log_uri,
        created_at=row.created_at,
        started_at=row.started_at,
        ended_at=row.ended_at,
    )


def check_state(value: object) -> ExecutionState:
    if not isinstance(value, ExecutionState):
        raise InvalidInputError(
            f"Execution state {value!r} is not an ExecutionState; use one of "
            f"{', '.join('ExecutionState.' + s.name for s in ExecutionState)}."
        )
    return value


def put(
    session: Session,
    type_name: str,
    *,
    name: str | None,
    state: ExecutionState,
    cache_key: str | None,
    properties: Mapping[str, Any] | None,
    started_at: datetime | None,
) -> Execution:
    now = utcnow()
    new_state = check_state(state)
    started = check_time("started_at", started_at)
    if started is None and new_state is not ExecutionState.NEW:
        started = now
    row = ExecutionRow(
        type_name=check_text("Execution type name", type_name),
        name=check_optional_text("Execution name", name),
        state=new_state.value,
        cache_key=check_optional_text("Cache key", cache_key),
        properties=check_properties(properties),
        log_uri=None,
        created_at=now,
        started_at=started,
        ended_at=now if new_state in TERMINAL_STATES else None,
    )
    session.add(row)
    session.flush()
    return to_execution(row)


def load(session: Session, execution_id: int, *, for_update: bool = False) -> ExecutionRow:
    check_id("Execution", execution_id)
    query = select(ExecutionRow).where(ExecutionRow.id == execution_id)
    if for_update:
        query = query.with_for_update()
    row = session.scalars(query).one_or_none()
    if row is None:
        raise NotFoundError(
            f"Execution {execution_id} does not exist in the metadata store; check the id."
        )
    return row


def set_state(row: ExecutionRow, state: ExecutionState, ended_at: datetime | None) -> None:
    """Move ``row`` to ``state`` (checked), stamping started/ended times when first reached."""
    new = check_state(state)
    check_execution_transition(row.id, ExecutionState(row.state), new)
    now = utcnow()
    row.state = new.value
    if new is not ExecutionState.NEW and row.started_at is None:
        row.started_at = now
    if new in TERMINAL_STATES and row.ended_at is None:
        row.ended_at = ended_at or now


def update(
    session: Session,
    execution_id: int,
    *,
    state: ExecutionState | None,
    cache_key: str | None,
    properties: Mapping[str, Any] | None,
    log_uri: str | None,
    started_at: datetime | None,
    ended_at: datetime | None,
) -> Execution:
    row = load(session, execution_id, for_update=True)
    started = check_time("started_at", started_at)
    ended = check_time("ended_at", ended_at)
    if started is not None:
        row.started_at = started
    if ended is not None:
        row.ended_at = ended
    if state is not None:
        set_state(row, state, ended)
    if cache_key is not None:
        row.cache_key = check_text("Cache key", cache_key)
    if log_uri is not None:
        row.log_uri = check_text("Log URI", log_uri, max_len=4096)
    if properties is not None:
        row.properties = merge(row.properties, properties)
    session.flush()
    return to_execution(row)


def get(session: Session, execution_id: int) -> Execution:
    return to_execution(load(session, execution_id))


def list_(
    session: Session,
    *,
    type_name: str | None,
    state: ExecutionState | None,
    context_id: int | None,
    cache_key: str | None,
    limit: int | None,
    newest_first: bool,
    after: int | None = None,
) -> list[Execution]:
    query = select(ExecutionRow)
    if check_after("execution", after) is not None:
        query = query.where(ExecutionRow.id < after if newest_first else ExecutionRow.id > after)
    if type_name is not None:
        query = query.where(ExecutionRow.type_name == check_text("Execution type name", type_name))
    if state is not None:
        query = query.where(ExecutionRow.state == check_state(state).value)
    if cache_key is not None:
        query = query.where(ExecutionRow.cache_key == check_text("Cache key", cache_key))
    if context_id is not None:
        query = query.join(AssociationRow, AssociationRow.execution_id == ExecutionRow.id).where(
            AssociationRow.context_id == check_id("Context", context_id)
        )
    query = query.order_by(ExecutionRow.id.desc() if newest_first else ExecutionRow.id.asc())
    if check_limit(limit) is not None:
        query = query.limit(limit)
    return [to_execution(row) for row in session.scalars(query)]


def find_cached(session: Session, cache_key: str) -> Execution | None:
    """Newest COMPLETE execution with ``cache_key`` none of whose outputs is not LIVE."""
    not_live_output = exists().where(
        and_(
            EventRow.execution_id == ExecutionRow.id,
            EventRow.type == EventType.OUTPUT.value,
            ArtifactRow.id == EventRow.artifact_id,
            ArtifactRow.state != ArtifactState.LIVE.value,
        )
    )
    query = (
        select(ExecutionRow)
        .where(
            ExecutionRow.cache_key == check_text("Cache key", cache_key),
            ExecutionRow.state == ExecutionState.COMPLETE.value,
            ~not_live_output,
        )
        .order_by(ExecutionRow.id.desc())
        .limit(1)
    )
    row = session.scalars(query).first()
    return None if row is None else to_execution(row)


def require_existing(session: Session, execution_ids: Sequence[int]) -> None:
    """Raise NotFoundError naming every id in ``execution_ids`` that has no row."""
    wanted = set(check_ids("Execution", execution_ids))
    found: set[int] = set()
    for part in chunks(sorted(wanted)):
        found.update(session.scalars(select(ExecutionRow.id).where(ExecutionRow.id.in_(part))))
    missing = sorted(wanted - found)
    if missing:
        raise NotFoundError(
            f"Execution ids {missing} do not exist in the metadata store; record them first."
        )
