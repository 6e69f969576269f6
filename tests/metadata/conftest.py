"""Fixtures for metadata store tests: fresh SQLite files and, when configured, PostgreSQL."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from loopline.metadata import open_store

PG_ENV = "LOOPLINE_TEST_DATABASE_URL"
TABLES = (
    "model_aliases",
    "model_versions",
    "metrics",
    "associations",
    "attributions",
    "events",
    "contexts",
    "executions",
    "artifacts",
)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated, empty SQLite file; tests copy it instead of migrating each time."""
    path = tmp_path_factory.mktemp("template") / "metadata.db"
    open_store(f"sqlite:///{path}").close()
    return path


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    path = tmp_path / "metadata.db"
    shutil.copyfile(sqlite_template, path)
    return f"sqlite:///{path}"


def postgres_base_url() -> str:
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(f"PostgreSQL tests need {PG_ENV} (start one with scripts/postgres.sh).")
    return url


@pytest.fixture(scope="module")
def postgres_database() -> Iterator[str]:
    """A database of its own for one test module, dropped afterwards. Yields its URL."""
    base = make_url(postgres_base_url()).set(drivername="postgresql+psycopg")
    name = f"loopline_t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def postgres_url(postgres_database: str) -> str:
    """The module's PostgreSQL database, migrated and with every table emptied."""
    open_store(postgres_database).close()
    engine = create_engine(make_url(postgres_database))
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return postgres_database
