"""Engines for the metadata store: SQLite (WAL, ``BEGIN IMMEDIATE``) and PostgreSQL (psycopg 3).

SQLite concurrency choices, in one place:

- WAL journal: readers never block the writer and the writer never blocks readers.
- ``synchronous=NORMAL``: in WAL mode a commit is durable against application crashes and
  consistent after a power loss (the last commits may roll back), without an fsync per commit.
- ``busy_timeout`` of 30 s: a writer waits for the lock inside SQLite instead of failing.
- Write transactions start with ``BEGIN IMMEDIATE``: the write lock is taken at BEGIN, so two
  writers never both read and then deadlock on lock upgrade (SQLite would then fail at once,
  busy timeout or not). Read-only calls start with a plain (deferred) ``BEGIN``.
- pysqlite's own transaction handling is switched off (``isolation_level = None``) and BEGIN
  is emitted from SQLAlchemy's ``begin`` event, as the SQLAlchemy docs describe for pysqlite.
- ``foreign_keys=ON`` on every connection.

In-memory SQLite (``sqlite://``) keeps one connection (``StaticPool``) so every thread sees
the same database; the store serialises calls on it with a lock.

Every store on these engines (the metadata store, the deployment state store) opens its read
transactions on :func:`read_engine` and runs each whole transaction through
:func:`retry_transient`, which retries "database is locked"/busy (SQLite) and serialisation
failures or deadlocks (PostgreSQL) with a bounded, jittered backoff.
"""

from __future__ import annotations

import importlib.util
import random
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError, OperationalError, SQLAlchemyError
from sqlalchemy.pool import NullPool, StaticPool

from loopline.errors import (
    BackendError,
    ConfigurationError,
    DependencyMissingError,
    LooplineError,
)

KNOWN_SCHEMES = ("sqlite", "postgresql")
BUSY_TIMEOUT_S = 30.0
# Execution option read by the SQLite ``begin`` hook: "IMMEDIATE" for writes, "DEFERRED" reads.
BEGIN_MODE = "loopline_sqlite_begin"
RETRY_DEADLINE_S = 60.0
_PG_TRANSIENT = {"40001", "40P01", "55P03"}  # serialization failure, deadlock, lock timeout

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Engines:
    """The engines of one store. ``read`` and ``write`` share one pool."""

    write: Engine
    read: Engine
    in_memory: bool

    @property
    def dialect(self) -> str:
        return self.write.dialect.name

    def dispose(self) -> None:
        self.write.dispose()


