"""Publishing an execution: outputs, states and properties in one transaction."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from loopline.errors import ConflictError, InvalidInputError
from loopline.metadata.entities import (
    TERMINAL_STATES,
    ArtifactState,
    Event,
    EventType,
    Execution,
    ExecutionState,
)
from loopline.metadata.sql import events, executions
from loopline.metadata.sql._values import check_time, merge, utcnow
from loopline.metadata.sql.schema import ArtifactRow, EventRow


def publish(
    session: Session,
    execution_id: int,
    *,
    state: ExecutionState,
    outputs: Sequence[Event],
    properties: Mapping[str, Any] | None,
    ended_at: datetime | None,
) -> Execution:
    final = executions.check_state(state)
    if final not in TERMINAL_STATES:
        raise InvalidInputError(
            f"Cannot publish execution {execution_id} as {final.value}: publish with a final "
            f"state ({', '.join(sorted(s.value for s in TERMINAL_STATES))}); use "
            "update_execution for intermediate states."
        )
    ended = check_time("ended_at", ended_at)
    row = executions.load(session, execution_id, for_update=True)
    if ExecutionState(row.state) in TERMINAL_STATES:
        raise ConflictError(
            f"Execution {execution_id} was already published as {row.state}; an execution is "
            "published once. Record a new execution to run again."
        )
    checked = [events.check_event(event) for event in outputs]
    for event in checked:
        if event.type is not EventType.OUTPUT or event.execution_id != execution_id:
            raise InvalidInputError(
                f"Output event {event!r} of execution {execution_id} must be an OUTPUT event "
                f"with execution_id={execution_id}."
            )
    events.put(session, checked)
    if final is ExecutionState.COMPLETE:
        output_ids = select(EventRow.artifact_id).where(
            EventRow.execution_id == execution_id, EventRow.type == EventType.OUTPUT.value
        )
        pending = session.scalars(
            select(ArtifactRow)
            .where(
                ArtifactRow.id.in_(output_ids),
                ArtifactRow.state == ArtifactState.PENDING.value,
            )
            .with_for_update()
        )
        now = utcnow()
        for artifact in pending:
            artifact.state = ArtifactState.LIVE.value
            artifact.updated_at = now
    if properties is not None:
        row.properties = merge(row.properties, properties)
    executions.set_state(row, final, ended)
    if ended is not None:
        row.ended_at = ended
    session.flush()
    return executions.to_execution(row)
