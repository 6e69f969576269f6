"""Zero-drop guarantees with real processes: manager + local engine + router + load."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import httpx
import pytest

from loopline.deploy.backoff import BackoffPolicy
from loopline.deploy.engines.local import LocalEngine
from loopline.deploy.local_routing import LocalRouting
from loopline.deploy.manager import DeploymentManager
from loopline.deploy.replica import ReplicaPhase
from loopline.deploy.spec import DeploymentSpec, Strategy, StrategyType, Template
from loopline.deploy.state import InMemoryDeploymentStateStore
from loopline.deploy.status import ConditionType, Reason
from loopline.serving import ServeCommand

pytestmark = pytest.mark.slow

FAKE_SERVER = str(Path(__file__).with_name("fake_server.py"))


def fake_server(replica_id: str, command: ServeCommand) -> list[str]:
    (model,) = command.models
    return [sys.executable, FAKE_SERVER, "--port", str(command.port), "--id", replica_id,
            "--model", model, "--latency-ms", "2"]  # fmt: skip

INFER = "/v2/models/m/infer"


def wait_for(check: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@dataclass
class Load:
    """A bounded closed-loop load generator (a few client threads) on 127.0.0.1."""

    port: int
    clients: int = 4
    ok: int = 0
    failures: list[object] = field(default_factory=list)
    by_replica: dict[str, int] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def _run(self) -> None:
        deadline = time.monotonic() + 55  # stops by itself
        with httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=10) as c:
            while not self._stop.is_set() and time.monotonic() < deadline:
                try:
                    r = c.post(INFER, json={"inputs": []})
                except httpx.HTTPError as exc:
                    self.failures.append(repr(exc))
                    continue
                if r.status_code == 200:
                    self.ok += 1
                    rid = r.json()["id"]
                    self.by_replica[rid] = self.by_replica.get(rid, 0) + 1
                else:
                    self.failures.append((r.status_code, r.text[:200]))

    def __enter__(self) -> Load:
        self._threads = [threading.Thread(target=self._run) for _ in range(self.clients)]
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(15)


class System:
    """A control plane in miniature: store, engine, routing and the sync loop thread."""

    def __init__(self, tmp: Path, store: InMemoryDeploymentStateStore | None = None) -> None:
        self.tmp = tmp
        self.store = store or InMemoryDeploymentStateStore()
        self.engine = LocalEngine(log_dir=tmp / "logs", argv=fake_server)
        self.manager = DeploymentManager(
            store=self.store,
            engine=self.engine,
            routing=LocalRouting(self.engine, stop_grace=5, secret_dir=tmp / "routers"),
            backoff=BackoffPolicy(initial=0.5, cap=2, reset_after=30),
            # The load threads share this process's GIL with the probes: give them room.
            probe_timeout=2.0,
            drain_timeout=5,
            stop_grace=5,
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self.manager.run, args=(self._stop, 0.1))

    def start(self) -> System:
        self._thread.start()  # the control plane's loop: adopt, then a tick every 0.1 s
        return self

    def crash(self) -> None:
        """Stop the loop without cleaning anything up (like kill -9 of the control plane)."""
        self._stop.set()
        self._thread.join(10)

    def stop(self) -> None:
        self.crash()
        for d in self.store.list_deployments():
            self.manager.delete(d.name, timeout=20)
        self.manager.close()

    def status(self) -> object:
        return self.store.get_deployment("web").status

    def port(self) -> int:
        router = self.store.get_deployment("web").router
        assert router is not None
        return router.port

    def complete(self, replicas: int) -> bool:
        d = self.store.get_deployment("web")
        st = d.status
        cond = st.condition(ConditionType.PROGRESSING)
        return (
            st.observed_generation == d.generation
            and st.updated_replicas == replicas == st.available_replicas == st.replicas
            and cond is not None
            and cond.reason == Reason.NEW_REVISION_AVAILABLE
            and len([r for r in self.store.list_replicas("web")]) == replicas
        )


def spec(replicas: int = 3, model: str = "iris/1", **kw: object) -> DeploymentSpec:
    s = DeploymentSpec(name="web", template=Template(model=model), replicas=replicas)
    return replace(s, **kw)  # type: ignore[arg-type]


@pytest.fixture
def system(tmp_path: Path) -> Iterator[System]:
    sys_ = System(tmp_path).start()
    yield sys_
    sys_.stop()


def _set_model(system: System, model: str) -> None:
    d = system.store.get_deployment("web")
    system.manager.apply(replace(d.spec, template=replace(d.spec.template, model=model)))


def test_rolling_update_of_three_replicas_under_load_drops_nothing(system: System) -> None:
    system.manager.apply(spec(replicas=3))
    wait_for(lambda: system.complete(3), 20, "first rollout")
    with Load(system.port()) as load:
        time.sleep(0.3)
        _set_model(system, "iris/2")
        wait_for(lambda: system.complete(3), 30, "rolling update")
        time.sleep(0.3)
    assert load.failures == []
    assert load.ok > 100
    new = {r.id for r in system.store.list_replicas("web")}
    assert new & set(load.by_replica)  # the new replicas served traffic
    assert len(set(load.by_replica) - new) == 3  # and so did the three old ones


def test_scale_one_to_five_to_one_and_undo_under_load_drop_nothing(system: System) -> None:
    system.manager.apply(spec(replicas=1))
    wait_for(lambda: system.complete(1), 20, "first rollout")
    with Load(system.port()) as load:
        d = system.store.get_deployment("web")
        system.manager.apply(replace(d.spec, replicas=5))
        wait_for(lambda: system.complete(5), 30, "scale to 5")
        d = system.store.get_deployment("web")
        system.manager.apply(replace(d.spec, replicas=1))
        wait_for(lambda: system.complete(1), 30, "scale to 1")
        _set_model(system, "iris/2")
        wait_for(lambda: system.complete(1), 30, "update")
        system.manager.undo("web")
        wait_for(lambda: system.complete(1), 30, "undo")
    assert load.failures == []
    assert len(load.by_replica) >= 5


def test_kill_9_of_a_replica_under_load_is_replaced_without_failed_requests(
    system: System,
) -> None:
    import os
    import signal

    system.manager.apply(spec(replicas=3))
    wait_for(lambda: system.complete(3), 20, "first rollout")
    victim = system.store.list_replicas("web")[0]
    assert victim.pid is not None
    with Load(system.port()) as load:
        time.sleep(0.5)
        os.kill(victim.pid, signal.SIGKILL)
        wait_for(
            lambda: any(
                r.id == victim.id and r.restarts == 1 and r.ready
                for r in system.store.list_replicas("web")
            ),
            20,
            "the killed replica to be restarted",
        )
        time.sleep(0.5)
    assert load.failures == []
    assert system.store.get_deployment("web").status.available_replicas == 3


def test_a_revision_that_fails_to_load_stalls_old_replicas_serve_and_undo_recovers(
    system: System,
) -> None:
    system.manager.apply(spec(replicas=2, progress_deadline_seconds=3))
    wait_for(lambda: system.complete(2), 20, "first rollout")
    with Load(system.port()) as load:
        _set_model(system, "iris/bad")

        def stalled() -> bool:
            st = system.store.get_deployment("web").status
            c = st.condition(ConditionType.PROGRESSING)
            return c is not None and c.reason == Reason.PROGRESS_DEADLINE_EXCEEDED

        wait_for(stalled, 20, "ProgressDeadlineExceeded")
        st = system.store.get_deployment("web").status
        failure = st.condition(ConditionType.REPLICA_FAILURE)
        assert failure is not None and failure.reason == Reason.CRASH_LOOP_BACK_OFF
        assert "exited with code 1" in failure.message
        assert st.available_replicas == 2
        system.manager.undo("web")
        wait_for(lambda: system.complete(2), 30, "undo to finish")
    assert load.failures == []
    assert (
        system.store.get_deployment("web").status.condition(ConditionType.REPLICA_FAILURE) is None
    )


def test_control_plane_crash_mid_rollout_keeps_serving_and_a_new_one_finishes_it(
    tmp_path: Path,
) -> None:
    first = System(tmp_path).start()
    first.manager.apply(spec(replicas=3, min_ready_seconds=1))
    try:
        wait_for(lambda: first.complete(3), 30, "first rollout")
        with Load(first.port()) as load:
            _set_model(first, "iris/2")
            wait_for(lambda: len(first.store.list_revisions("web")) == 2, 10, "new revision")
            time.sleep(0.5)
            first.crash()  # replicas and router keep running on their own
            time.sleep(1.0)
            served_while_down = load.ok
            second = System(tmp_path, store=first.store).start()
            wait_for(lambda: second.complete(3), 40, "rollout finished by the new control plane")
        assert load.failures == []
        assert served_while_down > 0
        router = second.store.get_deployment("web").router
        assert router is not None and router.port == first.port()
    finally:
        second.stop() if "second" in locals() else first.stop()


def test_recreate_has_downtime_by_design_and_reports_it(system: System) -> None:
    system.manager.apply(
        spec(
            replicas=2,
            strategy=Strategy(type=StrategyType.RECREATE, max_surge=0, max_unavailable=0),
        )
    )
    wait_for(lambda: system.complete(2), 20, "first rollout")
    seen_unavailable = []

    def watch() -> bool:
        st = system.store.get_deployment("web").status
        c = st.condition(ConditionType.AVAILABLE)
        if c is not None and c.status == "False":
            seen_unavailable.append(c.reason)
        return system.complete(2) and bool(seen_unavailable)

    _set_model(system, "iris/2")
    wait_for(watch, 30, "recreate")
    assert seen_unavailable[0] == Reason.MINIMUM_REPLICAS_UNAVAILABLE
    assert all(r.phase is ReplicaPhase.RUNNING for r in system.store.list_replicas("web"))
