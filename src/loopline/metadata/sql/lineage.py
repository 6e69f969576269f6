"""Lineage: breadth-first walks over the event graph, one indexed IN-list query per hop.

One hop is one artifact↔execution edge. Walking UPSTREAM goes from an artifact to the
execution that produced it (OUTPUT edge) and from an execution to the artifacts it read
(INPUT edge); DOWNSTREAM is the reverse. BOTH is the union of the two walks (ancestors and
descendants, not an undirected flood into siblings); a node's hop count is its shortest
distance in either walk.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from loopline.errors import InvalidInputError
from loopline.metadata.entities import Direction, Event, EventType, LineageGraph
from loopline.metadata.sql import artifacts, executions
from loopline.metadata.sql._values import check_id, chunks
from loopline.metadata.sql.schema import ArtifactRow, EventRow, ExecutionRow

_EDGE_COLUMNS = (
    EventRow.id,
    EventRow.artifact_id,
    EventRow.execution_id,
    EventRow.type,
    EventRow.port,
    EventRow.idx,
    EventRow.created_at,
)

# For each walk direction: (edge type followed from an artifact, from an execution).
_FOLLOW = {
    Direction.UPSTREAM: (EventType.OUTPUT, EventType.INPUT),
    Direction.DOWNSTREAM: (EventType.INPUT, EventType.OUTPUT),
}


@dataclass
class _Walk:
    artifact_hops: dict[int, int] = field(default_factory=dict)
    execution_hops: dict[int, int] = field(default_factory=dict)
    events: dict[int, Event] = field(default_factory=dict)


def walk(
    session: Session,
    *,
    artifact_id: int | None,
    execution_id: int | None,
    direction: Direction,
    hops: int,
) -> LineageGraph:
    if (artifact_id is None) == (execution_id is None):
        raise InvalidInputError(
            "A lineage query needs exactly one start: pass artifact_id or execution_id, "
            f"not {'both' if artifact_id is not None else 'neither'}."
        )
    if isinstance(hops, bool) or not isinstance(hops, int) or hops < 0:
        raise InvalidInputError(f"Lineage hops {hops!r} is not valid; use an integer ≥ 0.")
    if not isinstance(direction, Direction):
        raise InvalidInputError(
            f"Lineage direction {direction!r} is not a Direction; use Direction.UPSTREAM, "
            "DOWNSTREAM or BOTH."
        )
    if artifact_id is not None:
        artifacts.load(session, check_id("Artifact", artifact_id))
    else:
        executions.load(session, check_id("Execution", execution_id))

    result = _Walk()
    walks = (
        [Direction.UPSTREAM, Direction.DOWNSTREAM] if direction is Direction.BOTH else [direction]
    )
    for one in walks:
        _walk_one(session, result, artifact_id, execution_id, one, hops)
    return _graph(session, result)


def _walk_one(
    session: Session,
    result: _Walk,
    artifact_id: int | None,
    execution_id: int | None,
    direction: Direction,
    hops: int,
) -> None:
    from_artifact, from_execution = _FOLLOW[direction]
    seen_a: set[int] = set()
    seen_e: set[int] = set()
    frontier_a: set[int] = set()
    frontier_e: set[int] = set()
    if artifact_id is not None:
        frontier_a.add(artifact_id)
        seen_a.add(artifact_id)
        result.artifact_hops[artifact_id] = 0
    if execution_id is not None:
        frontier_e.add(execution_id)
        seen_e.add(execution_id)
        result.execution_hops[execution_id] = 0
    for hop in range(1, hops + 1):
        if not frontier_a and not frontier_e:
            break
        next_a: set[int] = set()
        next_e: set[int] = set()
        for side, ids, kind in (
            (EventRow.artifact_id, frontier_a, from_artifact),
            (EventRow.execution_id, frontier_e, from_execution),
        ):
            for part in chunks(sorted(ids)):
                query = select(*_EDGE_COLUMNS).where(side.in_(part), EventRow.type == kind.value)
                for row in session.execute(query):
                    event_id, a_id, e_id, type_, port, idx, created_at = row
                    if event_id not in result.events:
                        result.events[event_id] = Event(
                            artifact_id=a_id,
                            execution_id=e_id,
                            type=EventType(type_),
                            port=port,
                            index=idx,
                            created_at=created_at,
                        )
                    if side is EventRow.artifact_id and e_id not in seen_e:
                        seen_e.add(e_id)
                        next_e.add(e_id)
                    elif side is EventRow.execution_id and a_id not in seen_a:
                        seen_a.add(a_id)
                        next_a.add(a_id)
        for a_id in next_a:
            result.artifact_hops[a_id] = min(result.artifact_hops.get(a_id, hop), hop)
        for e_id in next_e:
            result.execution_hops[e_id] = min(result.execution_hops.get(e_id, hop), hop)
        frontier_a, frontier_e = next_a, next_e


def _graph(session: Session, result: _Walk) -> LineageGraph:
    artifact_rows: list[ArtifactRow] = []
    for part in chunks(sorted(result.artifact_hops)):
        artifact_rows.extend(session.scalars(select(ArtifactRow).where(ArtifactRow.id.in_(part))))
    execution_rows: list[ExecutionRow] = []
    for part in chunks(sorted(result.execution_hops)):
        execution_rows.extend(
            session.scalars(select(ExecutionRow).where(ExecutionRow.id.in_(part)))
        )
    hop_map = {f"a:{a}": h for a, h in sorted(result.artifact_hops.items())}
    hop_map.update({f"e:{e}": h for e, h in sorted(result.execution_hops.items())})
    return LineageGraph(
        artifacts=tuple(
            artifacts.to_artifact(r) for r in sorted(artifact_rows, key=lambda r: r.id)
        ),
        executions=tuple(
            executions.to_execution(r) for r in sorted(execution_rows, key=lambda r: r.id)
        ),
        events=tuple(result.events[i] for i in sorted(result.events)),
        hops=hop_map,
    )
