"""Retention in SQL: read the graph the planner needs, mark a collection, finish it.

A collection is crash-safe in three steps (see ``loopline.metadata.retention``):

1. :func:`begin` — one transaction: check nothing outside the plan started using the
   artifacts, record a ``gc`` context holding every id, turn the artifacts DELETED (so no
   cache lookup, resolver or ``latest_*`` query sees them as live) and tag the runs.
2. the caller removes the bytes (idempotent);
3. :func:`finish` — one transaction: delete events, metrics, associations, attributions,
   executions, artifacts and the emptied run contexts; the ``gc`` context becomes ``done``.

A crash between the steps leaves a ``collecting`` context that :func:`pending` returns, and
the next collection resumes it. Rows that something outside the plan references by the time
of :func:`finish` are kept (as DELETED artifacts), never left dangling.
"""

from __future__ import annotations

import secrets
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from loopline.errors import ConflictError
from loopline.metadata.entities import ArtifactState, EventType, ExecutionState
from loopline.metadata.retention import (
    GC_CONTEXT_TYPE,
    RUN_CONTEXT_TYPE,
    ArtifactNode,
    Collection,
    CollectionResult,
    GcPlan,
    RetentionGraph,
    RunNode,
)
from loopline.metadata.sql._values import chunks, utcnow
from loopline.metadata.sql.schema import (
    ArtifactRow,
    AssociationRow,
    AttributionRow,
    ContextRow,
    EventRow,
    ExecutionRow,
    MetricRow,
    ModelAliasRow,
    ModelVersionRow,
)

_COLLECTING, _DONE = "collecting", "done"


def load_graph(session: Session) -> RetentionGraph:
    """The runs, executions, artifacts, memberships and events, in one read transaction."""
    runs = tuple(
        RunNode(
            id=row.id,
            name=row.name,
            pipeline=str(row.properties.get("pipeline") or ""),
            started_at=row.created_at,
            status=str(row.properties.get("status") or ""),
        )
        for row in session.scalars(
            select(ContextRow).where(ContextRow.type_name == RUN_CONTEXT_TYPE)
        )
    )
    run_ids = {r.id for r in runs}
    executions = {
        i: ExecutionState(state)
        for i, state in session.execute(select(ExecutionRow.id, ExecutionRow.state))
    }
    runs_of: dict[int, set[int]] = defaultdict(set)
    for context_id, execution_id in session.execute(
        select(AssociationRow.context_id, AssociationRow.execution_id)
    ):
        if context_id in run_ids:
            runs_of[execution_id].add(context_id)
    attributed: dict[int, set[int]] = defaultdict(set)
    for context_id, artifact_id in session.execute(
        select(AttributionRow.context_id, AttributionRow.artifact_id)
    ):
        if context_id in run_ids:
            attributed[artifact_id].add(context_id)
    artifacts = {
        i: ArtifactNode(i, type_name, uri, ArtifactState(state))
        for i, type_name, uri, state in session.execute(
            select(ArtifactRow.id, ArtifactRow.type_name, ArtifactRow.uri, ArtifactRow.state)
        )
    }
    events = tuple(
        (a, e, EventType(t))
        for a, e, t in session.execute(
            select(EventRow.artifact_id, EventRow.execution_id, EventRow.type)
        )
    )
    return RetentionGraph(
        runs=runs,
        executions=executions,
        runs_of={e: frozenset(r) for e, r in runs_of.items()},
        artifacts=artifacts,
        attributed={a: frozenset(r) for a, r in attributed.items()},
        events=events,
    )


def _outside_users(
    session: Session, artifact_ids: Sequence[int], executions: set[int]
) -> dict[int, set[int]]:
    """Artifact → executions outside ``executions`` that have an event with it."""
    found: dict[int, set[int]] = defaultdict(set)
    for part in chunks(list(artifact_ids)):
        query = select(EventRow.artifact_id, EventRow.execution_id).where(
            EventRow.artifact_id.in_(part)
        )
        for artifact_id, execution_id in session.execute(query):
            if execution_id not in executions:
                found[artifact_id].add(execution_id)
    return found


def begin(session: Session, plan: GcPlan, *, started_at: datetime) -> Collection:
    """Mark ``plan`` (step 1). Raises ConflictError if an execution outside the plan started
    using one of its artifacts since the plan was made (plan again)."""
    artifact_ids = [a.id for a in plan.artifacts]
    outside = _outside_users(session, artifact_ids, set(plan.executions))
    if outside:
        first = min(outside)
        raise ConflictError(
            f"Artifact {first} was about to be collected, but execution "
            f"{min(outside[first])} started using it after gc made its plan; run gc again "
            "(it plans afresh)."
        )
    name = f"gc-{started_at:%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"
    row = ContextRow(
        type_name=GC_CONTEXT_TYPE,
        name=name,
        properties={
            "state": _COLLECTING,
            "started_at": started_at.isoformat(),
            "runs": list(plan.runs),
            "executions": list(plan.executions),
            "artifacts": artifact_ids,
            "uris": list(plan.uris),
        },
        created_at=utcnow(),
    )
    session.add(row)
    now = utcnow()
    for part in chunks(artifact_ids):
        session.execute(
            update(ArtifactRow)
            .where(ArtifactRow.id.in_(part))
            .values(state=ArtifactState.DELETED.value, updated_at=now)
        )
    _tag_runs(session, plan.runs, name)
    session.flush()
    return _collection(row)


