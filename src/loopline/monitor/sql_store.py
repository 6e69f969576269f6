"""SqlMonitorStore: monitors and their progress in the metadata database (migration ``0004``).

Writes run ``BEGIN IMMEDIATE`` on SQLite and are retried on transient failures with the
metadata store's helper (:func:`loopline.metadata.sql.engine.transact`); reads use a deferred
transaction. The consumed segments are rows (``monitor_segments``), not a JSON list, so a
tick adds and prunes a few rows instead of rewriting thousands of paths.
"""

from __future__ import annotations

import builtins
import contextlib
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import (
    JSON,
    Column,
    Connection,
    Engine,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    delete,
    func,
    insert,
    select,
    update,
)

from loopline.errors import ConfigurationError, NotFoundError
from loopline.metadata.sql.engine import read_engine, transact
from loopline.monitor.rules import AlertEvent
from loopline.monitor.spec import MonitorSpec
from loopline.monitor.store import (
    Commit,
    MonitorState,
    MonitorStore,
    StoredAlert,
    StoredMonitor,
    conflict,
    missing,
)
from loopline.monitor.window_result import WindowResult
from loopline.types import ArtifactId

T = TypeVar("T")

schema = MetaData()
specs = Table(
    "monitor_specs",
    schema,
    Column("name", String(128), primary_key=True),
    Column("spec", JSON, nullable=False),
    Column("generation", Integer, nullable=False),
    Column("created_at", Float, nullable=False),
)
states = Table(
    "monitor_state",
    schema,
    Column("monitor", String(128), primary_key=True),
    Column("revision", Integer, nullable=False),
    Column("state", JSON, nullable=False),
    Column("blob", LargeBinary, nullable=True),
    Column("updated_at", Float, nullable=False),
)
segments = Table(
    "monitor_segments",
    schema,
    Column("monitor", String(128), primary_key=True),
    Column("path", String(1024), primary_key=True),
)
windows = Table(
    "monitor_windows",
    schema,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("monitor", String(128), nullable=False),
    Column("version", String(64), nullable=False),
    Column("window_index", Integer, nullable=False),
    Column("end_ts", Float, nullable=False),
    Column("result", JSON, nullable=False),
    UniqueConstraint("monitor", "version", "window_index", name="uq_monitor_windows"),
    Index("ix_monitor_windows_monitor", "monitor", "id"),
)
alerts = Table(
    "monitor_alerts",
    schema,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("monitor", String(128), nullable=False),
    Column("key", String(512), nullable=False, unique=True),
    Column("event", JSON, nullable=False),
    Column("artifact_id", Integer, nullable=True),
    Column("created_at", Float, nullable=False),
    Index("ix_monitor_alerts_monitor", "monitor", "id"),
)