def parse_url(url: str) -> URL:
    """Parse and normalise a store URL; raise ConfigurationError naming the known schemes."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:
        raise ConfigurationError(
            f"Metadata store URL {url!r} is not a valid database URL; use e.g. "
            "'sqlite:///path/to/metadata.db' or 'postgresql://user@host/db'."
        ) from exc
    backend, _, driver = parsed.drivername.partition("+")
    if backend == "sqlite" and driver in ("", "pysqlite"):
        return parsed.set(drivername="sqlite+pysqlite")
    if backend in ("postgresql", "postgres") and driver in ("", "psycopg"):
        return parsed.set(drivername="postgresql+psycopg")
    raise ConfigurationError(
        f"Metadata store URL {url!r} has an unsupported scheme {parsed.drivername!r}. "
        f"Known schemes: {', '.join(KNOWN_SCHEMES)} "
        "(also 'sqlite+pysqlite' and 'postgresql+psycopg')."
    )


def is_memory_sqlite(url: URL) -> bool:
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


def create_engines(
    url: str | URL, *, foreign_keys: bool = True, busy_timeout: float = BUSY_TIMEOUT_S
) -> Engines:
    """Create the engines for ``url`` (a string is parsed with :func:`parse_url`).

    ``foreign_keys=False`` is only for SQLite table rebuilds during migrations.
    ``busy_timeout`` (seconds) is how long a SQLite writer waits for the lock inside SQLite
    before "database is locked" (which the store then retries with backoff).

    Raises:
        ConfigurationError: unknown scheme or malformed URL.
        DependencyMissingError: a PostgreSQL URL without psycopg installed.
    """
    parsed = parse_url(url) if isinstance(url, str) else url
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engines(parsed, foreign_keys=foreign_keys, busy_timeout=busy_timeout)
    return _postgres_engines(parsed)


def _sqlite_engines(url: URL, *, foreign_keys: bool, busy_timeout: float) -> Engines:
    memory = is_memory_sqlite(url)
    kwargs: dict[str, Any] = {
        "connect_args": {"timeout": busy_timeout, "check_same_thread": False},
    }
    if memory:
        kwargs["poolclass"] = StaticPool
    elif not foreign_keys:
        kwargs["poolclass"] = NullPool
    engine = create_engine(url, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Hand transaction control to SQLAlchemy's "begin" event below.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
            if not memory:
                cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
            cursor.execute("PRAGMA synchronous=NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        mode = connection.get_execution_options().get(BEGIN_MODE, "IMMEDIATE")
        connection.exec_driver_sql("BEGIN IMMEDIATE" if mode == "IMMEDIATE" else "BEGIN")

    return Engines(
        write=engine,
        read=engine.execution_options(**{BEGIN_MODE: "DEFERRED"}),
        in_memory=memory,
    )


def _postgres_engines(url: URL) -> Engines:
    if importlib.util.find_spec("psycopg") is None:
        raise DependencyMissingError(
            f"The PostgreSQL metadata store ({url.render_as_string(hide_password=True)}) needs "
            "the 'psycopg' package, which is not installed. "
            "Install it with: pip install 'loopline[postgres]'"
        )
    engine = create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)
    return Engines(write=engine, read=engine, in_memory=False)


def read_engine(engine: Engine) -> Engine:
    """``engine`` for read-only transactions: on SQLite they start with a plain (deferred)
    ``BEGIN``, so a read never takes the write lock; other databases need no change."""
    if engine.dialect.name != "sqlite":
        return engine
    return engine.execution_options(**{BEGIN_MODE: "DEFERRED"})


class TransientConflict(Exception):
    """Raised inside a transaction to have :func:`retry_transient` run it again (e.g. a unique
    key raced with another writer). Chain the cause: ``raise TransientConflict from exc``."""


class RetriesExhausted(Exception):
    """:func:`retry_transient` gave up; ``__cause__`` is the last transient failure."""


def is_transient(exc: BaseException) -> bool:
    """True for failures that a retry of the whole transaction can cure: SQLite's "database
    is locked"/"database is busy", PostgreSQL serialisation failures, deadlocks and lock
    timeouts, and :class:`TransientConflict`."""
    if isinstance(exc, TransientConflict):
        return True
    if not isinstance(exc, OperationalError):
        return False
    message = str(exc.orig).lower()
    if "database is locked" in message or "database is busy" in message:
        return True
    return getattr(exc.orig, "sqlstate", None) in _PG_TRANSIENT


def retry_transient(
    attempt: Callable[[], T],
    *,
    deadline_s: float = RETRY_DEADLINE_S,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run ``attempt`` (one whole transaction) until it does not fail transiently.

    Backoff starts at 5 ms, doubles up to 0.5 s, with jitter; every other exception
    propagates at once.

    Raises:
        RetriesExhausted: still failing transiently after ``deadline_s`` seconds (the last
            failure is its ``__cause__``); callers turn it into their own ``BackendError``.
    """
    deadline = time.monotonic() + deadline_s
    delay = 0.005
    while True:
        try:
            return attempt()
        except (OperationalError, TransientConflict) as exc:
            if not is_transient(exc):
                raise
            if time.monotonic() + delay > deadline:
                raise RetriesExhausted(f"still failing after {deadline_s:g} s: {exc}") from exc
        sleep(delay * (1 + random.random()))
        delay = min(delay * 2, 0.5)


def transact(
    engine: Engine,
    fn: Callable[[Connection], T],
    *,
    lock: AbstractContextManager[Any],
    failed: str,
) -> T:
    """``fn`` in one transaction on ``engine`` (under ``lock``), retried while it fails
    transiently; a database failure becomes a BackendError that starts with ``failed``
    (``"Deployment store failed to list revisions"``). loopline's own errors pass through.
    """

    def attempt() -> T:
        with lock, engine.begin() as conn:
            return fn(conn)

    try:
        return retry_transient(attempt)
    except LooplineError:
        raise
    except RetriesExhausted as exc:
        raise BackendError(
            f"{failed}: {exc.__cause__}, still after retrying for {RETRY_DEADLINE_S:.0f} s. "
            "Another process may hold a long write transaction; check it, then retry."
        ) from exc.__cause__
    except SQLAlchemyError as exc:
        raise BackendError(f"{failed}: {exc}") from exc