def _tag_runs(session: Session, runs: Iterable[int], name: str | None) -> None:
    for part in chunks(list(runs)):
        for run in session.scalars(select(ContextRow).where(ContextRow.id.in_(part))):
            props: dict[str, Any] = dict(run.properties)
            if name is None:
                props.pop("gc", None)
            else:
                props["gc"] = name
            run.properties = props


def _collection(row: ContextRow) -> Collection:
    p = row.properties
    return Collection(
        id=row.id,
        name=row.name,
        runs=tuple(int(i) for i in p.get("runs", [])),
        executions=tuple(int(i) for i in p.get("executions", [])),
        artifacts=tuple(int(i) for i in p.get("artifacts", [])),
        uris=tuple(str(u) for u in p.get("uris", [])),
        started_at=datetime.fromisoformat(str(p.get("started_at"))),
    )


def pending(session: Session) -> list[Collection]:
    """Collections that were marked but not finished (a crash), oldest first."""
    rows = session.scalars(
        select(ContextRow).where(ContextRow.type_name == GC_CONTEXT_TYPE).order_by(ContextRow.id)
    )
    return [_collection(r) for r in rows if r.properties.get("state") == _COLLECTING]


def finish(session: Session, collection_id: int) -> CollectionResult:
    """Delete the marked rows (step 3) and record the collection as done."""
    row = session.get(ContextRow, collection_id)
    if row is None or row.type_name != GC_CONTEXT_TYPE:
        raise ConflictError(f"Context {collection_id} is not a gc collection; nothing to finish.")
    c = _collection(row)
    if row.properties.get("state") == _DONE:
        return CollectionResult(c.name, 0, 0, 0)
    executions = set(c.executions)
    # Keep what something outside the plan references by now: never leave a dangling row.
    executions -= set(
        session.scalars(
            select(ModelAliasRow.execution_id).where(ModelAliasRow.execution_id.is_not(None))
        )
    )
    outside = _outside_users(session, c.artifacts, executions)
    registered = set(session.scalars(select(ModelVersionRow.artifact_id)))
    artifacts = [a for a in c.artifacts if a not in outside and a not in registered]
    kept_after_all = len(c.artifacts) - len(artifacts)
    ex_list = sorted(executions)
    for part in chunks(ex_list):
        session.execute(delete(EventRow).where(EventRow.execution_id.in_(part)))
        session.execute(delete(MetricRow).where(MetricRow.execution_id.in_(part)))
        session.execute(delete(AssociationRow).where(AssociationRow.execution_id.in_(part)))
    for part in chunks(artifacts):
        session.execute(delete(EventRow).where(EventRow.artifact_id.in_(part)))
        session.execute(delete(AttributionRow).where(AttributionRow.artifact_id.in_(part)))
    for part in chunks(ex_list):
        session.execute(delete(ExecutionRow).where(ExecutionRow.id.in_(part)))
    for part in chunks(artifacts):
        session.execute(delete(ArtifactRow).where(ArtifactRow.id.in_(part)))
    runs_deleted, runs_kept = _drop_empty_runs(session, c.runs)
    props = {
        k: v for k, v in row.properties.items() if k not in ("runs", "executions", "artifacts")
    }
    props.update(
        state=_DONE,
        ended_at=utcnow().isoformat(),
        runs_deleted=runs_deleted,
        runs_kept=runs_kept,
        executions_deleted=len(ex_list),
        artifacts_deleted=len(artifacts),
        uris=len(c.uris),
    )
    row.properties = props
    session.flush()
    return CollectionResult(
        name=c.name,
        runs_deleted=runs_deleted,
        executions_deleted=len(ex_list),
        artifacts_deleted=len(artifacts),
        runs_kept=runs_kept,
        kept_after_all=kept_after_all,
    )


def _drop_empty_runs(session: Session, runs: Sequence[int]) -> tuple[int, int]:
    """Delete the run contexts left with no execution and no artifact; untag the others."""
    dropped: list[int] = []
    kept: list[int] = []
    for run in runs:
        members = (
            session.scalar(
                select(func.count())
                .select_from(AssociationRow)
                .where(AssociationRow.context_id == run)
            )
            or 0
        )
        members += (
            session.scalar(
                select(func.count())
                .select_from(AttributionRow)
                .where(AttributionRow.context_id == run)
            )
            or 0
        )
        (kept if members else dropped).append(run)
    for part in chunks(dropped):
        session.execute(delete(ContextRow).where(ContextRow.id.in_(part)))
    _tag_runs(session, kept, None)
    return len(dropped), len(kept)
