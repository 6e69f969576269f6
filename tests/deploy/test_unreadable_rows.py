"""A stored record this version refuses (``sampleRate: NaN`` written before specs refused
it) costs only its own deployment: the others are listed and reconciled, and the bad one is
reported by name (issue #11)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import text

from loopline.deploy.manager import DeploymentManager
from loopline.deploy.spec import DeploymentSpec
from loopline.deploy.sql_state import SqlDeploymentStateStore
from loopline.errors import ConflictError
from loopline.metadata import open_store
from loopline.metadata.store import MetadataStore
from loopline.testing.deploy import FakeClock, FakeEngine, FakeRouting, make_spec


@pytest.fixture
def metadata(tmp_path: Path) -> Iterator[MetadataStore]:
    meta = open_store(f"sqlite:///{tmp_path / 'meta.db'}")
    yield meta
    meta.close()


def _manager(store: SqlDeploymentStateStore, clock: FakeClock) -> DeploymentManager:
    return DeploymentManager(store=store, engine=FakeEngine(), routing=FakeRouting(),
                             clock=clock, background_stops=False)  # fmt: skip


def _poison(metadata: MetadataStore, table: str, column: str, name: str) -> None:
    """Rewrite a stored document as an older version wrote it: sampleRate NaN."""
    engine = metadata.engine  # type: ignore[attr-defined]
    key = "name" if table == "deploy_deployments" else "deployment"
    with engine.begin() as conn:
        rows = conn.execute(
            text(f"SELECT rowid, {column} FROM {table} WHERE {key} = :n"), {"n": name}
        ).all()
        for rowid, raw in rows:
            doc = json.loads(raw)
            tpl = doc["spec"]["template"] if column == "spec" else doc["template"]
            tpl["logging"]["sampleRate"] = math.nan
            conn.execute(
                text(f"UPDATE {table} SET {column} = :v WHERE rowid = :r"),
                {"v": json.dumps(doc), "r": rowid},
            )


def _make_two(metadata: MetadataStore) -> tuple[SqlDeploymentStateStore, DeploymentManager]:
    store = SqlDeploymentStateStore.from_metadata(metadata)
    clock = FakeClock()
    manager = _manager(store, clock)
    for name in ("good", "bad"):
        manager.apply(_named(name))
    for _ in range(3):
        clock.advance(1)
        manager.sync_all()
    return store, manager


def _named(name: str) -> DeploymentSpec:
    return replace(make_spec(replicas=1), name=name)


def test_a_spec_row_holding_nan_leaves_the_other_deployments_listed_and_reconciled(
    metadata: MetadataStore,
) -> None:
    _make_two(metadata)
    _poison(metadata, "deploy_deployments", "spec", "bad")
    fresh = SqlDeploymentStateStore.from_metadata(metadata)
    assert [d.name for d in fresh.list_deployments()] == ["good"]
    assert [s.name for s in fresh.snapshot_all()] == ["good"]
    assert "sampleRate = nan" in fresh.unreadable()["bad"]
    with pytest.raises(ConflictError, match=r"Deployment 'bad' is stored in a form .* apply"):
        fresh.get_deployment("bad")
    # the loop goes on with the readable one
    results = _manager(fresh, FakeClock()).sync_all()
    assert [r.name for r in results] == ["good"]
    # a corrected spec applied over it makes it readable again
    fresh.apply_spec(_named("bad"), 1.0)
    assert fresh.get_deployment("bad").generation == 2
    assert [d.name for d in fresh.list_deployments()] == ["bad", "good"]
    assert fresh.unreadable() == {}


def test_a_revision_row_holding_nan_is_left_out_then_written_again_from_the_spec(
    metadata: MetadataStore,
) -> None:
    _make_two(metadata)
    _poison(metadata, "deploy_revisions", "data", "bad")
    fresh = SqlDeploymentStateStore.from_metadata(metadata)
    snaps = {s.name: s for s in fresh.snapshot_all()}
    assert set(snaps) == {"bad", "good"}
    assert snaps["bad"].revisions == ()
    assert "bad" not in fresh.unreadable()
    clock = FakeClock()
    manager = _manager(fresh, clock)
    for _ in range(3):
        clock.advance(1)
        manager.sync_all()
    again = fresh.snapshot("bad")
    assert [r.template.logging.sample_rate for r in again.revisions] == [1.0]
    assert len(again.replicas) == 1
