"""SQLite engine settings: WAL, busy timeout, foreign keys, BEGIN IMMEDIATE, shared memory."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from loopline.metadata import InMemoryMetadataStore, SqlMetadataStore, open_store
from loopline.metadata.sql import create_engines


def test_sqlite_connections_use_wal_busy_timeout_and_foreign_keys(tmp_path: Path) -> None:
    engines = create_engines(f"sqlite:///{tmp_path / 'm.db'}")
    with engines.write.connect() as connection:
        pragmas = {
            name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()
            for name in ("journal_mode", "busy_timeout", "foreign_keys", "synchronous")
        }
    engines.dispose()
    assert pragmas == {
        "journal_mode": "wal",
        "busy_timeout": 30000,
        "foreign_keys": 1,
        "synchronous": 1,  # NORMAL
    }


def test_a_writer_waits_for_another_writer_and_readers_do_not(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    store = open_store(url)
    first = store.put_artifact("Examples", "u")
    engines = create_engines(url)
    wrote_at: list[float] = []

    def write() -> None:
        store.put_artifact("Examples", "v")
        wrote_at.append(time.monotonic())

    with engines.write.connect() as holder:
        holder.exec_driver_sql("SELECT 1")  # BEGIN IMMEDIATE: holds the write lock from here
        writer = threading.Thread(target=write)
        writer.start()
        time.sleep(0.5)
        assert wrote_at == []  # blocked on the lock, not failed
        assert store.get_artifact(first.id) == first  # WAL: reads go on meanwhile
        released_at = time.monotonic()
        holder.commit()
    writer.join(timeout=30)
    assert wrote_at and wrote_at[0] >= released_at
    assert len(store.list_artifacts()) == 2
    engines.dispose()
    store.close()


def test_in_memory_store_is_shared_across_threads() -> None:
    store = InMemoryMetadataStore()
    ids: list[int] = []
    threads = [
        threading.Thread(target=lambda: ids.append(store.put_artifact("Examples", "u").id))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(ids) == list(range(1, 9))
    assert len(store.list_artifacts()) == 8
    store.close()


def test_a_locked_database_is_retried_with_backoff_until_the_lock_goes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    open_store(url).close()
    # SQLite gives up waiting after 50 ms, so "database is locked" reaches the store's retry.
    impatient = SqlMetadataStore(create_engines(url, busy_timeout=0.05).write)
    holder_engines = create_engines(url)
    with holder_engines.write.connect() as holder:
        holder.exec_driver_sql("SELECT 1")  # holds the write lock
        timer = threading.Timer(0.8, holder.commit)
        timer.start()
        began = time.monotonic()
        artifact = impatient.put_artifact("Examples", "u")
        waited = time.monotonic() - began
        timer.join()
    assert waited >= 0.7  # it did wait for the holder, through several failed attempts
    assert impatient.get_artifact(artifact.id) == artifact
    holder_engines.dispose()
    impatient.close()
