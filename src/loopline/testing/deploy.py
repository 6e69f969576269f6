"""Fakes and conformance suites for ``loopline.deploy``.

- :class:`FakeClock`, :class:`FakeEngine`, :class:`FakeRouting`: drive the real
  :class:`~loopline.deploy.manager.DeploymentManager` deterministically, no processes.
- :class:`DeploymentStateStoreContract`: every state store backend passes it.
- :class:`DeployEngineContract`: every engine passes it (the fake and the local engine).

Use a contract by subclassing it in a test module, setting ``__test__ = True`` and providing
the fixtures it names.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

import pytest

from loopline.deploy.actions import Action
from loopline.deploy.analysis import AnalysisTemplate, Metric, MetricProvider
from loopline.deploy.analysis_runner import AnalysisRunner
from loopline.deploy.backoff import BackoffPolicy
from loopline.deploy.deployment import Deployment, RouterProcess
from loopline.deploy.engines.base import DeployEngine, ProcessExit, ProcessHandle
from loopline.deploy.manager import DeploymentManager
from loopline.deploy.replica import Replica, ReplicaPhase
from loopline.deploy.revision import Revision
from loopline.deploy.rollout_state import RolloutState
from loopline.deploy.route_table import Backend, RouteTable
from loopline.deploy.routing import Routing
from loopline.deploy.snapshot import DeploymentSnapshot
from loopline.deploy.spec import DeploymentSpec, Strategy, StrategyType, Template
from loopline.deploy.state import DeploymentStateStore, InMemoryDeploymentStateStore
from loopline.deploy.status import ConditionType, DeploymentStatus
from loopline.deploy.strategies.verbs import promote
from loopline.deploy.template_store import InMemoryAnalysisTemplateStore
from loopline.deploy.writes import (
    DropReplica,
    DropRevision,
    PutReplica,
    PutRevision,
    SetRouter,
    SetStatus,
    Write,
)
from loopline.errors import BackendError, InvalidInputError, NotFoundError


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, start: float = 1_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class FakeProcess:
    """One pretend process."""

    replica_id: str
    template: Template | None
    port: int
    alive: bool = True
    ready: bool = False
    exit_code: int | None = None


class FakeEngine(DeployEngine):
    """An engine whose processes are dict entries; tests flip their state.

    Args:
        auto_ready: new processes pass readiness from their first probe.
        crashing_models: models whose processes exit with code 1 right after starting.
        unlaunchable_models: models whose launch raises BackendError (FailedCreate).
    """

    survives_control_plane: ClassVar[bool] = True
    probes_readiness: ClassVar[bool] = True

    def __init__(
        self,
        *,
        auto_ready: bool = True,
        crashing_models: Sequence[str] = (),
        unlaunchable_models: Sequence[str] = (),
    ) -> None:
        self.auto_ready = auto_ready
        self.crashing_models = set(crashing_models)
        self.unlaunchable_models = set(unlaunchable_models)
        self.processes: dict[int, FakeProcess] = {}
        self.stopped: list[str] = []
        self.cpu: dict[str, float] = {}  # replica id → CPU seconds used so far
        self._pids = itertools.count(1000)

    def start_replica(self, replica_id: str, template: Template) -> ProcessHandle:
        if template.model in self.unlaunchable_models:
            raise BackendError(f"cannot launch model {template.model!r} (fake engine)")
        pid = next(self._pids)
        proc = FakeProcess(replica_id, template, port=20000 + pid, ready=self.auto_ready)
        if template.model in self.crashing_models:
            proc.alive, proc.ready, proc.exit_code = False, False, 1
        self.processes[pid] = proc
        return ProcessHandle(pid=pid, process_start=pid * 7, port=proc.port)

    def start_router(
        self, deployment: str, port: int, admin_port: int, workers: int = 1,
        preview_port: int = 0, *, admin_secret_file: Path,
    ) -> ProcessHandle:  # fmt: skip
        pid = next(self._pids)
        self.processes[pid] = FakeProcess(f"router:{deployment}", None, port=port or 30000 + pid)
        return ProcessHandle(pid=pid, process_start=pid * 7, port=port or 30000 + pid)

    def _get(self, handle: ProcessHandle) -> FakeProcess | None:
        proc = self.processes.get(handle.pid)
        if proc is None or handle.process_start != handle.pid * 7:
            return None
        return proc

    def poll(self, handle: ProcessHandle) -> ProcessExit | None:
        proc = self._get(handle)
        if proc is None:
            return ProcessExit(code=None)
        return None if proc.alive else ProcessExit(code=proc.exit_code)

    def probe_ready(self, handle: ProcessHandle, timeout: float) -> bool:
        proc = self._get(handle)
        return proc is not None and proc.alive and proc.ready

    def cpu_seconds(self, pids: Sequence[int]) -> dict[int, float]:
        """The ``cpu`` a test gave each replica (by replica id), for live processes."""
        out: dict[int, float] = {}
        for pid in pids:
            proc = self.processes.get(pid)
            if proc is not None and proc.alive:
                out[pid] = self.cpu.get(proc.replica_id, 0.0)
        return out

    def stop(self, handle: ProcessHandle, grace: float) -> ProcessExit:
        proc = self._get(handle)
        if proc is None:
            return ProcessExit(code=None)
        if proc.alive:
            proc.alive, proc.ready, proc.exit_code = False, False, -15
            self.stopped.append(proc.replica_id)
        return ProcessExit(code=proc.exit_code)

    # ---- test controls -------------------------------------------------------------------

    def find(self, replica_id: str) -> FakeProcess:
        """The live-or-dead process most recently started for ``replica_id``."""
        for proc in reversed(list(self.processes.values())):
            if proc.replica_id == replica_id:
                return proc
        raise KeyError(replica_id)

    def kill(self, replica_id: str, code: int = -9) -> None:
        proc = self.find(replica_id)
        proc.alive, proc.ready, proc.exit_code = False, False, code

    def set_ready(self, replica_id: str, ready: bool) -> None:
        self.find(replica_id).ready = ready

    def set_all_ready(self, ready: bool = True) -> None:
        for proc in self.processes.values():
            if proc.alive and proc.template is not None:
                proc.ready = ready


class FakeRouting(Routing):
    """Records what the sync loop asked of the router."""

    def __init__(self) -> None:
        self.tables: dict[str, RouteTable] = {}
        self.router_stats: dict[str, dict[str, Any]] = {}  # deployment → GET /stats JSON
        self.unreachable: set[str] = set()
        self.backends: dict[str, tuple[Backend, ...]] = {}
        self.weights: dict[str, Mapping[str, int] | None] = {}
        self.drained: list[str] = []
        self.history: list[tuple[str, ...]] = []

    def ensure(self, deployment: Deployment) -> RouterProcess | None:
        if deployment.router is not None:
            return deployment.router
        return RouterProcess(
            pid=1, process_start=1, port=deployment.spec.port or 8000, admin_port=1
        )

    def set_routes(self, deployment: Deployment, table: RouteTable) -> None:
        self.tables[deployment.name] = table
        self.backends[deployment.name] = table.backends
        self.weights[deployment.name] = table.traffic.weight_map()
        self.history.append(tuple(b.id for b in table.backends))

    def stats(self, deployment: Deployment, window: float) -> dict[str, Any]:
        """What a test put in ``router_stats`` for the deployment (an idle router else)."""
        if deployment.name in self.unreachable:
            raise BackendError(f"router of {deployment.name!r} unreachable (fake)")
        return self.router_stats.get(deployment.name, {"revisions": {}, "mirror": {},
                                                        "held": 0, "heldTotal": 0})

    def drain(self, deployment: Deployment, backend_id: str, timeout: float) -> bool:
        self.drained.append(backend_id)
        return True

    def stop(self, deployment: Deployment) -> None:
        self.backends.pop(deployment.name, None)


def make_spec(
    replicas: int = 3,
    model: str = "iris/1",
    surge: int | str = "25%",
    unavailable: int | str = "25%",
    recreate: bool = False,
    **kw: object,
) -> DeploymentSpec:
    """A ``web`` deployment spec for tests; ``kw`` sets any other DeploymentSpec field."""
    strategy = (
        Strategy(type=StrategyType.RECREATE, max_surge=0, max_unavailable=0)
        if recreate
        else Strategy(max_surge=surge, max_unavailable=unavailable)
    )
    spec = DeploymentSpec(
        name="web", template=Template(model=model), replicas=replicas, strategy=strategy
    )
    return replace(spec, **kw)  # type: ignore[arg-type]


class DeploymentSimulator:
    """The real DeploymentManager on a fake engine, fake router and fake clock.

    One deployment named ``web``; :meth:`sync` advances the clock and runs one sync, so
    replicas started in one sync are observed (ready, by default) in the next, like pods
    becoming available between Kubernetes syncs. Every replica is polled and probed, and the
    controller runs, at every sync unless ``ready_probe_period``/``poll_period``/
    ``resync_period`` say otherwise (the manager's own defaults are seconds).
    """

    def __init__(
        self,
        spec: DeploymentSpec,
        engine: FakeEngine | None = None,
        ready_probe_period: float = 0.0,
        poll_period: float = 0.0,
        resync_period: float = 0.0,
        templates: Sequence[AnalysisTemplate] = (),
        providers: Callable[[Metric], MetricProvider] | None = None,
        autoscale_period: float = 15.0,
    ) -> None:
        self.clock = FakeClock()
        self.engine = engine or FakeEngine()
        self.routing = FakeRouting()
        self.store = InMemoryDeploymentStateStore()
        self.templates = InMemoryAnalysisTemplateStore()
        for t in templates:
            self.templates.apply(t, self.clock())
        self.providers = providers
        self._periods = (ready_probe_period, poll_period, resync_period, autoscale_period)
        self.manager = self._manager()
        self.manager.apply(spec)

    def _manager(self) -> DeploymentManager:
        analysis = AnalysisRunner(providers=self.providers) if self.providers else None
        return DeploymentManager(
            store=self.store,
            engine=self.engine,
            routing=self.routing,
            clock=self.clock,
            backoff=BackoffPolicy(),
            background_stops=False,
            templates=self.templates,
            analysis=analysis,
            ready_probe_period=self._periods[0],
            poll_period=self._periods[1],
            resync_period=self._periods[2],
            autoscale_period=self._periods[3],
        )

    def restart_manager(self) -> None:
        """A new manager on the same store, engine and router (a control-plane restart)."""
        self.manager = self._manager()
        self.manager.adopt()

    def promote(self, full: bool = False) -> None:
        """``rollout promote [--full]``."""
        self.manager.change_rollout(
            "web", lambda spec, state, now: promote(spec, state, full, now)
        )

    def verb(
        self, change: Callable[[DeploymentSpec, RolloutState | None, float], RolloutState]
    ) -> None:
        """``rollout abort`` / ``retry``: pass ``verbs.abort`` or ``verbs.retry``."""
        self.manager.change_rollout("web", change)

    @property
    def deployment(self) -> Deployment:
        return self.store.get_deployment("web")

    @property
    def spec(self) -> DeploymentSpec:
        return self.deployment.spec

    def apply(self, **changes: object) -> None:
        self.manager.apply(replace(self.spec, **changes))  # type: ignore[arg-type]

    def set_model(self, model: str) -> None:
        self.apply(template=replace(self.spec.template, model=model))

    def sync(self, seconds: float = 1.0) -> list[Action]:
        self.clock.advance(seconds)
        return self.manager.sync("web")

    def settle(self, max_syncs: int = 60) -> int:
        """Sync until no action is taken; returns the number of syncs."""
        for i in range(max_syncs):
            if not self.sync():
                return i
        raise AssertionError(f"did not settle in {max_syncs} syncs")

    def revisions(self) -> list[Revision]:
        return self.store.list_revisions("web")

    def sizes(self) -> tuple[int, ...]:
        """Desired replicas per revision, by creation order."""
        return tuple(r.replicas for r in sorted(self.revisions(), key=lambda r: r.created_at))

    def replicas(self) -> list[Replica]:
        return self.store.list_replicas("web")

    def live(self) -> list[Replica]:
        return [r for r in self.replicas() if r.phase is not ReplicaPhase.TERMINATING]

    def available(self) -> int:
        d = self.deployment
        now = self.clock()
        return sum(r.is_available(d.spec.min_ready_seconds, now) for r in self.replicas())

    def condition(self, kind: ConditionType) -> tuple[str, str] | None:
        c = self.deployment.status.condition(kind)
        return None if c is None else (c.status, c.reason)


# ---- conformance suites ---------------------------------------------------------------------


def _spec(name: str = "web", replicas: int = 2, model: str = "iris/1") -> DeploymentSpec:
    return DeploymentSpec(name=name, template=Template(model=model), replicas=replicas)


def _replica(replica_id: str, created_at: float) -> Replica:
    return Replica(replica_id, "web", "aaa", ReplicaPhase.PENDING, created_at, port=9, pid=10,
                   process_start=11, log_path="/tmp/x.log")  # fmt: skip


class DeploymentStateStoreContract:
    """Tests every :class:`DeploymentStateStore` must pass. Needs a ``store`` fixture."""

    __test__ = False

    def test_apply_creates_at_generation_one(self, store: DeploymentStateStore) -> None:
        d = store.apply_spec(_spec(), 10.0)
        assert (d.generation, d.created_at, d.status) == (1, 10.0, DeploymentStatus())
        assert store.get_deployment("web") == d

    def test_generation_grows_only_when_spec_changes(self, store: DeploymentStateStore) -> None:
        store.apply_spec(_spec(), 10.0)
        assert store.apply_spec(_spec(), 11.0).generation == 1
        assert store.apply_spec(_spec(replicas=3), 12.0).generation == 2

    def test_get_missing_deployment_raises_not_found(self, store: DeploymentStateStore) -> None:
        with pytest.raises(NotFoundError, match="Deployment 'nope' does not exist"):
            store.get_deployment("nope")
        with pytest.raises(NotFoundError, match="Deployment 'nope' does not exist"):
            store.snapshot("nope")

    def test_status_and_router_are_kept_across_spec_changes(
        self, store: DeploymentStateStore
    ) -> None:
        store.apply_spec(_spec(), 10.0)
        router = RouterProcess(pid=5, process_start=6, port=7, admin_port=8)
        store.commit("web", [SetStatus(DeploymentStatus(replicas=2, observed_generation=1)),
                             SetRouter(router)])  # fmt: skip
        d = store.apply_spec(_spec(replicas=4), 11.0)
        assert d.status.replicas == 2 and d.router == router
        assert store.get_deployment("web") == d

    def test_lists_deployments_by_name(self, store: DeploymentStateStore) -> None:
        store.apply_spec(_spec("b"), 1.0)
        store.apply_spec(_spec("a"), 1.0)
        assert [d.name for d in store.list_deployments()] == ["a", "b"]

    def test_revisions_round_trip_and_sort_by_number(self, store: DeploymentStateStore) -> None:
        store.apply_spec(_spec(), 1.0)
        t1, t2 = Template(model="iris/1"), Template(model="iris/2", workers=2)
        r2 = Revision("web", "bbb", 2, t2, 5.0, replicas=1, desired_replicas=2, max_replicas=3)
        r1 = Revision("web", "aaa", 1, t1, 4.0, history=(0,))
        store.commit("web", [PutRevision(r2), PutRevision(r1)])
        assert store.list_revisions("web") == [r1, r2]
        store.commit("web", [PutRevision(replace(r1, number=3, history=(1,)))])
        assert [r.hash for r in store.list_revisions("web")] == ["bbb", "aaa"]
        store.commit("web", [DropRevision("bbb")])
        assert [r.hash for r in store.list_revisions("web")] == ["aaa"]
        with pytest.raises(NotFoundError, match="no revision with hash 'bbb'"):
            store.commit("web", [DropRevision("bbb")])

    def test_replicas_round_trip_and_sort_by_creation(self, store: DeploymentStateStore) -> None:
        store.apply_spec(_spec(), 1.0)
        rep = _replica("web-aaa-1", 3.0)
        early = _replica("web-aaa-0", 2.0)
        store.commit("web", [PutReplica(rep), PutReplica(early)])
        running = replace(rep, phase=ReplicaPhase.RUNNING, ready=True, ready_since=4.0)
        store.commit("web", [PutReplica(running)])
        assert store.list_replicas("web") == [early, running]
        store.commit("web", [DropReplica(rep.id), DropReplica(early.id)])
        assert store.list_replicas("web") == []
        with pytest.raises(NotFoundError, match="no replica 'web-aaa-1'"):
            store.commit("web", [DropReplica(rep.id)])

    def test_snapshot_holds_the_deployment_its_revisions_and_replicas(
        self, store: DeploymentStateStore
    ) -> None:
        d = store.apply_spec(_spec(), 1.0)
        rev = Revision("web", "aaa", 1, Template(model="iris/1"), 1.0, replicas=2)
        reps = [_replica("web-aaa-2", 3.0), _replica("web-aaa-1", 2.0)]
        store.commit("web", [PutRevision(rev), *(PutReplica(r) for r in reps)])
        snap = store.snapshot("web")
        assert snap == DeploymentSnapshot(d, (rev,), (reps[1], reps[0]))
        assert snap.name == "web"

    def test_snapshot_all_reads_every_deployment_by_name(
        self, store: DeploymentStateStore
    ) -> None:
        assert store.snapshot_all() == []
        for name in ("b", "a", "c"):
            store.apply_spec(_spec(name), 1.0)
        store.commit("b", [PutReplica(replace(_replica("b-aaa-1", 2.0), deployment="b"))])
        store.commit("c", [PutRevision(Revision("c", "ccc", 1, Template(model="iris/1"), 1.0))])
        snaps = store.snapshot_all()
        assert [s.name for s in snaps] == ["a", "b", "c"]
        assert [(len(s.revisions), len(s.replicas)) for s in snaps] == [(0, 0), (0, 1), (1, 0)]
        assert snaps == [store.snapshot(n) for n in ("a", "b", "c")]

    def test_commit_applies_writes_in_order(self, store: DeploymentStateStore) -> None:
        store.apply_spec(_spec(), 1.0)
        rep = _replica("web-aaa-1", 2.0)
        ready = replace(rep, phase=ReplicaPhase.RUNNING, ready=True)
        gone = _replica("web-aaa-2", 3.0)
        store.commit("web", [PutReplica(rep), PutReplica(gone), PutReplica(ready),
                             DropReplica(gone.id),
                             SetStatus(DeploymentStatus(replicas=1)),
                             SetStatus(DeploymentStatus(replicas=2))])  # fmt: skip
        snap = store.snapshot("web")
        assert snap.replicas == (ready,) and snap.deployment.status.replicas == 2

    def test_commit_is_all_or_nothing(self, store: DeploymentStateStore) -> None:
        store.apply_spec(_spec(), 1.0)
        before = store.snapshot("web")
        writes: list[Write] = [
            PutRevision(Revision("web", "aaa", 1, Template(model="iris/1"), 1.0)),
            PutReplica(_replica("web-aaa-1", 2.0)),
            SetStatus(DeploymentStatus(replicas=1)),
            SetRouter(RouterProcess(pid=5, process_start=6, port=7, admin_port=8)),
            DropReplica("web-never-was"),  # fails last: everything before must roll back
        ]
        with pytest.raises(NotFoundError, match="no replica 'web-never-was'"):
            store.commit("web", writes)
        assert store.snapshot("web") == before

    def test_commit_to_a_missing_deployment_writes_nothing(
        self, store: DeploymentStateStore
    ) -> None:
        store.apply_spec(_spec(), 1.0)
        with pytest.raises(NotFoundError, match="Deployment 'gone' does not exist"):
            store.commit("gone", [SetStatus(DeploymentStatus(replicas=1))])
        store.commit("gone", [])  # an empty batch does nothing
        assert [d.name for d in store.list_deployments()] == ["web"]

    def test_commit_refuses_a_write_of_another_deployment(
        self, store: DeploymentStateStore
    ) -> None:
        store.apply_spec(_spec(), 1.0)
        store.apply_spec(_spec("api"), 1.0)
        other = replace(_replica("api-aaa-1", 2.0), deployment="api")
        with pytest.raises(InvalidInputError, match="cannot write replica 'api-aaa-1'"):
            store.commit("web", [SetStatus(DeploymentStatus(replicas=1)), PutReplica(other)])
        assert store.get_deployment("web").status == DeploymentStatus()
        assert store.list_replicas("api") == []

    def test_a_snapshot_does_not_change_after_later_commits(
        self, store: DeploymentStateStore
    ) -> None:
        store.apply_spec(_spec(), 1.0)
        snap = store.snapshot("web")
        store.commit("web", [PutReplica(_replica("web-aaa-1", 2.0)),
                             SetStatus(DeploymentStatus(replicas=1))])  # fmt: skip
        assert snap.replicas == () and snap.deployment.status == DeploymentStatus()

    def test_delete_deployment_forgets_everything(self, store: DeploymentStateStore) -> None:
        store.apply_spec(_spec(), 1.0)
        store.commit("web", [PutRevision(Revision("web", "aaa", 1, Template(model="iris/1"), 1.0)),
                             PutReplica(_replica("web-aaa-1", 2.0))])  # fmt: skip
        store.delete_deployment("web")
        assert store.list_deployments() == [] and store.snapshot_all() == []
        store.apply_spec(_spec(), 5.0)  # the same name again starts empty
        assert store.list_revisions("web") == [] and store.list_replicas("web") == []
        store.delete_deployment("web")
        with pytest.raises(NotFoundError, match="does not exist"):
            store.delete_deployment("web")


class DeployEngineContract:
    """Tests every :class:`DeployEngine` must pass.

    Fixtures: ``engine`` (the engine under test), ``template`` (a template whose replicas
    start and become ready) and ``ready_timeout`` (seconds a replica may take to be ready).
    """

    __test__ = False

    def _wait_ready(self, engine: DeployEngine, handle: ProcessHandle, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        delay = 0.02
        while time.monotonic() < deadline:
            if engine.probe_ready(handle, timeout=0.5):
                return True
            time.sleep(delay)
            delay = min(delay * 2, 0.25)
        return False

    def test_started_replica_runs_and_becomes_ready(
        self, engine: DeployEngine, template: Template, ready_timeout: float
    ) -> None:
        handle = engine.start_replica("r-1", template)
        try:
            assert handle.port > 0
            assert engine.poll(handle) is None
            assert self._wait_ready(engine, handle, ready_timeout)
        finally:
            engine.stop(handle, grace=5.0)

    def test_stopped_replica_is_reported_gone_and_unready(
        self, engine: DeployEngine, template: Template, ready_timeout: float
    ) -> None:
        handle = engine.start_replica("r-2", template)
        self._wait_ready(engine, handle, ready_timeout)
        engine.stop(handle, grace=5.0)
        assert engine.poll(handle) is not None
        assert not engine.probe_ready(handle, timeout=0.5)

    def test_handle_with_another_start_time_is_never_taken_for_the_replica(
        self, engine: DeployEngine, template: Template, ready_timeout: float
    ) -> None:
        handle = engine.start_replica("r-3", template)
        try:
            impostor = replace(handle, process_start=handle.process_start + 1)
            assert engine.poll(impostor) is not None
            assert not engine.probe_ready(impostor, timeout=0.5)
        finally:
            engine.stop(handle, grace=5.0)

    def test_two_replicas_get_distinct_ports(
        self, engine: DeployEngine, template: Template, ready_timeout: float
    ) -> None:
        a = engine.start_replica("r-4", template)
        b = engine.start_replica("r-5", template)
        try:
            assert a.port != b.port and a.pid != b.pid
        finally:
            engine.stop(a, grace=5.0)
            engine.stop(b, grace=5.0)
