"""AnalysisTemplate stores: the same behaviour in memory and in the metadata database."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from loopline.deploy.analysis import AnalysisTemplate
from loopline.deploy.template_store import (
    AnalysisTemplateStore,
    InMemoryAnalysisTemplateStore,
    SqlAnalysisTemplateStore,
)
from loopline.errors import NotFoundError
from loopline.metadata import open_store


def template(name: str = "quality", threshold: float = 0.95) -> AnalysisTemplate:
    return AnalysisTemplate.from_dict(
        {
            "apiVersion": "loopline/v1",
            "kind": "AnalysisTemplate",
            "metadata": {"name": name},
            "spec": {
                "metrics": [
                    {
                        "name": "agreement",
                        "successCondition": f"result >= {threshold}",
                        "provider": {"agreement": {}},
                    }
                ]
            },
        }
    )


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AnalysisTemplateStore]:
    if request.param == "memory":
        yield InMemoryAnalysisTemplateStore()
        return
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'meta.db'}"
    else:
        url = os.environ.get("LOOPLINE_TEST_DATABASE_URL", "")
        if not url:
            pytest.skip("PostgreSQL tests need LOOPLINE_TEST_DATABASE_URL (scripts/postgres.sh).")
    meta = open_store(url)  # migrates: creates the table
    sql = SqlAnalysisTemplateStore(meta.engine)  # type: ignore[attr-defined]
    for stored in sql.list():  # a shared PostgreSQL may hold templates of an earlier test
        sql.delete(stored.template.name)
    yield sql
    meta.close()


def test_applying_creates_then_configures_then_is_unchanged(store: AnalysisTemplateStore) -> None:
    first, outcome = store.apply(template(), 100.0)
    assert outcome == "created" and first.generation == 1
    same, outcome = store.apply(template(), 200.0)
    assert outcome == "unchanged" and same.generation == 1
    changed, outcome = store.apply(template(threshold=0.9), 300.0)
    assert outcome == "configured" and changed.generation == 2
    assert changed.created_at == 100.0
    assert store.get("quality").template == template(threshold=0.9)


def test_templates_list_by_name_and_find_leaves_out_missing_ones(
    store: AnalysisTemplateStore,
) -> None:
    store.apply(template("b"), 1.0)
    store.apply(template("a"), 1.0)
    assert [t.template.name for t in store.list()] == ["a", "b"]
    assert set(store.find({"a", "zzz"})) == {"a"}


def test_a_missing_template_is_named_with_the_known_ones(store: AnalysisTemplateStore) -> None:
    store.apply(template("known"), 1.0)
    with pytest.raises(NotFoundError, match=r"'nope' does not exist; known templates: \['known'\]"):
        store.get("nope")
    with pytest.raises(NotFoundError, match="'nope' does not exist"):
        store.delete("nope")
    store.delete("known")
    assert store.list() == []


def test_a_stored_template_round_trips_every_field(store: AnalysisTemplateStore) -> None:
    t = template()
    rich = replace(t, labels=(("team", "taxi"),))
    store.apply(rich, 1.0)
    assert store.get("quality").template == rich
