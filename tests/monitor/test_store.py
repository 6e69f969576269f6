"""MonitorStore backends: in memory, SQLite and (with LOOPLINE_TEST_DATABASE_URL) PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from loopline.errors import ConfigurationError
from loopline.metadata import open_store
from loopline.metadata.sql import create_engines
from loopline.monitor import InMemoryMonitorStore, MonitorStore, SqlMonitorStore
from loopline.testing.monitor import MonitorStoreContract


class TestInMemoryMonitorStore(MonitorStoreContract):
    __test__ = True

    @pytest.fixture
    def store(self) -> MonitorStore:
        return InMemoryMonitorStore()


class TestSqliteMonitorStore(MonitorStoreContract):
    __test__ = True

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[MonitorStore]:
        meta = open_store(f"sqlite:///{tmp_path / 'meta.db'}")  # migrates: creates the tables
        yield SqlMonitorStore.from_metadata(meta)
        meta.close()


@pytest.fixture(scope="module")
def postgres_database() -> Iterator[str]:
    """A migrated PostgreSQL database of this module's own (LOOPLINE_TEST_DATABASE_URL)."""
    url = os.environ.get("LOOPLINE_TEST_DATABASE_URL")
    if not url:
        pytest.skip("PostgreSQL tests need LOOPLINE_TEST_DATABASE_URL (scripts/postgres.sh).")
    base = make_url(url).set(drivername="postgresql+psycopg")
    name = f"loopline_m_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        db = base.set(database=name).render_as_string(hide_password=False)
        open_store(db).close()
        yield db
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.mark.postgres
class TestPostgresMonitorStore(MonitorStoreContract):
    __test__ = True

    @pytest.fixture
    def store(self, postgres_database: str) -> Iterator[MonitorStore]:
        meta = open_store(postgres_database)
        store = SqlMonitorStore.from_metadata(meta)
        with store.engine.begin() as conn:
            conn.execute(
                text(
                    "TRUNCATE monitor_alerts, monitor_windows, monitor_segments, "
                    "monitor_state, monitor_specs"
                )
            )
        yield store
        meta.close()


def test_the_mapped_tables_match_what_the_migration_creates(tmp_path: Path) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from loopline.monitor.sql_store import schema

    url = f"sqlite:///{tmp_path / 'meta.db'}"
    open_store(url).close()
    engines = create_engines(url)
    try:
        with engines.read.connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection), schema)
    finally:
        engines.dispose()
    ours = set(schema.tables)

    def table_of(entry: Any) -> str:
        if isinstance(entry, list):
            entry = entry[0]
        kind, item = entry[0], entry[1]
        if kind.endswith("_table"):
            return str(item.name)
        if kind.endswith(("_index", "_constraint")):
            return str(item.table.name)
        return str(entry[2])

    assert [d for d in diff if table_of(d) in ours] == []


def test_needs_a_sql_metadata_store() -> None:
    with pytest.raises(ConfigurationError, match="Monitor state needs a SQL metadata store"):
        SqlMonitorStore.from_metadata(object())
