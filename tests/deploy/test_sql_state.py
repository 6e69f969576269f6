from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

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
        engines = create_engines(f"sqlite:///{tmp_path / 'meta.db'}")
        yield SqlDeploymentStateStore(engines.write)
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
