"""Triggers and their runs in the metadata database (tables of the metadata migration
``0005``): reads on a deferred transaction, writes ``BEGIN IMMEDIATE`` on SQLite, transient
failures retried with the metadata store's helper. Passes ``tests/triggers/test_store.py``.
"""

from __future__ import annotations

import builtins
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, TypeVar

from sqlalchemy import (
    JSON,
    Column,
    Connection,
    Engine,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    delete,
    insert,
    select,
    update,
)

from loopline.metadata.sql.engine import read_engine, transact
from loopline.triggers.run import ACTIVE_STATES, RunChange, RunState, TriggerRun
from loopline.triggers.spec import TriggerSpec
from loopline.triggers.store import (
    StoredTrigger,
    TriggerStore,
    changed,
    check_expected,
    key_taken,
    missing_run,
    missing_trigger,
    model_busy,
)
from loopline.types import Json

T = TypeVar("T")

schema = MetaData()
triggers = Table(
    "triggers",
    schema,
    Column("name", String(128), primary_key=True),
    Column("spec", JSON, nullable=False),
    Column("generation", Integer, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("cursor", JSON, nullable=True),
)
runs = Table(
    "trigger_runs",
    schema,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("trigger", String(128), nullable=False),
    Column("model", String(128), nullable=False),
    Column("key", String(400), nullable=False),
    Column("state", String(32), nullable=False),
    Column("data", JSON, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)
run_keys = Table(
    "trigger_run_keys",
    schema,
    Column("trigger", String(128), primary_key=True),
    Column("key", String(400), primary_key=True),
    Column("run_id", Integer, nullable=False),
)

_ACTIVE = [s.value for s in ACTIVE_STATES]


def _run(row: Any) -> TriggerRun:
    data = row.data
    return TriggerRun(
        id=row.id,
        trigger=row.trigger,
        model=row.model,
        key=row.key,
        keys=tuple(data.get("keys", [row.key])),
        state=RunState(row.state),
        params=data.get("params", {}),
        cause=data.get("cause", {}),
        created_at=row.created_at,
        updated_at=row.updated_at,
        ended_at=data.get("ended_at"),
        execution_id=data.get("execution_id"),
        message=data.get("message", ""),
        process=data.get("process", {}),
        detail=data.get("detail", {}),
    )


def _data(run: TriggerRun) -> dict[str, Json]:
    return {
        "keys": list(run.keys),
        "params": dict(run.params),
        "cause": dict(run.cause),
        "ended_at": run.ended_at,
        "execution_id": run.execution_id,
        "message": run.message,
        "process": dict(run.process),
        "detail": dict(run.detail),
    }


class SqlTriggerStore(TriggerStore):
    """Triggers and runs on the metadata database's SQLAlchemy engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.read_engine = read_engine(engine)
        self._serial = threading.RLock()  # in-memory SQLite has one shared connection

    def _tx(self, fn: Callable[[Connection], T], *, write: bool, what: str) -> T:
        engine = self.engine if write else self.read_engine
        return transact(engine, fn, lock=self._serial, failed=f"Could not {what}")

    @staticmethod
    def _stored(row: Any) -> StoredTrigger:
        return StoredTrigger(
            TriggerSpec.from_dict(row.spec), row.generation, row.created_at, row.cursor
        )

    @staticmethod
    def _known(conn: Connection) -> list[str]:
        return [r[0] for r in conn.execute(select(triggers.c.name).order_by(triggers.c.name))]

    def apply(self, spec: TriggerSpec, now: float) -> tuple[StoredTrigger, str]:
        def fn(conn: Connection) -> tuple[StoredTrigger, str]:
            row = conn.execute(select(triggers).where(triggers.c.name == spec.name)).first()
            if row is None:
                conn.execute(
                    insert(triggers).values(
                        name=spec.name,
                        spec=spec.to_dict(),
                        generation=1,
                        created_at=now,
                        cursor=None,
                    )
                )
                return StoredTrigger(spec, 1, now), "created"
            current = self._stored(row)
            if current.spec == spec:
                return current, "unchanged"
            cursor = current.cursor if current.spec.on == spec.on else None
            generation = current.generation + 1
            conn.execute(
                update(triggers)
                .where(triggers.c.name == spec.name)
                .values(spec=spec.to_dict(), generation=generation, cursor=cursor)
            )
            return StoredTrigger(spec, generation, current.created_at, cursor), "configured"

        return self._tx(fn, write=True, what=f"store Trigger {spec.name!r}")

    def get(self, name: str) -> StoredTrigger:
        def fn(conn: Connection) -> StoredTrigger:
            row = conn.execute(select(triggers).where(triggers.c.name == name)).first()
            if row is None:
                raise missing_trigger(name, self._known(conn))
            return self._stored(row)

        return self._tx(fn, write=False, what=f"read Trigger {name!r}")

    def list(self) -> list[StoredTrigger]:
        def fn(conn: Connection) -> list[StoredTrigger]:
            rows = conn.execute(select(triggers).order_by(triggers.c.name))
            return [self._stored(r) for r in rows]

        return self._tx(fn, write=False, what="list Triggers")

    def delete(self, name: str) -> None:
        def fn(conn: Connection) -> None:
            if conn.execute(delete(triggers).where(triggers.c.name == name)).rowcount == 0:
                raise missing_trigger(name, self._known(conn))

        self._tx(fn, write=True, what=f"delete Trigger {name!r}")

    def set_cursor(self, name: str, cursor: Json) -> None:
        def fn(conn: Connection) -> None:
            done = conn.execute(
                update(triggers).where(triggers.c.name == name).values(cursor=cursor)
            )
            if done.rowcount == 0:
                raise missing_trigger(name, self._known(conn))

        self._tx(fn, write=True, what=f"move the cursor of Trigger {name!r}")

    def create_run(
        self,
        *,
        trigger: str,
        model: str,
        keys: Sequence[str],
        params: Mapping[str, Json],
        cause: Mapping[str, Json],
        detail: Mapping[str, Json],
        now: float,
    ) -> TriggerRun:
        def fn(conn: Connection) -> TriggerRun:
            taken = conn.execute(
                select(run_keys.c.key, run_keys.c.run_id).where(
                    run_keys.c.trigger == trigger, run_keys.c.key.in_(list(keys))
                )
            ).first()
            if taken is not None:
                raise key_taken(trigger, taken.key, taken.run_id)
            busy = conn.execute(
                select(runs.c.id).where(runs.c.model == model, runs.c.state.in_(_ACTIVE))
            ).first()
            if busy is not None:
                raise model_busy(model, busy.id)
            draft = TriggerRun(
                id=0,
                trigger=trigger,
                model=model,
                key=keys[0],
                keys=tuple(keys),
                state=RunState.PENDING,
                params=dict(params),
                cause=dict(cause),
                created_at=now,
                updated_at=now,
                detail=dict(detail),
            )
            result = conn.execute(
                insert(runs).values(
                    trigger=trigger,
                    model=model,
                    key=keys[0],
                    state=RunState.PENDING.value,
                    data=_data(draft),
                    created_at=now,
                    updated_at=now,
                )
            )
            key = result.inserted_primary_key
            assert key is not None
            run_id = int(key[0])
            conn.execute(
                insert(run_keys),
                [{"trigger": trigger, "key": k, "run_id": run_id} for k in dict.fromkeys(keys)],
            )
            return replace(draft, id=run_id)

        return self._tx(fn, write=True, what=f"record a run of Trigger {trigger!r}")

    def update_run(
        self, run_id: int, expect: RunState, change: RunChange, now: float
    ) -> TriggerRun:
        def fn(conn: Connection) -> TriggerRun:
            row = conn.execute(select(runs).where(runs.c.id == run_id)).first()
            if row is None:
                raise missing_run(run_id)
            run = _run(row)
            check_expected(run, expect)
            new = changed(run, change, now)
            conn.execute(
                update(runs)
                .where(runs.c.id == run_id)
                .values(state=new.state.value, data=_data(new), updated_at=now)
            )
            return new

        return self._tx(fn, write=True, what=f"update trigger run {run_id}")

    def get_run(self, run_id: int) -> TriggerRun:
        def fn(conn: Connection) -> TriggerRun:
            row = conn.execute(select(runs).where(runs.c.id == run_id)).first()
            if row is None:
                raise missing_run(run_id)
            return _run(row)

        return self._tx(fn, write=False, what=f"read trigger run {run_id}")

    def list_runs(
        self, *, trigger: str | None = None, active: bool = False, limit: int | None = None
    ) -> builtins.list[TriggerRun]:
        def fn(conn: Connection) -> builtins.list[TriggerRun]:
            query = select(runs).order_by(runs.c.id.desc())
            if trigger is not None:
                query = query.where(runs.c.trigger == trigger)
            if active:
                query = query.where(runs.c.state.in_(_ACTIVE))
            if limit is not None:
                query = query.limit(limit)
            return [_run(r) for r in conn.execute(query)]

        return self._tx(fn, write=False, what="list trigger runs")

    def used_keys(self, trigger: str) -> dict[str, int]:
        def fn(conn: Connection) -> dict[str, int]:
            rows = conn.execute(
                select(run_keys.c.key, run_keys.c.run_id).where(run_keys.c.trigger == trigger)
            )
            return {r.key: r.run_id for r in rows}

        return self._tx(fn, write=False, what=f"read the consumed keys of Trigger {trigger!r}")
