"""A pipeline step's two transactions (``start_step``, ``record_step``) as Core statements.

The ORM's unit of work (identity map, flush ordering, attribute events) costs more than the
few rows a step writes, so these run plain SQLAlchemy Core statements on a ``Connection``:
existence checks with one ``SELECT … IN`` per table, multi-row INSERTs, and returned
entities built from the values written rather than re-read. The checks and messages are the
same as the ORM paths' (``executions``, ``artifacts``, ``events``, ``publish``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.engine import Connection

from loopline.errors import ConflictError, InvalidInputError, NotFoundError
from loopline.metadata.entities import (
    TERMINAL_STATES,
    Artifact,
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
    merge,
    utcnow,
)
from loopline.metadata.sql.executions import check_state
from loopline.metadata.sql.schema import (
    ArtifactRow,
    AssociationRow,
    AttributionRow,
    ContextRow,
    EventRow,
    ExecutionRow,
)
from loopline.metadata.sql.states import check_artifact_transition, check_execution_transition
from loopline.metadata.steps import PlannedOutput, StepOutput, StepRecord, StepStart
from loopline.types import ArtifactId, ContextId, ExecutionId, Json

ARTIFACTS: Table = ArtifactRow.__table__  # type: ignore[assignment]
EXECUTIONS: Table = ExecutionRow.__table__  # type: ignore[assignment]
EVENTS: Table = EventRow.__table__  # type: ignore[assignment]
CONTEXTS: Table = ContextRow.__table__  # type: ignore[assignment]
ASSOCIATIONS: Table = AssociationRow.__table__  # type: ignore[assignment]
ATTRIBUTIONS: Table = AttributionRow.__table__  # type: ignore[assignment]


def start(
    conn: Connection,
    type_name: str,
    *,
    name: str | None,
    cache_key: str | None,
    properties: Mapping[str, Json] | None,
    started_at: datetime | None,
    log_uri: str | None,
    inputs: Sequence[tuple[str, ArtifactId]],
    contexts: Sequence[ContextId],
    outputs: Sequence[PlannedOutput],
) -> StepStart:
    now = utcnow()
    execution_values: dict[str, Any] = {
        "type_name": check_text("Execution type name", type_name),
        "name": check_optional_text("Execution name", name),
        "state": ExecutionState.RUNNING.value,
        "cache_key": check_optional_text("Cache key", cache_key),
        "properties": check_properties(properties),
        "log_uri": check_optional_text("Log URI", log_uri, max_len=4096),
        "created_at": now,
        "started_at": check_time("started_at", started_at) or now,
        "ended_at": None,
    }
    input_pairs = [(check_text("Event port", p), check_id("Artifact", a)) for p, a in inputs]
    context_ids = sorted(set(check_ids("Context", list(contexts))))
    planned = [_check_planned(o) for o in outputs]
    _require(conn, ARTIFACTS, "Artifact", [a for _, a in input_pairs])
    _require(conn, CONTEXTS, "Context", context_ids)

    execution_id = _insert_one(conn, EXECUTIONS, execution_values)
    if input_pairs:
        conn.execute(
            insert(EVENTS),
            [
                {
                    "artifact_id": artifact_id,
                    "execution_id": execution_id,
                    "type": EventType.INPUT.value,
                    "port": port,
                    "idx": index,
                    "created_at": now,
                }
                for port, artifact_id, index in _indexed(input_pairs)
            ],
        )
    if context_ids:
        conn.execute(
            insert(ASSOCIATIONS),
            [{"context_id": c, "execution_id": execution_id} for c in context_ids],
        )
    artifacts: list[Artifact] = []
    for out in planned:
        values: dict[str, Any] = {
            "type_name": out.type_name,
            "uri": out.uri,
            "name": out.name,
            "digest": None,
            "state": ArtifactState.PENDING.value,
            "properties": {"producer_execution": execution_id},
            "created_at": now,
            "updated_at": now,
        }
        artifact_id = _insert_one(conn, ARTIFACTS, values)
        artifacts.append(_artifact(artifact_id, values))
    return StepStart(_execution(execution_id, execution_values), tuple(artifacts))


def record(
    conn: Connection,
    execution_id: ExecutionId,
    *,
    state: ExecutionState,
    outputs: Sequence[StepOutput],
    discarded: Sequence[ArtifactId],
    properties: Mapping[str, Json] | None,
    ended_at: datetime | None,
    contexts: Sequence[ContextId],
) -> StepRecord:
    check_id("Execution", execution_id)
    final = check_state(state)
    if final not in TERMINAL_STATES:
        raise InvalidInputError(
            f"Cannot record step execution {execution_id} as {final.value}: record it with a "
            f"final state ({', '.join(sorted(s.value for s in TERMINAL_STATES))})."
        )
    if outputs and final is not ExecutionState.COMPLETE:
        raise InvalidInputError(
            f"record_step got outputs for execution {execution_id} finishing as {final.value}; "
            "outputs are published only by a COMPLETE step. Pass them as discarded instead."
        )
    checked = [_check_output(o) for o in outputs]
    dropped = check_ids("Artifact", list(discarded))
    context_ids = sorted(set(check_ids("Context", list(contexts))))
    ended = check_time("ended_at", ended_at)
    extra = check_properties(properties) if properties is not None else None

    row = (
        conn.execute(select(EXECUTIONS).where(EXECUTIONS.c.id == execution_id).with_for_update())
        .mappings()
        .one_or_none()
    )
    if row is None:
        raise NotFoundError(
            f"Execution {execution_id} does not exist in the metadata store; check the id."
        )
    old = ExecutionState(row["state"])
    if old in TERMINAL_STATES:
        raise ConflictError(
            f"Execution {execution_id} was already published as {old.value}; an execution is "
            "published once. Record a new execution to run again."
        )
    check_execution_transition(execution_id, old, final)

    touched = [o.artifact_id for o in checked] + dropped
    states = _artifact_states(conn, touched)
    for artifact_id in touched:
        if artifact_id not in states:
            raise NotFoundError(
                f"Artifact {artifact_id} does not exist in the metadata store; check the id."
            )
        if states[artifact_id][0] is not ArtifactState.PENDING:
            raise ConflictError(
                f"Artifact {artifact_id} is {states[artifact_id][0].value}, not pending: "
                f"execution {execution_id} can only publish or discard outputs it started "
                "with start_step."
            )
    _require(conn, CONTEXTS, "Context", context_ids)

    now = utcnow()
    if checked:
        for out in checked:
            check_artifact_transition(out.artifact_id, ArtifactState.PENDING, ArtifactState.LIVE)
        conn.execute(
            update(ARTIFACTS)
            .where(ARTIFACTS.c.id == bindparam("b_id"))
            .values(
                digest=bindparam("b_digest"),
                properties=bindparam("b_properties", type_=ARTIFACTS.c.properties.type),
                state=ArtifactState.LIVE.value,
                updated_at=now,
            ),
            [
                {
                    "b_id": out.artifact_id,
                    "b_digest": out.digest,
                    "b_properties": merge(states[out.artifact_id][1], out.properties),
                }
                for out in checked
            ],
        )
        conn.execute(
            insert(EVENTS),
            [
                {
                    "artifact_id": artifact_id,
                    "execution_id": execution_id,
                    "type": EventType.OUTPUT.value,
                    "port": port,
                    "idx": index,
                    "created_at": now,
                }
                for port, artifact_id, index in _indexed(
                    [(o.port, o.artifact_id) for o in checked]
                )
            ],
        )
        _insert_ignoring_duplicates(
            conn,
            ATTRIBUTIONS,
            [
                {"context_id": c, "artifact_id": a}
                for c in context_ids
                for a in sorted({o.artifact_id for o in checked})
            ],
        )
    if dropped:
        conn.execute(
            update(ARTIFACTS)
            .where(ARTIFACTS.c.id.in_(dropped))
            .values(state=ArtifactState.DELETED.value, updated_at=now)
        )
    values: dict[str, Any] = {
        "state": final.value,
        "started_at": row["started_at"] or now,
        "ended_at": ended or row["ended_at"] or now,
    }
    if extra is not None:
        values["properties"] = merge(row["properties"], extra)
    conn.execute(update(EXECUTIONS).where(EXECUTIONS.c.id == execution_id).values(**values))
    published: list[Artifact] = []
    if checked:
        rows = {
            r["id"]: r
            for r in conn.execute(
                select(ARTIFACTS).where(ARTIFACTS.c.id.in_([o.artifact_id for o in checked]))
            ).mappings()
        }
        published = [_artifact(o.artifact_id, dict(rows[o.artifact_id])) for o in checked]
    return StepRecord(_execution(execution_id, {**row, **values}), tuple(published))


# ---- helpers -------------------------------------------------------------------------------


def _check_planned(out: object) -> PlannedOutput:
    if not isinstance(out, PlannedOutput):
        raise InvalidInputError(
            f"Planned output {out!r} is not a PlannedOutput; pass loopline.metadata values."
        )
    check_text("Output port", out.port)
    check_text("Artifact type name", out.type_name)
    check_text("Artifact URI", out.uri, max_len=4096)
    check_optional_text("Artifact name", out.name)
    return out


def _check_output(out: object) -> StepOutput:
    if not isinstance(out, StepOutput):
        raise InvalidInputError(
            f"Step output {out!r} is not a StepOutput; pass loopline.metadata values."
        )
    check_id("Artifact", out.artifact_id)
    check_text("Output port", out.port)
    check_text("Artifact digest", out.digest)
    check_properties(out.properties)
    return out


def _indexed(pairs: Sequence[tuple[str, int]]) -> list[tuple[str, int, int]]:
    """``(port, id, index)``: the index counts the pairs of the same port, in order."""
    seen: dict[str, int] = {}
    out = []
    for port, item in pairs:
        index = seen.get(port, 0)
        seen[port] = index + 1
        out.append((port, item, index))
    return out


def _require(conn: Connection, table: Table, kind: str, ids: Sequence[int]) -> None:
    wanted = sorted(set(ids))
    if not wanted:
        return
    found = set(conn.scalars(select(table.c.id).where(table.c.id.in_(wanted))))
    missing = [i for i in wanted if i not in found]
    if missing:
        raise NotFoundError(
            f"{kind} {missing[0]} does not exist in the metadata store; check the id."
        )


def _artifact_states(
    conn: Connection, ids: Sequence[int]
) -> dict[int, tuple[ArtifactState, dict[str, Any]]]:
    if not ids:
        return {}
    query = (
        select(ARTIFACTS.c.id, ARTIFACTS.c.state, ARTIFACTS.c.properties)
        .where(ARTIFACTS.c.id.in_(sorted(set(ids))))
        .with_for_update()
    )
    return {r.id: (ArtifactState(r.state), dict(r.properties)) for r in conn.execute(query)}


def _insert_one(conn: Connection, table: Table, values: dict[str, Any]) -> int:
    key = conn.execute(insert(table).values(**values)).inserted_primary_key
    if key is None or key[0] is None:  # pragma: no cover - every supported driver returns it
        raise RuntimeError(f"the database returned no id for a new {table.name} row")
    return int(key[0])


def _insert_ignoring_duplicates(
    conn: Connection, table: Table, values: list[dict[str, int]]
) -> None:
    if not values:
        return
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        conn.execute(pg_insert(table).on_conflict_do_nothing(), values)
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        conn.execute(sqlite_insert(table).on_conflict_do_nothing(), values)


def _execution(execution_id: int, values: Mapping[str, Any]) -> Execution:
    return Execution(
        id=execution_id,
        type_name=values["type_name"],
        state=ExecutionState(values["state"]),
        name=values["name"],
        cache_key=values["cache_key"],
        properties=dict(values["properties"]),
        log_uri=values["log_uri"],
        created_at=values["created_at"],
        started_at=values["started_at"],
        ended_at=values["ended_at"],
    )


def _artifact(artifact_id: int, values: Mapping[str, Any]) -> Artifact:
    return Artifact(
        id=artifact_id,
        type_name=values["type_name"],
        uri=values["uri"],
        state=ArtifactState(values["state"]),
        digest=values["digest"],
        name=values["name"],
        properties=dict(values["properties"]),
        created_at=values["created_at"],
        updated_at=values["updated_at"],
    )
