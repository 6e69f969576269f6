from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from loopline.deploy.manager import DeploymentManager
from loopline.deploy.sql_state import SqlDeploymentStateStore
from loopline.deploy.state import DeploymentStateStore
from loopline.deploy.status import ConditionType, Reason
from loopline.errors import ConfigurationError
from loopline.metadata import open_store
from loopline.metadata.memory import InMemoryMetadataStore
from loopline.metadata.sql import create_engines
from loopline.testing.deploy import (
    DeploymentStateStoreContract,
    FakeClock,
    FakeEngine,
    FakeRouting,
    make_spec,
)


class TestSqliteStateStore(DeploymentStateStoreContract):
    __test__ = True

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[DeploymentStateStore]:
        meta = open_store(f"sqlite:///{tmp_path / 'meta.db'}")  # migrates: creates the tables
        yield SqlDeploymentStateStore.from_metadata(meta)
        meta.close()


@pytest.fixture(scope="module")
def postgres_database() -> Iterator[str]:
    """A migrated PostgreSQL database of this module's own (LOOPLINE_TEST_DATABASE_URL)."""
    url = os.environ.get("LOOPLINE_TEST_DATABASE_URL")
    if not url:
        pytest.skip("PostgreSQL tests need LOOPLINE_TEST_DATABASE_URL (scripts/postgres.sh).")
    base = make_url(url).set(drivername="postgresql+psycopg")
    name = f"loopline_d_{uuid.uuid4().hex[:12]}"
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
class TestPostgresStateStore(DeploymentStateStoreContract):
    __test__ = True

    @pytest.fixture
    def store(self, postgres_database: str) -> Iterator[DeploymentStateStore]:
        meta = open_store(postgres_database)
        store = SqlDeploymentStateStore.from_metadata(meta)
        with store.engine.begin() as conn:
            conn.execute(text("TRUNCATE deploy_replicas, deploy_revisions, deploy_deployments"))
        yield store
        meta.close()


@pytest.mark.parametrize(
    ("module", "ours"),
    [
        (
            "loopline.deploy.sql_state",
            {"deploy_deployments", "deploy_revisions", "deploy_replicas"},
        ),
        ("loopline.deploy.template_store", {"deploy_analysis_templates"}),
        ("loopline.deploy.sql_lease", {"controller_leases"}),
    ],
)
def test_the_mapped_tables_match_what_the_migrations_create(
    tmp_path: Path, module: str, ours: set[str]
) -> None:
    import importlib

    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    schema = importlib.import_module(module).schema

    url = f"sqlite:///{tmp_path / 'meta.db'}"
    open_store(url).close()
    engines = create_engines(url)
    try:
        with engines.read.connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection), schema)
    finally:
        engines.dispose()

    def table_of(entry: Any) -> str:
        if isinstance(entry, list):  # column modifications come as lists of tuples
            entry = entry[0]
        kind, item = entry[0], entry[1]
        if kind.endswith("_table"):
            return str(item.name)
        if kind.endswith(("_index", "_constraint")):
            return str(item.table.name)
        return str(entry[2])  # (kind, schema, table, column, ...)

    assert [d for d in diff if table_of(d) in ours] == []


def test_a_database_without_the_migrations_is_a_clear_backend_error(tmp_path: Path) -> None:
    from loopline.errors import BackendError

    engines = create_engines(f"sqlite:///{tmp_path / 'bare.db'}")
    try:
        with pytest.raises(BackendError):
            SqlDeploymentStateStore(engines.write).list_deployments()
    finally:
        engines.dispose()


def test_state_survives_a_new_store_on_the_same_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'meta.db'}"
    clock, engine, routing = FakeClock(), FakeEngine(), FakeRouting()
    meta = open_store(url)
    store = SqlDeploymentStateStore.from_metadata(meta)
    manager = DeploymentManager(store=store, engine=engine, routing=routing, clock=clock,
                                background_stops=False)  # fmt: skip
    manager.apply(make_spec(replicas=2))
    for _ in range(3):
        clock.advance(1)
        manager.sync("web")
    again = SqlDeploymentStateStore.from_metadata(open_store(url))  # a restarted control plane
    d = again.get_deployment("web")
    assert d.status.available_replicas == 2 and d.router is not None
    cond = d.status.condition(ConditionType.PROGRESSING)
    assert cond is not None and cond.reason == Reason.NEW_REVISION_AVAILABLE
    assert again.list_replicas("web") == store.list_replicas("web")
    assert again.list_revisions("web") == store.list_revisions("web")


def test_needs_a_sql_metadata_store() -> None:
    with pytest.raises(ConfigurationError, match="needs a SQL metadata store, got object"):
        SqlDeploymentStateStore.from_metadata(object())


def test_works_on_the_in_memory_metadata_store() -> None:
    store = SqlDeploymentStateStore.from_metadata(InMemoryMetadataStore())
    store.apply_spec(make_spec(), 1.0)
    assert [d.name for d in store.list_deployments()] == ["web"]