class SqlMonitorStore(MonitorStore):
    """Monitors in the metadata database, on its SQLAlchemy engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.read_engine = read_engine(engine)
        memory = engine.dialect.name == "sqlite" and engine.url.database in (None, "", ":memory:")
        # In-memory SQLite has one shared connection: serialise transactions on it.
        self._serial: contextlib.AbstractContextManager[object] = (
            threading.RLock() if memory else contextlib.nullcontext()
        )

    @classmethod
    def from_metadata(cls, metadata: object) -> SqlMonitorStore:
        """Use the database of a SQL metadata store.

        Raises:
            ConfigurationError: ``metadata`` is not SQL-backed.
        """
        engine = getattr(metadata, "engine", None)
        if not isinstance(engine, Engine):
            raise ConfigurationError(
                f"Monitor state needs a SQL metadata store, got {type(metadata).__name__}; "
                "set LOOPLINE_DB_URL to a sqlite:// or postgresql:// URL."
            )
        return cls(engine)

    def _tx(self, fn: Callable[[Connection], T], *, write: bool, what: str) -> T:
        engine = self.engine if write else self.read_engine
        return transact(engine, fn, lock=self._serial, failed=f"Monitor store failed to {what}")

    @staticmethod
    def _require(conn: Connection, name: str) -> None:
        if conn.execute(select(specs.c.name).where(specs.c.name == name)).first() is None:
            known = [r[0] for r in conn.execute(select(specs.c.name))]
            raise missing(name, known)

    def apply(self, spec: MonitorSpec, now: float) -> tuple[StoredMonitor, str]:
        def fn(conn: Connection) -> tuple[StoredMonitor, str]:
            row = conn.execute(select(specs).where(specs.c.name == spec.name)).first()
            if row is None:
                conn.execute(
                    insert(specs).values(
                        name=spec.name, spec=spec.to_doc(), generation=1, created_at=now
                    )
                )
                return StoredMonitor(spec, 1, now), "created"
            current = _stored(row)
            if current.spec == spec:
                return current, "unchanged"
            generation = current.generation + 1
            conn.execute(
                update(specs)
                .where(specs.c.name == spec.name)
                .values(spec=spec.to_doc(), generation=generation)
            )
            return StoredMonitor(spec, generation, current.created_at), "configured"

        return self._tx(fn, write=True, what=f"apply Monitor {spec.name!r}")

    def get(self, name: str) -> StoredMonitor:
        def fn(conn: Connection) -> StoredMonitor:
            row = conn.execute(select(specs).where(specs.c.name == name)).first()
            if row is None:
                self._require(conn, name)
            return _stored(row)

        return self._tx(fn, write=False, what=f"read Monitor {name!r}")

    def list(self) -> list[StoredMonitor]:
        def fn(conn: Connection) -> list[StoredMonitor]:
            return [_stored(r) for r in conn.execute(select(specs).order_by(specs.c.name))]

        return self._tx(fn, write=False, what="list Monitors")

    def delete(self, name: str) -> None:
        def fn(conn: Connection) -> None:
            self._require(conn, name)
            for table, col in (
                (alerts, alerts.c.monitor),
                (windows, windows.c.monitor),
                (segments, segments.c.monitor),
                (states, states.c.monitor),
                (specs, specs.c.name),
            ):
                conn.execute(delete(table).where(col == name))

        self._tx(fn, write=True, what=f"delete Monitor {name!r}")

    def load_state(self, name: str) -> MonitorState:
        def fn(conn: Connection) -> MonitorState:
            self._require(conn, name)
            row = conn.execute(select(states).where(states.c.monitor == name)).first()
            if row is None:
                return MonitorState()
            paths = conn.execute(select(segments.c.path).where(segments.c.monitor == name))
            return MonitorState(
                row.revision,
                dict(row.state),
                row.blob,
                frozenset(r[0] for r in paths),
                row.updated_at,
            )

        return self._tx(fn, write=False, what=f"read the state of Monitor {name!r}")

    def commit(
        self, name: str, expected_revision: int, commit: Commit, now: float, *, keep_windows: int
    ) -> int:
        def fn(conn: Connection) -> int:
            self._require(conn, name)
            row = conn.execute(select(states.c.revision).where(states.c.monitor == name)).first()
            actual = 0 if row is None else int(row[0])
            if actual != expected_revision:
                raise conflict(name, expected_revision, actual)
            values = {
                "revision": actual + 1,
                "state": commit.state,
                "blob": commit.blob,
                "updated_at": now,
            }
            if row is None:
                conn.execute(insert(states).values(monitor=name, **values))
            else:
                done = conn.execute(
                    update(states)
                    .where(states.c.monitor == name)
                    .where(states.c.revision == actual)
                    .values(**values)
                )
                if done.rowcount != 1:
                    raise conflict(name, expected_revision, actual + 1)
            gone = sorted(commit.forgotten)
            for i in range(0, len(gone), 500):
                conn.execute(
                    delete(segments)
                    .where(segments.c.monitor == name)
                    .where(segments.c.path.in_(gone[i : i + 500]))
                )
            if commit.consumed:
                conn.execute(
                    insert(segments),
                    [{"monitor": name, "path": p} for p in sorted(commit.consumed)],
                )
            if commit.windows:
                conn.execute(
                    insert(windows),
                    [
                        {
                            "monitor": name,
                            "version": w.version,
                            "window_index": w.index,
                            "end_ts": w.end_ts,
                            "result": w.to_dict(),
                        }
                        for w in commit.windows
                    ],
                )
            self._prune(conn, name, keep_windows)
            self._outbox(conn, name, commit.alerts, now)
            return actual + 1

        return self._tx(fn, write=True, what=f"commit the state of Monitor {name!r}")

    @staticmethod
    def _prune(conn: Connection, name: str, keep: int) -> None:
        count = conn.execute(
            select(func.count()).select_from(windows).where(windows.c.monitor == name)
        ).scalar_one()
        if count <= keep:
            return
        cut = conn.execute(
            select(windows.c.id)
            .where(windows.c.monitor == name)
            .order_by(windows.c.id.desc())
            .offset(keep)
            .limit(1)
        ).scalar_one()
        conn.execute(delete(windows).where(windows.c.monitor == name).where(windows.c.id <= cut))

    @staticmethod
    def _outbox(conn: Connection, name: str, events: tuple[AlertEvent, ...], now: float) -> None:
        for event in events:
            seen = conn.execute(select(alerts.c.id).where(alerts.c.key == event.key)).first()
            if seen is None:
                conn.execute(
                    insert(alerts).values(
                        monitor=name, key=event.key, event=event.to_dict(), created_at=now
                    )
                )

    def windows(
        self, name: str, *, version: str | None = None, limit: int | None = None
    ) -> builtins.list[WindowResult]:
        def fn(conn: Connection) -> builtins.list[WindowResult]:
            self._require(conn, name)
            q = select(windows.c.result).where(windows.c.monitor == name)
            if version is not None:
                q = q.where(windows.c.version == version)
            q = q.order_by(windows.c.id.desc())
            if limit is not None:
                q = q.limit(limit)
            return [WindowResult.from_dict(r[0]) for r in conn.execute(q)][::-1]

        return self._tx(fn, write=False, what=f"read the windows of Monitor {name!r}")

    def alerts(self, name: str, *, pending: bool = False) -> builtins.list[StoredAlert]:
        def fn(conn: Connection) -> builtins.list[StoredAlert]:
            self._require(conn, name)
            q = select(alerts).where(alerts.c.monitor == name)
            if pending:
                q = q.where(alerts.c.artifact_id.is_(None))
            return [
                StoredAlert(r.id, AlertEvent.from_dict(r.event), r.artifact_id, r.created_at)
                for r in conn.execute(q.order_by(alerts.c.id))
            ]

        return self._tx(fn, write=False, what=f"read the alerts of Monitor {name!r}")

    def mark_recorded(self, name: str, alert_id: int, artifact_id: ArtifactId) -> None:
        def fn(conn: Connection) -> None:
            done = conn.execute(
                update(alerts)
                .where(alerts.c.monitor == name)
                .where(alerts.c.id == alert_id)
                .values(artifact_id=artifact_id)
            )
            if done.rowcount != 1:
                raise NotFoundError(f"Monitor {name!r} has no alert {alert_id}.")

        self._tx(fn, write=True, what=f"mark alert {alert_id} of Monitor {name!r} recorded")


def _stored(row: Any) -> StoredMonitor:
    return StoredMonitor(MonitorSpec.from_dict(row.spec), row.generation, row.created_at)
