"""Event (edge) queries: record and read artifact↔execution edges."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from loopline.errors import InvalidInputError
from loopline.metadata.entities import Event, EventType
from loopline.metadata.sql import artifacts, executions
from loopline.metadata.sql._values import check_ids, check_text, chunks, utcnow
from loopline.metadata.sql.schema import EventRow

EdgeKey = tuple[int, int, str, str, int]


def to_event(row: EventRow) -> Event:
    return Event(
        artifact_id=row.artifact_id,
        execution_id=row.execution_id,
        type=EventType(row.type),
        port=row.port,
        index=row.idx,
        created_at=row.created_at,
    )


def check_event(event: object) -> Event:
    if not isinstance(event, Event):
        raise InvalidInputError(f"{event!r} is not an Event; pass loopline.metadata.Event values.")
    if not isinstance(event.type, EventType):
        raise InvalidInputError(
            f"Event type {event.type!r} is not an EventType; use EventType.INPUT or OUTPUT."
        )
    check_text("Event port", event.port)
    if isinstance(event.index, bool) or not isinstance(event.index, int) or event.index < 0:
        raise InvalidInputError(f"Event index {event.index!r} is not valid; use an integer ≥ 0.")
    return event


def _key(event: Event) -> EdgeKey:
    return (event.artifact_id, event.execution_id, event.type.value, event.port, event.index)


def put(session: Session, events: Sequence[Event]) -> None:
    """Insert edges; an identical edge already recorded is not duplicated."""
    checked = [check_event(event) for event in events]
    if not checked:
        return
    artifacts.require_existing(session, [e.artifact_id for e in checked])
    executions.require_existing(session, [e.execution_id for e in checked])
    execution_ids = sorted({e.execution_id for e in checked})
    existing: set[EdgeKey] = set()
    for part in chunks(execution_ids):
        rows = session.scalars(select(EventRow).where(EventRow.execution_id.in_(part)))
        existing.update((r.artifact_id, r.execution_id, r.type, r.port, r.idx) for r in rows)
    now = utcnow()
    for event in checked:
        key = _key(event)
        if key in existing:
            continue
        existing.add(key)
        session.add(
            EventRow(
                artifact_id=event.artifact_id,
                execution_id=event.execution_id,
                type=event.type.value,
                port=event.port,
                idx=event.index,
                created_at=now,
            )
        )
    session.flush()


def get(
    session: Session, *, artifact_ids: Sequence[int], execution_ids: Sequence[int]
) -> list[Event]:
    a_ids = sorted(set(check_ids("Artifact", artifact_ids)))
    e_ids = sorted(set(check_ids("Execution", execution_ids)))
    rows: dict[int, EventRow] = {}
    for column, ids in ((EventRow.artifact_id, a_ids), (EventRow.execution_id, e_ids)):
        for part in chunks(ids):
            for row in session.scalars(select(EventRow).where(column.in_(part))):
                rows[row.id] = row
    return [to_event(rows[i]) for i in sorted(rows)]


def rows_touching(
    session: Session,
    *,
    artifact_ids: Iterable[int],
    execution_ids: Iterable[int],
    artifact_type: EventType | None,
    execution_type: EventType | None,
) -> list[EventRow]:
    """Edges whose artifact is in ``artifact_ids`` (with type ``artifact_type``, any if None)
    or whose execution is in ``execution_ids`` (with ``execution_type``). For lineage walks."""
    a_ids = sorted(set(artifact_ids))
    e_ids = sorted(set(execution_ids))
    found: list[EventRow] = []
    for column, ids, kind in (
        (EventRow.artifact_id, a_ids, artifact_type),
        (EventRow.execution_id, e_ids, execution_type),
    ):
        for part in chunks(ids):
            query = select(EventRow).where(column.in_(part))
            if kind is not None:
                query = query.where(EventRow.type == kind.value)
            found.extend(session.scalars(query))
    return found


def put_for_new_execution(session: Session, events: Sequence[Event]) -> None:
    """Insert the first edges of an execution created in this same transaction.

    The fast path of ``put_execution``: the execution is new, so it has no edges yet and
    needs no existence check; only the artifacts are checked (one query), and the rows go in
    with one multi-row INSERT. Duplicate pairs in ``events`` cannot occur (the caller numbers
    each port's index).
    """
    checked = [check_event(event) for event in events]
    if not checked:
        return
    artifacts.require_existing(session, [e.artifact_id for e in checked])
    now = utcnow()
    session.execute(
        insert(EventRow),
        [
            {
                "artifact_id": e.artifact_id,
                "execution_id": e.execution_id,
                "type": e.type.value,
                "port": e.port,
                "idx": e.index,
                "created_at": now,
            }
            for e in checked
        ],
    )
