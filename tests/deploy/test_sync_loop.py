"""The sync loop's transaction budget on the SQL store, its probe cadence and its hooks."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from loopline.deploy.engines.base import ProcessHandle
from loopline.deploy.manager import DeploymentManager, SyncResult
from loopline.deploy.replica import ReplicaPhase
from loopline.deploy.sql_state import SqlDeploymentStateStore
from loopline.deploy.state import InMemoryDeploymentStateStore
from loopline.deploy.writes import Write
from loopline.errors import BackendError
from loopline.metadata import open_store
from loopline.testing.artifacts import wait_for
from loopline.testing.deploy import (
    DeploymentSimulator,
    FakeClock,
    FakeEngine,
    FakeRouting,
    make_spec,
)


class Statements:
    """Every SQL statement the store's engine runs (BEGINs included), while recording."""

    def __init__(self, store: SqlDeploymentStateStore) -> None:
        self.seen: list[str] = []
        self.recording = False
        event.listen(store.engine, "before_cursor_execute", self._on_execute)

    def _on_execute(self, conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        if self.recording:
            self.seen.append(statement.strip().split()[0].upper() + _mode(statement))

    def count(self, kind: str) -> int:
        return sum(s == kind for s in self.seen)

    def writes(self) -> list[str]:
        return [s for s in self.seen if s in ("INSERT", "UPDATE", "DELETE")]


def _mode(statement: str) -> str:
    return " IMMEDIATE" if statement.strip().upper() == "BEGIN IMMEDIATE" else ""


@dataclass
class Loop:
    store: SqlDeploymentStateStore
    clock: FakeClock
    engine: FakeEngine
    manager: DeploymentManager
    sql: Statements

    def tick(self, seconds: float = 0.25) -> list[SyncResult]:
        self.clock.advance(seconds)
        return self.manager.sync_all()

    def settle(self) -> None:
        for _ in range(60):
            if not any(r.actions for r in self.tick()):
                return
        raise AssertionError("the deployments did not settle in 60 ticks")


@pytest.fixture
def loop(tmp_path: Path) -> Iterator[Loop]:
    meta = open_store(f"sqlite:///{tmp_path / 'meta.db'}")
    store = SqlDeploymentStateStore.from_metadata(meta)
    clock, engine = FakeClock(), FakeEngine()
    manager = DeploymentManager(store=store, engine=engine, routing=FakeRouting(), clock=clock,
                                background_stops=False)  # fmt: skip
    yield Loop(store, clock, engine, manager, Statements(store))
    meta.close()


def test_an_idle_tick_is_one_read_transaction_and_no_write(loop: Loop) -> None:
    loop.manager.apply(make_spec(replicas=3))
    loop.manager.apply(make_spec(replicas=2, name="api"))
    loop.settle()
    loop.sql.recording = True
    ticks = 40  # 10 s of fake time: every ready replica's readiness is probed meanwhile
    for _ in range(ticks):
        assert all(r.actions == () for r in loop.tick())
    assert loop.sql.count("BEGIN") == ticks  # deferred: a read never takes the write lock
    assert loop.sql.count("BEGIN IMMEDIATE") == 0
    assert loop.sql.writes() == []
    assert loop.sql.count("SELECT") == 3 * ticks  # deployments, revisions, replicas


def test_a_tick_that_changes_something_writes_once_per_changed_deployment(loop: Loop) -> None:
    loop.manager.apply(make_spec(replicas=3))
    loop.manager.apply(make_spec(replicas=2, name="api"))
    loop.settle()
    victim = loop.store.list_replicas("web")[0]
    loop.engine.kill(victim.id)
    loop.sql.recording = True
    for _ in range(5):  # a ready replica's process is polled every second
        loop.sql.seen.clear()
        changed = [r for r in loop.tick() if r.actions]
        if changed:
            break
    (web,) = changed
    # The exit is observed, the replica restarted and the status updated: one commit.
    assert web.name == "web"
    assert (loop.sql.count("BEGIN"), loop.sql.count("BEGIN IMMEDIATE")) == (1, 1)
    restarted = next(r for r in web.after.replicas if r.id == victim.id)
    assert restarted.restarts == 1 and restarted.phase is ReplicaPhase.PENDING
    assert loop.store.snapshot("web") == web.after


def test_a_read_does_not_wait_for_a_writer_holding_the_lock(loop: Loop, tmp_path: Path) -> None:
    loop.manager.apply(make_spec(replicas=1))
    writer = sqlite3.connect(tmp_path / "meta.db", isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # another process in the middle of a write
    read: list[object] = []
    thread = threading.Thread(target=lambda: read.append(loop.store.snapshot_all()))
    try:
        thread.start()
        # A read that needed the lock would wait out the 30 s busy timeout.
        wait_for(lambda: bool(read), timeout=10, what="a snapshot while the lock is held")
    finally:
        writer.execute("ROLLBACK")
        writer.close()
        thread.join()


class CountingEngine(FakeEngine):
    """Counts readiness probes per replica."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.probes: dict[str, int] = {}

    def probe_ready(self, handle: ProcessHandle, timeout: float) -> bool:
        proc = self._get(handle)
        if proc is not None:
            self.probes[proc.replica_id] = self.probes.get(proc.replica_id, 0) + 1
        return super().probe_ready(handle, timeout)


def test_ready_replicas_are_probed_once_per_period_and_pending_ones_every_tick() -> None:
    engine = CountingEngine()
    sim = DeploymentSimulator(make_spec(replicas=4), engine, ready_probe_period=10.0)
    sim.settle()
    engine.probes.clear()
    for _ in range(160):  # 40 s in ticks of 0.25 s: four periods
        sim.sync(seconds=0.25)
    assert sorted(engine.probes) == sorted(r.id for r in sim.live())
    assert all(3 <= n <= 5 for n in engine.probes.values()), engine.probes
    sim.apply(replicas=5)
    sim.sync(seconds=0.25)  # starts the fifth replica, not ready yet
    (new,) = [r.id for r in sim.live() if not r.ready]
    engine.set_ready(new, False)
    engine.probes.clear()
    for _ in range(8):
        sim.sync(seconds=0.25)
    assert engine.probes[new] == 8


def test_a_ready_replica_that_stops_answering_is_unready_within_a_period_and_two_ticks() -> None:
    sim = DeploymentSimulator(make_spec(replicas=2), ready_probe_period=10.0)
    sim.settle()
    rid = sim.live()[0].id
    sim.engine.set_ready(rid, False)
    ticks = 0
    while next(r for r in sim.replicas() if r.id == rid).ready:
        sim.sync(seconds=0.25)
        ticks += 1
    assert ticks <= (1.5 * 10.0) / 0.25 + 2  # first schedule ≤ 1.5 periods, then every tick
    assert sim.deployment.status.ready_replicas == 1
    assert rid not in {b.id for b in sim.routing.backends["web"]}


@dataclass
class Recorder:
    synced_actions: dict[str, int] = field(default_factory=dict)
    failures: list[tuple[str, str]] = field(default_factory=list)

    def synced(self, result: SyncResult) -> None:
        self.synced_actions[result.name] = (
            self.synced_actions.get(result.name, 0) + len(result.actions)
        )

    def sync_failed(self, name: str, error: Exception) -> None:
        self.failures.append((name, str(error)))


class BrokenRouting(FakeRouting):
    def set_routes(self, deployment: Any, table: Any) -> None:
        if deployment.name == "api":
            raise RuntimeError("the router of api is broken")
        super().set_routes(deployment, table)


def test_the_loop_reports_each_sync_and_a_failing_deployment_does_not_stop_the_others(
    loop: Loop,
) -> None:
    manager = DeploymentManager(store=loop.store, engine=FakeEngine(), routing=BrokenRouting(),
                                background_stops=False)  # fmt: skip
    manager.apply(make_spec(replicas=1))
    manager.apply(make_spec(replicas=1, name="api"))
    hooks, stop = Recorder(), threading.Event()
    thread = threading.Thread(target=manager.run, args=(stop, 0.01), kwargs={"hooks": hooks})
    thread.start()
    try:
        wait_for(
            lambda: loop.store.get_deployment("web").status.available_replicas == 1,
            timeout=20,
            what="web to become available",
        )
    finally:
        stop.set()
        thread.join(10)
    assert hooks.synced_actions["web"] > 0 and "api" not in hooks.synced_actions
    assert hooks.failures[0] == ("api", "the router of api is broken")


class FailingCommits(InMemoryDeploymentStateStore):
    """Fails the next ``failures`` commits as a broken database would."""

    failures = 0

    def commit(self, name: str, writes: Sequence[Write]) -> None:
        if self.failures:
            self.failures -= 1
            raise BackendError("Deployment store failed to update deployment 'web': disk I/O")
        super().commit(name, writes)


def test_a_sync_whose_commit_fails_leaves_no_process_and_no_record_behind() -> None:
    store, engine = FailingCommits(), FakeEngine()
    manager = DeploymentManager(store=store, engine=engine, routing=FakeRouting(),
                                clock=FakeClock(), background_stops=False)  # fmt: skip
    manager.apply(make_spec(replicas=2))
    store.failures = 1
    with pytest.raises(BackendError, match="disk I/O"):
        manager.sync("web")
    assert len(engine.processes) == 2  # it did launch two replicas...
    assert not any(p.alive for p in engine.processes.values())  # ...and stopped both
    assert store.snapshot("web").replicas == () and store.list_revisions("web") == []
    manager.sync("web")  # the next sync starts over from the store
    assert [p.alive for p in engine.processes.values()] == [False, False, True, True]
    assert len(store.list_replicas("web")) == 2


def test_a_failed_sync_stops_the_router_it_started_so_failures_never_pile_up_routers(
    tmp_path: Path,
) -> None:
    from loopline.deploy.local_routing import LocalRouting

    store, engine = FailingCommits(), FakeEngine()
    routing = LocalRouting(engine, secret_dir=tmp_path)
    manager = DeploymentManager(store=store, engine=engine, routing=routing,
                                clock=FakeClock(), background_stops=False)  # fmt: skip
    manager.apply(make_spec(replicas=1))
    store.failures = 3
    for _ in range(3):
        with pytest.raises(BackendError, match="disk I/O"):
            manager.sync("web")
    routers = [p for p in engine.processes.values() if p.replica_id == "router:web"]
    assert len(routers) == 3 and not any(p.alive for p in routers)
    manager.sync("web")
    alive = [p for p in engine.processes.values() if p.replica_id == "router:web" and p.alive]
    assert len(alive) == 1 and store.get_deployment("web").router is not None


class HangingProbes(FakeEngine):
    """Readiness probes that hang until released."""

    def __init__(self) -> None:
        super().__init__()
        self.asked = threading.Event()
        self.release = threading.Event()

    def probe_ready(self, handle: ProcessHandle, timeout: float) -> bool:
        self.asked.set()
        self.release.wait(30)
        return super().probe_ready(handle, timeout)


def test_a_probe_that_hangs_does_not_hold_up_the_loop() -> None:
    store, engine = InMemoryDeploymentStateStore(), HangingProbes()
    manager = DeploymentManager(store=store, engine=engine, routing=FakeRouting(),
                                clock=FakeClock())  # fmt: skip  (probes on worker threads)
    manager.apply(make_spec(replicas=2))
    try:
        manager.sync("web")  # starts both replicas
        manager.sync("web")  # hands their first probes to the pool
        wait_for(engine.asked.is_set, timeout=10, what="a probe to start")
        manager.sync("web")  # returns while both probes still hang
        assert not engine.release.is_set()
        assert [r.ready for r in store.list_replicas("web")] == [False, False]
        engine.release.set()

        def available() -> bool:
            manager.sync("web")
            return store.get_deployment("web").status.available_replicas == 2

        wait_for(available, timeout=10, what="the answers to make both replicas available")
    finally:
        engine.release.set()
        manager.close()


class CountingPolls(FakeEngine):
    def __init__(self) -> None:
        super().__init__()
        self.polls = 0

    def poll(self, handle: ProcessHandle) -> Any:
        self.polls += 1
        return super().poll(handle)


def test_ready_replicas_are_polled_every_second_and_an_exit_is_seen_within_one() -> None:
    engine = CountingPolls()
    sim = DeploymentSimulator(make_spec(replicas=3), engine, ready_probe_period=10.0,
                              poll_period=1.0)  # fmt: skip
    sim.settle()
    engine.polls = 0
    for _ in range(40):  # 10 s in ticks of 0.25 s
        sim.sync(seconds=0.25)
    assert 27 <= engine.polls <= 33  # 3 replicas × 10 s, not 3 × 40 ticks
    victim = sim.live()[0].id
    sim.engine.kill(victim)
    ticks = 0
    while next(r for r in sim.replicas() if r.id == victim).restarts == 0:
        sim.sync(seconds=0.25)
        ticks += 1
    assert ticks <= 4


def test_an_idle_deployment_is_reconciled_once_a_second_and_a_change_at_once(
    loop: Loop, monkeypatch: pytest.MonkeyPatch
) -> None:
    import loopline.deploy.manager as manager_module

    calls: list[str] = []
    real = manager_module.reconcile

    def counting(deployment: Any, *args: Any) -> Any:
        calls.append(deployment.name)
        return real(deployment, *args)

    monkeypatch.setattr(manager_module, "reconcile", counting)
    loop.manager.apply(make_spec(replicas=2))
    loop.settle()
    calls.clear()
    for _ in range(40):  # 10 s of idle ticks
        loop.tick()
    assert 9 <= len(calls) <= 11
    loop.manager.apply(make_spec(replicas=3))  # a new spec: the very next tick acts on it
    calls.clear()
    (result,) = loop.tick()
    assert calls == ["web"] and result.actions
