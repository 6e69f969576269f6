"""Migrations: empty database to head on both backends, newer revisions refused, races."""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from loopline.errors import BackendError
from loopline.metadata import open_store
from loopline.metadata.sql.engine import create_engines
from loopline.metadata.sql.migrate import alembic_config, current_revision, head_revision
from loopline.metadata.sql.schema import Base
from loopline.testing.metadata_processes import open_and_put_artifact

OUR_TABLES = set(Base.metadata.tables)


def _revision_of(url: str) -> str | None:
    engines = create_engines(url)
    try:
        with engines.read.connect() as connection:
            return current_revision(connection)
    finally:
        engines.dispose()


def _schema_diff(url: str) -> list[Any]:
    """Differences between the ORM tables and the migrated database (ours only)."""
    engines = create_engines(url)
    try:
        with engines.read.connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    finally:
        engines.dispose()

    def ours(entry: Any) -> bool:
        item = entry[0] if isinstance(entry, list) else entry
        for part in item[1:]:
            table = getattr(part, "table", None)
            name = getattr(part, "name", None) if table is None else table.name
            if isinstance(part, str) and part in OUR_TABLES:
                return True
            if name in OUR_TABLES:
                return True
        return False

    return [entry for entry in diff if ours(entry)]


def test_revisions_form_one_chain_starting_at_0001() -> None:
    script = ScriptDirectory.from_config(alembic_config())
    chain = [rev.revision for rev in script.walk_revisions()][::-1]
    assert chain[0] == "0001"
    assert script.get_revision("0001").down_revision is None
    assert len(script.get_heads()) == 1 and chain[-1] == head_revision()


def test_upgrades_an_empty_sqlite_database_to_head(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'nested' / 'dir' / 'metadata.db'}"
    open_store(url).close()
    assert _revision_of(url) == head_revision()
    engine = create_engine(url)
    assert OUR_TABLES <= set(inspect(engine).get_table_names())
    engine.dispose()
    assert _schema_diff(url) == []


def test_reopening_at_head_changes_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'metadata.db'}"
    store = open_store(url)
    artifact = store.put_artifact("Examples", "u")
    store.close()
    store = open_store(url)
    assert store.get_artifact(artifact.id) == artifact
    store.close()


def test_downgrade_to_base_and_upgrade_again_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'metadata.db'}"
    open_store(url).close()
    engines = create_engines(url, foreign_keys=False)
    with engines.write.begin() as connection:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, "base")
    assert not OUR_TABLES & set(inspect(engines.write).get_table_names())
    engines.dispose()
    open_store(url).close()
    assert _revision_of(url) == head_revision()


def test_refuses_a_database_newer_than_the_code(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'metadata.db'}"
    open_store(url).close()
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    with pytest.raises(BackendError, match="at schema revision '9999', newer than this loopline"):
        open_store(url)
    assert _revision_of(url) == "9999"


def _open_in_processes(url: str, count: int = 4) -> list[int]:
    with multiprocessing.get_context("spawn").Pool(count) as pool:
        return pool.map_async(open_and_put_artifact, [url] * count, chunksize=1).get(timeout=120)


def test_concurrent_first_opens_by_several_processes_all_succeed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    ids = _open_in_processes(url)
    assert sorted(ids) == [1, 2, 3, 4]
    assert _revision_of(url) == head_revision()


@pytest.mark.postgres
def test_upgrades_an_empty_postgres_database_to_head(postgres_database: str) -> None:
    open_store(postgres_database).close()
    assert _revision_of(postgres_database) == head_revision()
    assert _schema_diff(postgres_database) == []


@pytest.mark.postgres
def test_downgrade_and_concurrent_upgrade_on_postgres(postgres_database: str) -> None:
    open_store(postgres_database).close()
    engines = create_engines(postgres_database)
    with engines.write.begin() as connection:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, "base")
    engines.dispose()
    assert _revision_of(postgres_database) is None
    ids = _open_in_processes(postgres_database)
    assert sorted(ids) == [1, 2, 3, 4]
    assert _revision_of(postgres_database) == head_revision()


@pytest.mark.postgres
def test_refuses_a_postgres_database_newer_than_the_code(postgres_database: str) -> None:
    open_store(postgres_database).close()
    engine = create_engine(make_url(postgres_database).set(drivername="postgresql+psycopg"))
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    try:
        with pytest.raises(BackendError, match="newer than this loopline"):
            open_store(postgres_database)
    finally:
        with engine.begin() as connection:
            connection.execute(
                text(f"UPDATE alembic_version SET version_num = '{head_revision()}'")
            )
        engine.dispose()


def test_the_newest_migration_file_name_is_alembics_head() -> None:
    from loopline.metadata.sql.migrate import head_revision, newest_file_revision

    assert newest_file_revision() == head_revision()
