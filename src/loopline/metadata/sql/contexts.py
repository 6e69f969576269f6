"""Context queries: groupings (pipeline, run, experiment, model) and their memberships."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from loopline.errors import AlreadyExistsError, NotFoundError
from loopline.metadata.entities import Context, ExecutionState
from loopline.metadata.sql import artifacts, executions
from loopline.metadata.sql._values import (
    check_id,
    check_ids,
    check_properties,
    check_text,
    chunks,
    merge,
    utcnow,
)
from loopline.metadata.sql.artifacts import check_after, check_limit
from loopline.metadata.sql.schema import AssociationRow, AttributionRow, ContextRow, ExecutionRow


def to_context(row: ContextRow) -> Context:
    return Context(
        id=row.id,
        type_name=row.type_name,
        name=row.name,
        properties=dict(row.properties),
        created_at=row.created_at,
    )


def _find_row(session: Session, type_name: str, name: str) -> ContextRow | None:
    query = select(ContextRow).where(ContextRow.type_name == type_name, ContextRow.name == name)
    return session.scalars(query).one_or_none()


def _insert(
    session: Session, type_name: str, name: str, properties: Mapping[str, Any] | None
) -> ContextRow | None:
    """Insert in a savepoint; None if (type_name, name) was taken (by us or a racer)."""
    row = ContextRow(
        type_name=type_name,
        name=name,
        properties=check_properties(properties),
        created_at=utcnow(),
    )
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        return None
    return row


def put(
    session: Session, type_name: str, name: str, *, properties: Mapping[str, Any] | None
) -> Context:
    type_name = check_text("Context type name", type_name)
    name = check_text("Context name", name)
    existing = _find_row(session, type_name, name)
    row = None if existing is not None else _insert(session, type_name, name, properties)
    if row is None:
        raise AlreadyExistsError(
            f"Context {type_name}/{name!r} already exists; use ensure_context or find_context "
            "to reuse it."
        )
    return to_context(row)


def ensure(
    session: Session, type_name: str, name: str, *, properties: Mapping[str, Any] | None
) -> Context:
    type_name = check_text("Context type name", type_name)
    name = check_text("Context name", name)
    check_properties(properties)
    row = _find_row(session, type_name, name) or _insert(session, type_name, name, properties)
    if row is None:  # lost a race: the winner's row is committed and visible now
        row = _find_row(session, type_name, name)
    if row is None:  # pragma: no cover - only if the winner rolled back after conflicting
        raise NotFoundError(f"Context {type_name}/{name!r} vanished while being created; retry.")
    return to_context(row)


def load(session: Session, context_id: int, *, for_update: bool = False) -> ContextRow:
    check_id("Context", context_id)
    query = select(ContextRow).where(ContextRow.id == context_id)
    if for_update:
        query = query.with_for_update()
    row = session.scalars(query).one_or_none()
    if row is None:
        raise NotFoundError(
            f"Context {context_id} does not exist in the metadata store; check the id."
        )
    return row


def get(session: Session, context_id: int) -> Context:
    return to_context(load(session, context_id))


def find(session: Session, type_name: str, name: str) -> Context | None:
    row = _find_row(
        session, check_text("Context type name", type_name), check_text("Context name", name)
    )
    return None if row is None else to_context(row)


def update(session: Session, context_id: int, *, properties: Mapping[str, Any]) -> Context:
    row = load(session, context_id, for_update=True)
    row.properties = merge(row.properties, properties)
    session.flush()
    return to_context(row)


def list_(
    session: Session, *, type_name: str | None, limit: int | None, after: int | None = None
) -> list[Context]:
    query = select(ContextRow)
    if check_after("context", after) is not None:
        query = query.where(ContextRow.id < after)
    if type_name is not None:
        query = query.where(ContextRow.type_name == check_text("Context type name", type_name))
    query = query.order_by(ContextRow.id.desc())
    if check_limit(limit) is not None:
        query = query.limit(limit)
    return [to_context(row) for row in session.scalars(query)]


def count_executions(
    session: Session, context_ids: Sequence[int]
) -> dict[int, dict[ExecutionState, int]]:
    """Executions per state of each context: one ``GROUP BY`` over the associations (their
    primary key leads with ``context_id``) joined to the executions."""
    ids = sorted(set(check_ids("Context", context_ids)))
    found: dict[int, dict[ExecutionState, int]] = {}
    for part in chunks(ids):
        query = (
            select(AssociationRow.context_id, ExecutionRow.state, func.count())
            .join(ExecutionRow, ExecutionRow.id == AssociationRow.execution_id)
            .where(AssociationRow.context_id.in_(part))
            .group_by(AssociationRow.context_id, ExecutionRow.state)
        )
        for context_id, state, count in session.execute(query):
            found.setdefault(int(context_id), {})[ExecutionState(state)] = int(count)
    return found


def attribute(session: Session, context_id: int, artifact_ids: Sequence[int]) -> None:
    load(session, context_id)
    ids = sorted(set(check_ids("Artifact", artifact_ids)))
    artifacts.require_existing(session, ids)
    _insert_ignoring_duplicates(
        session, AttributionRow, [{"context_id": context_id, "artifact_id": i} for i in ids]
    )


def associate(session: Session, context_id: int, execution_ids: Sequence[int]) -> None:
    load(session, context_id)
    ids = sorted(set(check_ids("Execution", execution_ids)))
    executions.require_existing(session, ids)
    _insert_ignoring_duplicates(
        session, AssociationRow, [{"context_id": context_id, "execution_id": i} for i in ids]
    )


def of_execution(session: Session, execution_id: int) -> list[Context]:
    executions.load(session, execution_id)
    query = (
        select(ContextRow)
        .join(AssociationRow, AssociationRow.context_id == ContextRow.id)
        .where(AssociationRow.execution_id == execution_id)
        .order_by(ContextRow.id)
    )
    return [to_context(row) for row in session.scalars(query)]


def of_artifact(session: Session, artifact_id: int) -> list[Context]:
    artifacts.load(session, artifact_id)
    query = (
        select(ContextRow)
        .join(AttributionRow, AttributionRow.context_id == ContextRow.id)
        .where(AttributionRow.artifact_id == artifact_id)
        .order_by(ContextRow.id)
    )
    return [to_context(row) for row in session.scalars(query)]


def link(
    session: Session,
    context_ids: Sequence[int],
    *,
    execution_ids: Sequence[int] = (),
    artifact_ids: Sequence[int] = (),
) -> None:
    """Associate executions and attribute artifacts to several contexts at once.

    The fast path of ``put_execution``/``publish_execution``: the caller has already checked
    (or just created) the executions and artifacts in this transaction, so only the
    contexts are checked — with one query — and the links are inserted with one
    ``INSERT … ON CONFLICT DO NOTHING`` per table (idempotent, like ``attribute``).

    Raises:
        NotFoundError: a context does not exist (nothing is linked).
    """
    ctx_ids = sorted(set(check_ids("Context", context_ids)))
    if not ctx_ids:
        return
    found = set(session.scalars(select(ContextRow.id).where(ContextRow.id.in_(ctx_ids))))
    missing = [c for c in ctx_ids if c not in found]
    if missing:
        raise NotFoundError(
            f"Context {missing[0]} does not exist in the metadata store; check the id."
        )
    _insert_ignoring_duplicates(
        session,
        AssociationRow,
        [{"context_id": c, "execution_id": e} for c in ctx_ids for e in set(execution_ids)],
    )
    _insert_ignoring_duplicates(
        session,
        AttributionRow,
        [{"context_id": c, "artifact_id": a} for c in ctx_ids for a in set(artifact_ids)],
    )


def _insert_ignoring_duplicates(
    session: Session, row: type[AssociationRow] | type[AttributionRow], values: list[dict[str, int]]
) -> None:
    if not values:
        return
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        session.execute(pg_insert(row).on_conflict_do_nothing(), values)
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        session.execute(sqlite_insert(row).on_conflict_do_nothing(), values)
