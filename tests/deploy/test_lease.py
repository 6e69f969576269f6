"""The controllers' lease: free, held, renewed, expired, taken over — pure and on SQLite."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from loopline.deploy.lease import CONTROLLERS, InMemoryLeaseStore, Lease, LeaseStore, may_take
from loopline.deploy.sql_lease import SqlLeaseStore
from loopline.metadata import open_store


def test_may_take_a_free_an_expired_or_an_own_lease_only() -> None:
    held = Lease(CONTROLLERS, "a", "A", acquired_at=0.0, renewed_at=0.0, expires_at=15.0)
    assert may_take(None, "b", 1.0)
    assert may_take(held, "a", 1.0)
    assert not may_take(held, "b", 14.9)
    assert may_take(held, "b", 15.0)
    assert may_take(Lease(CONTROLLERS, "", "", 0.0, 0.0, 0.0), "b", 0.0)


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LeaseStore]:
    if request.param == "memory":
        yield InMemoryLeaseStore()
        return
    meta = open_store(f"sqlite:///{tmp_path / 'meta.db'}")
    yield SqlLeaseStore(meta.engine)  # type: ignore[attr-defined]
    meta.close()


def test_one_holder_at_a_time_until_the_lease_expires(store: LeaseStore) -> None:
    a = store.acquire(CONTROLLERS, "a", "pid 1", now=100.0, ttl=15.0)
    assert a.held_by("a", 100.0) and a.expires_at == 115.0
    b = store.acquire(CONTROLLERS, "b", "pid 2", now=105.0, ttl=15.0)
    assert b.holder == "a" and b.description == "pid 1"  # refused: still a's
    renewed = store.acquire(CONTROLLERS, "a", "pid 1", now=110.0, ttl=15.0)
    assert (renewed.acquired_at, renewed.expires_at) == (100.0, 125.0)
    assert store.acquire(CONTROLLERS, "b", "pid 2", now=124.9, ttl=15.0).holder == "a"
    taken = store.acquire(CONTROLLERS, "b", "pid 2", now=125.0, ttl=15.0)
    assert taken.holder == "b" and taken.acquired_at == 125.0
    assert store.acquire(CONTROLLERS, "a", "pid 1", now=126.0, ttl=15.0).holder == "b"


def test_a_released_lease_is_free_at_once_and_only_its_holder_may_release_it(
    store: LeaseStore,
) -> None:
    store.acquire(CONTROLLERS, "a", "pid 1", now=100.0, ttl=15.0)
    store.release(CONTROLLERS, "b")
    assert store.acquire(CONTROLLERS, "b", "pid 2", now=101.0, ttl=15.0).holder == "a"
    store.release(CONTROLLERS, "a")
    assert store.acquire(CONTROLLERS, "b", "pid 2", now=101.0, ttl=15.0).holder == "b"


def test_racing_takers_of_an_expired_lease_end_with_exactly_one_holder(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'meta.db'}"
    open_store(url).close()
    metas = [open_store(url) for _ in range(4)]  # one engine each, as separate processes
    stores = [SqlLeaseStore(m.engine) for m in metas]  # type: ignore[attr-defined]
    try:
        stores[0].acquire(CONTROLLERS, "old", "gone", now=0.0, ttl=1.0)
        start = threading.Barrier(len(stores))
        won: list[str] = []

        def take(i: int) -> None:
            start.wait()
            lease = stores[i].acquire(CONTROLLERS, f"h{i}", f"pid {i}", now=10.0, ttl=15.0)
            if lease.holder == f"h{i}":
                won.append(lease.holder)

        threads = [threading.Thread(target=take, args=(i,)) for i in range(len(stores))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert len(won) == 1
        assert stores[0].get(CONTROLLERS).holder == won[0]  # type: ignore[union-attr]
    finally:
        for m in metas:
            m.close()
