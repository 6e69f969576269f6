"""Trigger stores: the same behaviour in memory and in the metadata database (SQLite, and
PostgreSQL when LOOPLINE_TEST_DATABASE_URL is set)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.triggers.helpers import trigger

from loopline.errors import ConflictError, NotFoundError
from loopline.metadata import open_store
from loopline.triggers import InMemoryTriggerStore, RunState, SqlTriggerStore, TriggerStore
from loopline.triggers.run import RunChange


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TriggerStore]:
    if request.param == "memory":
        yield InMemoryTriggerStore()
        return
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'meta.db'}"
    else:
        url = os.environ.get("LOOPLINE_TEST_DATABASE_URL", "")
        if not url:
            pytest.skip("PostgreSQL tests need LOOPLINE_TEST_DATABASE_URL (scripts/postgres.sh).")
    meta = open_store(url)  # migrates: creates the tables
    sql = SqlTriggerStore(meta.engine)  # type: ignore[attr-defined]
    if request.param == "postgres":  # a shared database may hold rows of an earlier test
        from sqlalchemy import delete

        from loopline.triggers.sql_store import run_keys, runs, triggers

        with meta.engine.begin() as conn:  # type: ignore[attr-defined]
            for table in (run_keys, runs, triggers):
                conn.execute(delete(table))
    yield sql
    meta.close()


def new_run(store: TriggerStore, *keys: str, model: str = "taxi", name: str = "retrain") -> int:
    return store.create_run(
        trigger=name,
        model=model,
        keys=list(keys),
        params={"span": 1},
        cause={"summary": "span 1 arrived"},
        detail={"pipeline": "p.py"},
        now=10.0,
    ).id


def finish(store: TriggerStore, run_id: int, state: RunState = RunState.SUCCEEDED) -> None:
    store.update_run(run_id, RunState.PENDING, RunChange(state=RunState.RUNNING), 11.0)
    store.update_run(run_id, RunState.RUNNING, RunChange(state=state, ended_at=12.0), 12.0)


def test_applying_creates_then_configures_then_is_unchanged(store: TriggerStore) -> None:
    stored, outcome = store.apply(trigger(), now=1.0)
    assert (outcome, stored.generation, stored.cursor) == ("created", 1, None)
    assert store.apply(trigger(), now=2.0)[1] == "unchanged"
    store.set_cursor("retrain", 41)
    stored, outcome = store.apply(trigger(cooldown="5m"), now=3.0)
    assert (outcome, stored.generation, stored.created_at) == ("configured", 2, 1.0)
    assert store.get("retrain").cursor == 41  # the source did not change: the cursor stays
    on = {"newSpan": {"inputDir": "elsewhere", "pattern": "span-{SPAN}/*.csv"}}
    store.apply(trigger(on, cooldown="5m"), now=4.0)
    assert store.get("retrain").cursor is None  # another source: read it from a baseline
    assert store.get("retrain").spec == trigger(on, cooldown="5m")


def test_a_missing_trigger_is_named_with_the_known_ones(store: TriggerStore) -> None:
    store.apply(trigger(name="a"), now=1.0)
    store.apply(trigger(name="b"), now=1.0)
    assert [t.spec.name for t in store.list()] == ["a", "b"]
    with pytest.raises(
        NotFoundError, match=r"Trigger 'c' does not exist; known triggers: \['a', 'b'\]"
    ):
        store.get("c")
    with pytest.raises(NotFoundError, match=r"Trigger 'c'"):
        store.set_cursor("c", 1)
    store.delete("a")
    with pytest.raises(NotFoundError, match=r"known triggers: \['b'\]"):
        store.delete("a")


def test_a_consumed_key_is_never_reserved_twice(store: TriggerStore) -> None:
    first = new_run(store, "span:41", "span:40")
    finish(store, first)
    with pytest.raises(
        ConflictError, match=r"Trigger 'retrain': span:40 was already consumed by run"
    ):
        new_run(store, "span:42", "span:40")
    assert store.used_keys("retrain") == {"span:41": first, "span:40": first}
    assert new_run(store, "span:40", name="other") > first  # keys are per trigger


def test_one_run_per_model_is_in_flight_at_a_time(store: TriggerStore) -> None:
    first = new_run(store, "span:1")
    with pytest.raises(ConflictError, match=rf"Model 'taxi' has trigger run {first} in flight"):
        new_run(store, "span:2", name="other")
    bike = new_run(store, "span:7", model="bike")  # another model is free
    finish(store, first, RunState.FAILED)
    second = new_run(store, "span:2")
    assert [r.id for r in store.list_runs(active=True)] == [second, bike]


def test_a_run_moves_by_compare_and_set_through_allowed_states(store: TriggerStore) -> None:
    run_id = new_run(store, "span:1")
    run = store.update_run(
        run_id,
        RunState.PENDING,
        RunChange(state=RunState.RUNNING, process={"pid": 12}, detail={"a": 1}),
        11.0,
    )
    assert (run.state, run.process, run.updated_at) == (RunState.RUNNING, {"pid": 12}, 11.0)
    with pytest.raises(ConflictError, match=r"is running, not pending; someone else moved it on"):
        store.update_run(run_id, RunState.PENDING, RunChange(state=RunState.FAILED), 12.0)
    with pytest.raises(ConflictError, match=r"cannot become promoted \(allowed: "):
        store.update_run(run_id, RunState.RUNNING, RunChange(state=RunState.PROMOTED), 12.0)
    run = store.update_run(
        run_id,
        RunState.RUNNING,
        RunChange(state=RunState.ROLLING_OUT, detail={"b": 2}, message="rolling"),
        13.0,
    )
    assert run.detail == {"pipeline": "p.py", "a": 1, "b": 2}
    assert store.get_run(run_id) == run
    assert run.to_dict()["state"] == "rollingOut"
    with pytest.raises(NotFoundError, match=r"Trigger run 999 does not exist"):
        store.get_run(999)


def test_runs_list_newest_first_by_trigger_and_limit(store: TriggerStore) -> None:
    ids = []
    for n in range(3):
        ids.append(new_run(store, f"span:{n}"))
        finish(store, ids[-1])
    other = new_run(store, "span:9", name="other", model="bike")
    assert [r.id for r in store.list_runs()] == [other, *reversed(ids)]
    assert [r.id for r in store.list_runs(trigger="retrain", limit=2)] == [ids[2], ids[1]]
    assert [r.id for r in store.list_runs(active=True)] == [other]
    assert store.get_run(ids[0]).ended_at == 12.0


def test_runs_and_keys_survive_reopening_the_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'meta.db'}"
    meta = open_store(url)
    store = SqlTriggerStore(meta.engine)  # type: ignore[attr-defined]
    run_id = new_run(store, "span:1")
    meta.close()
    meta = open_store(url)
    again = SqlTriggerStore(meta.engine)  # type: ignore[attr-defined]
    assert again.get_run(run_id).state is RunState.PENDING
    with pytest.raises(ConflictError, match=r"span:1 was already consumed"):
        new_run(again, "span:1")
    meta.close()
