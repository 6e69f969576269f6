"""Bring a metadata database to the newest schema revision, safely under concurrent openers.

Migrations are Alembic scripts in ``migrations/versions`` (``0001``, ``0002``, …, each with
``down_revision`` the previous one), run from code: no ``alembic.ini`` at run time.

Several processes may open a fresh database at once. The upgrade is guarded by a file lock
next to a SQLite file (``<db>.migrate.lock``) or a PostgreSQL advisory lock; whoever takes
it second finds the schema already at head. A database at a revision this code does not know
(written by a newer loopline) is refused rather than touched.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError

from loopline.errors import BackendError, StepTimeoutError
from loopline.metadata.sql.engine import Engines, create_engines, is_memory_sqlite

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
LOCK_TIMEOUT_S = 120.0
# Arbitrary constant key of the PostgreSQL advisory lock guarding migrations ("loopline").
_PG_LOCK_KEY = 0x6C6F6F706C696E65


def newest_file_revision() -> str:
    """The newest revision by file name (``versions/NNNN_*.py``), read without Alembic.

    Revision ids are 4-digit numbers in one chain and every file is named after its id, so
    the greatest number is the head (a test checks this against Alembic's own answer).
    """
    names = [p.name[:4] for p in (MIGRATIONS_DIR / "versions").glob("[0-9][0-9][0-9][0-9]_*.py")]
    return max(names)


def _stamped_revision(engines: Engines) -> str | None:
    """The revision recorded in ``alembic_version``, read with plain SQL; None if absent."""
    try:
        with engines.read.connect() as connection:
            row = connection.execute(text("SELECT version_num FROM alembic_version")).first()
            connection.rollback()
    except DBAPIError:
        return None
    return None if row is None else str(row[0])


def alembic_config() -> Config:
    """An Alembic config pointing at the packaged migrations (no ini file)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str:
    """The newest revision this code knows."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package always ships 0001
        raise BackendError("The loopline package ships no metadata migrations; reinstall it.")
    return head


def current_revision(connection: Connection) -> str | None:
    """The revision stamped in the database, or None for an empty database."""
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


def upgrade(url: URL, engines: Engines, *, revision: str = "head") -> None:
    """Upgrade the database behind ``engines`` to ``revision`` (default: head).

    Raises:
        BackendError: the database is at a revision newer than this code knows.
        StepTimeoutError: another process held the migration lock for too long.
    """
    if revision == "head" and not engines.in_memory:
        # Fast path for every open of an up-to-date database: no Alembic import at all.
        if _stamped_revision(engines) == newest_file_revision():
            return
    head = head_revision()
    with engines.read.connect() as connection:
        found = current_revision(connection)
        connection.rollback()
    _refuse_unknown(found, head, url)
    if found == head and revision == "head":
        return
    if engines.in_memory:
        _run(engines, revision)
        return
    with _migration_lock(url, engines):
        with engines.read.connect() as connection:
            found = current_revision(connection)
            connection.rollback()
        _refuse_unknown(found, head, url)
        if found == head and revision == "head":
            return
        if engines.dialect == "sqlite":
            # Table rebuilds (batch mode) need foreign keys off; check them before committing.
            migration_engines = create_engines(url, foreign_keys=False)
            try:
                _run(migration_engines, revision, check_foreign_keys=True)
            finally:
                migration_engines.dispose()
        else:
            _run(engines, revision)


def _refuse_unknown(found: str | None, head: str, url: URL) -> None:
    if found is None:
        return
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config())
    known = {rev.revision for rev in script.walk_revisions()}
    if found not in known:
        raise BackendError(
            f"The metadata database {url.render_as_string(hide_password=True)} is at schema "
            f"revision {found!r}, newer than this loopline knows (head {head!r}). "
            "Upgrade loopline to a version that knows this revision; the database was not changed."
        )


def _run(engines: Engines, revision: str, *, check_foreign_keys: bool = False) -> None:
    from alembic import command

    config = alembic_config()
    with engines.write.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
        if check_foreign_keys:
            broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise BackendError(
                    f"A metadata migration left rows with broken foreign keys: {broken[:5]}. "
                    "It was rolled back; report this as a loopline bug."
                )


@contextlib.contextmanager
def _migration_lock(url: URL, engines: Engines) -> Iterator[None]:
    if engines.dialect == "sqlite":
        if url.database is None or is_memory_sqlite(url):  # pragma: no cover - guarded above
            yield
            return
        with _file_lock(Path(url.database).with_name(Path(url.database).name + ".migrate.lock")):
            yield
        return
    with engines.write.connect() as connection:
        connection = connection.execution_options(isolation_level="AUTOCOMMIT")
        _wait(
            lambda: bool(
                connection.execute(
                    text("SELECT pg_try_advisory_lock(:key)"), {"key": _PG_LOCK_KEY}
                ).scalar()
            ),
            what="the PostgreSQL migration advisory lock",
        )
        try:
            yield
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _PG_LOCK_KEY})


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:

        def try_lock() -> bool:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            return True

        _wait(try_lock, what=f"the migration lock file {path}")
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _wait(attempt: Callable[[], bool], *, what: str) -> None:
    """Call ``attempt`` until it returns True, with backoff, for at most LOCK_TIMEOUT_S."""
    deadline = time.monotonic() + LOCK_TIMEOUT_S
    delay = 0.01
    while not attempt():
        if time.monotonic() >= deadline:
            raise StepTimeoutError(
                f"Waited {LOCK_TIMEOUT_S:.0f} s for {what}; another process is migrating the "
                "metadata database or died holding the lock. Retry, or check that process."
            )
        time.sleep(delay)
        delay = min(delay * 2, 0.5)
