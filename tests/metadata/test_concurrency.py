"""Several OS processes hammering one database with short write transactions."""

from __future__ import annotations

import multiprocessing
from functools import partial

import pytest

from loopline.metadata import ArtifactState, ExecutionState, open_store
from loopline.testing.metadata_processes import hammer_store

WORKERS = 4
ROUNDS = 25


def _hammer(url: str) -> None:
    with multiprocessing.get_context("spawn").Pool(WORKERS) as pool:
        work = pool.map_async(
            partial(hammer_store, url, rounds=ROUNDS), range(WORKERS), chunksize=1
        )
        results = work.get(timeout=240)
    versions = sorted(v for worker in results for v in worker)
    assert versions == list(range(1, WORKERS * ROUNDS + 1))
    store = open_store(url)
    try:
        assert [v.version for v in store.list_model_versions("shared")] == versions
        executions = store.list_executions(type_name="Trainer")
        assert len(executions) == WORKERS * ROUNDS
        assert {e.state for e in executions} == {ExecutionState.COMPLETE}
        assert len(store.list_artifacts(type_name="Model", state=ArtifactState.LIVE)) == len(
            executions
        )
        assert len(store.list_contexts(type_name="Experiment")) == 1
        for worker in range(WORKERS):
            assert store.find_cached_execution(f"w{worker}") is not None
    finally:
        store.close()


def test_processes_writing_one_sqlite_file_never_fail(sqlite_url: str) -> None:
    _hammer(sqlite_url)


@pytest.mark.postgres
def test_processes_writing_one_postgres_database_never_fail(postgres_url: str) -> None:
    _hammer(postgres_url)
