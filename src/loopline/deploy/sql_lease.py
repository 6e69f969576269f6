"""``SqlLeaseStore``: leases in the metadata database (table ``controller_leases``, created
and seeded by migration ``0006``).

Taking or renewing is one conditional ``UPDATE`` (``WHERE holder = me OR expires_at <= now``)
in a write transaction, atomic on SQLite and PostgreSQL alike; the row is then read back in
the same transaction to say who holds it.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Float,
    MetaData,
    String,
    Table,
    Text,
    insert,
    or_,
    select,
    update,
)

from loopline.deploy.lease import Lease, LeaseStore, may_take, taken
from loopline.metadata.sql.engine import is_memory_sqlite, transact

T = TypeVar("T")

schema = MetaData()
leases = Table(
    "controller_leases", schema,
    Column("name", String(64), primary_key=True),
    Column("holder", String(200), nullable=False),
    Column("description", Text, nullable=False),
    Column("acquired_at", Float, nullable=False),
    Column("renewed_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
)  # fmt: skip


class SqlLeaseStore(LeaseStore):
    """Leases on a SQLAlchemy engine made by the metadata store's ``create_engines``."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._serial: contextlib.AbstractContextManager[object] = (
            threading.RLock() if is_memory_sqlite(engine.url) else contextlib.nullcontext()
        )

    def _write(self, fn: Callable[[Connection], T], what: str) -> T:
        return transact(self.engine, fn, lock=self._serial,
                        failed=f"The lease store failed to {what}")  # fmt: skip

    def acquire(self, name: str, holder: str, description: str, now: float, ttl: float) -> Lease:
        def fn(conn: Connection) -> Lease:
            current = _read(conn, name)
            if not may_take(current, holder, now):
                assert current is not None  # may_take is True for a missing lease
                return current
            new = taken(current, name, holder, description, now, ttl)
            values = _row(new)
            if current is None:
                conn.execute(insert(leases).values(**values))
            else:
                # Conditional, so that two processes reading the same expired row cannot
                # both take it: the second UPDATE matches no row.
                done = conn.execute(
                    update(leases)
                    .where(leases.c.name == name)
                    .where(or_(leases.c.holder == holder, leases.c.expires_at <= now,
                               leases.c.holder == ""))
                    .values(**values)
                )  # fmt: skip
                if done.rowcount == 0:
                    again = _read(conn, name)
                    assert again is not None
                    return again
            return new

        return self._write(fn, f"take the {name!r} lease")

    def release(self, name: str, holder: str) -> None:
        def fn(conn: Connection) -> None:
            conn.execute(
                update(leases)
                .where(leases.c.name == name, leases.c.holder == holder)
                .values(expires_at=0.0)
            )

        self._write(fn, f"release the {name!r} lease")

    def get(self, name: str) -> Lease | None:
        return self._write(lambda conn: _read(conn, name), f"read the {name!r} lease")


def _read(conn: Connection, name: str) -> Lease | None:
    row = conn.execute(select(leases).where(leases.c.name == name)).first()
    if row is None:
        return None
    return Lease(name=row.name, holder=row.holder, description=row.description,
                 acquired_at=row.acquired_at, renewed_at=row.renewed_at,
                 expires_at=row.expires_at)  # fmt: skip


def _row(lease: Lease) -> dict[str, Any]:
    return {"name": lease.name, "holder": lease.holder, "description": lease.description,
            "acquired_at": lease.acquired_at, "renewed_at": lease.renewed_at,
            "expires_at": lease.expires_at}  # fmt: skip
