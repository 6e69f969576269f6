"""One controller per database: two control planes on one SQLite file (two homes on one
machine) run one reconciler between them; the other serves the API as a standby and takes
over when the first stops (issue #11)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from loopline.artifacts.fs import FsspecArtifactStore
from loopline.controlplane.events import EventLog
from loopline.controlplane.leadership import Leadership, holder_id
from loopline.controlplane.pinning import ModelPinner
from loopline.controlplane.service import ControlPlane
from loopline.deploy.lease import CONTROLLERS, InMemoryLeaseStore, Lease
from loopline.deploy.manager import DeploymentManager
from loopline.deploy.sql_lease import SqlLeaseStore
from loopline.deploy.sql_state import SqlDeploymentStateStore
from loopline.deploy.sync import SyncResult
from loopline.errors import BackendError, ConflictError
from loopline.metadata import open_store
from loopline.metadata.store import MetadataStore
from loopline.registry.registry import ModelRegistry
from loopline.testing.artifacts import wait_for
from loopline.testing.deploy import FakeEngine, FakeRouting, make_spec


@dataclass
class Plane:
    """One control plane: its own database connections, as a separate process has."""

    name: str
    metadata: MetadataStore
    service: ControlPlane
    leadership: Leadership
    stop: threading.Event
    thread: threading.Thread | None = None
    syncs: int = 0

    def start(self) -> None:
        original = self.service.sync_events.synced

        def counted(result: SyncResult) -> None:
            self.syncs += 1
            original(result)

        self.service.sync_events.synced = counted  # type: ignore[method-assign]
        self.thread = threading.Thread(target=self.service.run, args=(self.stop, 0.02))
        self.thread.start()

    def halt(self) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join(30)
            assert not self.thread.is_alive()


@pytest.fixture
def planes(tmp_path: Path) -> Iterator[tuple[Plane, Plane, FakeEngine]]:
    url = f"sqlite:///{tmp_path / 'meta.db'}"
    artifacts = FsspecArtifactStore(str(tmp_path / "artifacts"))
    engine = FakeEngine()  # one machine: both see the same processes
    routing = FakeRouting()
    made = []
    for name in ("a", "b"):
        metadata = open_store(url)
        store = SqlDeploymentStateStore.from_metadata(metadata)
        manager = DeploymentManager(store=store, engine=engine, routing=routing,
                                    background_stops=False)  # fmt: skip
        leadership = Leadership(SqlLeaseStore(metadata.engine),  # type: ignore[attr-defined]
                                f"control plane {name}", ttl=1.0)  # fmt: skip
        service = ControlPlane(
            manager=manager,
            pinner=ModelPinner(registry=ModelRegistry(metadata, artifacts), metadata=metadata),
            events=EventLog(clock=time.time),
            leadership=leadership,
        )
        made.append(Plane(name, metadata, service, leadership, threading.Event()))
    try:
        yield made[0], made[1], engine
    finally:
        for plane in made:
            plane.halt()
            plane.metadata.close()


def test_two_control_planes_on_one_database_run_one_reconciler(
    planes: tuple[Plane, Plane, FakeEngine],
) -> None:
    a, b, engine = planes
    a.service.manager.apply(make_spec(replicas=2))
    a.start()
    b.start()
    wait_for(lambda: a.leadership.leading or b.leadership.leading, timeout=30,
             what="one control plane to take the lease")  # fmt: skip
    leader, standby = (a, b) if a.leadership.leading else (b, a)
    store = leader.service.store
    wait_for(lambda: store.get_deployment("web").status.available_replicas == 2, timeout=30,
             what="the deployment to be available")  # fmt: skip
    wait_for(lambda: leader.syncs >= 40, timeout=30, what="the leader to sync 40 times")
    assert standby.syncs == 0
    assert not standby.leadership.leading
    assert standby.service.controllers_status() == {
        "controllers": "standby", "leader": f"control plane {leader.name}"
    }
    replicas = [p for p in engine.processes.values() if not p.replica_id.startswith("router:")]
    assert len(replicas) == 2
    with pytest.raises(ConflictError, match=rf"standby: .* run in control plane {leader.name}"):
        standby.service.delete("web")


def test_the_standby_takes_over_when_the_leader_stops_and_keeps_its_replicas(
    planes: tuple[Plane, Plane, FakeEngine],
) -> None:
    a, b, engine = planes
    a.service.manager.apply(make_spec(replicas=2))
    a.start()
    wait_for(lambda: a.leadership.leading, timeout=30, what="a to take the lease")
    b.start()
    store = a.service.store
    wait_for(lambda: store.get_deployment("web").status.available_replicas == 2, timeout=30,
             what="the deployment to be available")  # fmt: skip
    started = len(engine.processes)
    a.halt()  # a clean stop releases the lease
    wait_for(lambda: b.leadership.leading, timeout=30, what="b to take over")
    wait_for(lambda: b.syncs >= 20, timeout=30, what="b to sync 20 times")
    assert len(engine.processes) == started  # re-adopted, not started again
    assert store.get_deployment("web").status.available_replicas == 2
    lease = SqlLeaseStore(b.metadata.engine).get(CONTROLLERS)  # type: ignore[attr-defined]
    assert lease is not None and lease.description == "control plane b"


def test_a_crashed_leaders_lease_is_taken_over_once_it_expires(tmp_path: Path) -> None:
    metadata = open_store(f"sqlite:///{tmp_path / 'meta.db'}")
    try:
        leases = SqlLeaseStore(metadata.engine)  # type: ignore[attr-defined]
        now = time.time()
        leases.acquire(CONTROLLERS, "crashed", "a crashed control plane", now, ttl=1.0)
        standby = Leadership(leases, "the standby", ttl=1.0)
        stop = threading.Event()
        led = threading.Event()

        def lead(lost: threading.Event) -> None:
            led.set()
            lost.wait()

        thread = threading.Thread(target=standby.run, args=(stop, lead))
        thread.start()
        try:
            wait_for(led.is_set, timeout=30, what="the standby to lead")
            lease = leases.get(CONTROLLERS)
            assert lease is not None and lease.holder == standby.holder
            assert lease.acquired_at >= now + 1.0  # not before the crashed one expired
        finally:
            stop.set()
            thread.join(30)
        released = leases.get(CONTROLLERS)
        assert released is not None and released.expires_at == 0.0
    finally:
        metadata.close()


def test_a_control_plane_restarted_in_its_home_takes_its_lease_back_at_once(
    tmp_path: Path,
) -> None:
    metadata = open_store(f"sqlite:///{tmp_path / 'meta.db'}")
    try:
        leases = SqlLeaseStore(metadata.engine)  # type: ignore[attr-defined]
        home = tmp_path / "home"
        assert holder_id(home) == holder_id(home) != holder_id(tmp_path / "other")
        now = time.time()
        leases.acquire(CONTROLLERS, holder_id(home), "killed with -9", now, ttl=3600.0)
        again = leases.acquire(CONTROLLERS, holder_id(home), "restarted", now + 1, ttl=3600.0)
        assert again.description == "restarted"
        other = leases.acquire(CONTROLLERS, holder_id(tmp_path / "other"), "x", now + 2, 3600.0)
        assert other.description == "restarted"
    finally:
        metadata.close()


class _FlakyLeases(InMemoryLeaseStore):
    """Leases whose database becomes unreachable when ``down`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.down = threading.Event()

    def acquire(self, name: str, holder: str, description: str, now: float, ttl: float) -> Lease:
        if self.down.is_set():
            raise BackendError("The lease store failed to take the lease: database is gone.")
        return super().acquire(name, holder, description, now, ttl)


def test_a_holder_that_cannot_renew_stops_its_controllers_and_leads_again_later() -> None:
    leases = _FlakyLeases()
    leadership = Leadership(leases, "the holder", ttl=0.6)
    stop = threading.Event()
    lost_seen = threading.Event()
    runs: list[int] = []

    def lead(lost: threading.Event) -> None:
        runs.append(len(runs))
        lost.wait()
        lost_seen.set()

    thread = threading.Thread(target=leadership.run, args=(stop, lead))
    thread.start()
    try:
        wait_for(lambda: leadership.leading, timeout=30, what="the holder to lead")
        leases.down.set()
        wait_for(lost_seen.is_set, timeout=30, what="the controllers to stop")
        assert not leadership.leading
        leases.down.clear()
        wait_for(lambda: len(runs) == 2, timeout=30, what="the holder to lead again")
    finally:
        stop.set()
        thread.join(30)
