"""The cost model of a lineage walk, counted in SQL statements rather than timed: one per hop
that has a frontier plus one per node kind, whatever the size of the store
(``benchmarks/lineage.py`` has the timings)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event

from loopline.metadata import Direction, MetadataStore, open_store
from loopline.metadata.sql import SqlMetadataStore
from loopline.testing.metadata import build_pipeline_graph


@pytest.fixture
def store(sqlite_url: str) -> Iterator[MetadataStore]:
    opened = open_store(sqlite_url)
    yield opened
    opened.close()


def _selects(store: MetadataStore, **query: Any) -> list[str]:
    """The SELECT statements SQLite ran for one ``lineage`` call."""
    assert isinstance(store, SqlMetadataStore)
    statements: list[str] = []
    store.engine.dispose()  # new connections, traced from their first statement

    @event.listens_for(store.engine, "connect")
    def _trace(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.set_trace_callback(statements.append)

    store.lineage(**query)
    event.remove(store.engine, "connect", _trace)
    store.engine.dispose()
    return [s for s in statements if s.lstrip().upper().startswith("SELECT")]


def test_an_upstream_walk_runs_one_statement_per_hop_and_one_per_node_kind(
    store: MetadataStore,
) -> None:
    ids = build_pipeline_graph(store).ids
    # a6 ← e4 ← a3 a4 a5 ← e2 e3 ← a1 a2 ← e1: five hops with a frontier.
    selects = _selects(store, artifact_id=ids["a6"], hops=5)
    assert [s.split(" FROM ")[1].split()[0] for s in selects] == ["events"] * 5 + [
        "artifacts",
        "executions",
    ]
    # Past the graph's depth the walk stops when the frontier is empty, not at ``hops``.
    assert len(_selects(store, artifact_id=ids["a6"], hops=1000)) == 6 + 2


def test_a_both_ways_walk_is_two_walks_and_one_fetch_per_node_kind(
    store: MetadataStore,
) -> None:
    ids = build_pipeline_graph(store).ids
    selects = _selects(store, artifact_id=ids["a9"], direction=Direction.BOTH, hops=5)
    # a9 has no producer (1 statement up) and one reader whose output nobody reads (3 down).
    assert len(selects) == 1 + 3 + 2
