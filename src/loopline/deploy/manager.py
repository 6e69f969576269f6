"""The sync loop: one snapshot read → observe → pure :func:`reconcile` → one batched write.

A tick (:meth:`DeploymentManager.sync_all`) reads every deployment in one read transaction
(:meth:`~loopline.deploy.state.DeploymentStateStore.snapshot_all`). For each deployment:

1. make sure its router runs (``Routing.ensure``, every ``poll_period``);
2. observe its replica processes (:class:`~loopline.deploy.observer.ReplicaObserver`: polls
   and readiness probes on a cadence, probes on worker threads), as updates to an in-memory
   view;
3. :func:`reconcile` the view (pure), and apply each action in one place
   (:meth:`DeploymentManager._apply`): store writes on the view, process starts at once;
4. push the router's table computed from the view (before the commit, so a status that says
   Available is never stored before the router routes to the replicas it counts);
5. commit the view's writes in one write transaction (none when nothing changed);
6. retire TERMINATING replicas (drain, stop) on worker threads, each removing its own record.

An idle tick costs one read transaction and no write. Nothing is re-read within a sync.
``DeploymentManager`` owns no state that matters: a fresh manager on the same store (after a
control-plane crash) re-adopts the running replicas and router and finishes any rollout in
progress. :meth:`DeploymentManager.run` is *the* loop: the control plane runs it with its
:class:`SyncHooks` (events, downtime); tests drive the same loop.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import assert_never

from loopline.deploy.actions import (
    Action,
    CreateRevision,
    DeleteRevision,
    RecordRevisionNumber,
    RestartReplica,
    ScaleRevision,
    StartReplica,
    StopReplica,
    UpdateStatus,
)
from loopline.deploy.analysis_runner import AnalysisRunner
from loopline.deploy.autoscaler import (
    ACTIVATOR_HOLD_SECONDS,
    Autoscaler,
    no_stats,
    replicas_wanted,
    stats_from,
)
from loopline.deploy.backoff import BackoffPolicy
from loopline.deploy.controller import reconcile
from loopline.deploy.deployment import Deployment
from loopline.deploy.engines.base import DeployEngine, ProcessHandle
from loopline.deploy.measurer import Measurer, route_labels
from loopline.deploy.observer import ReplicaObserver
from loopline.deploy.replica import ExitInfo, Replica, ReplicaPhase, transition
from loopline.deploy.retirer import Retirer
from loopline.deploy.revision import Revision
from loopline.deploy.rollout_state import RolloutState
from loopline.deploy.route_table import RouteTable, route_table
from loopline.deploy.routing import Routing
from loopline.deploy.snapshot import DeploymentSnapshot
from loopline.deploy.spec import DeploymentSpec
from loopline.deploy.state import DeploymentStateStore
from loopline.deploy.sync import SyncHooks, SyncResult, SyncView
from loopline.deploy.template_store import AnalysisTemplateStore
from loopline.deploy.undo import UndoResult, undo
from loopline.deploy.writes import (
    DropRevision,
    PutReplica,
    PutRevision,
    SetRouter,
    SetStatus,
)
from loopline.errors import BackendError, ConflictError, NotFoundError

log = logging.getLogger(__name__)

Clock = Callable[[], float]


@dataclass(slots=True)
class _Effects:
    """What one sync did besides writes: processes it launched, how to retire replicas."""

    launched: list[ProcessHandle] = field(default_factory=list)
    new_replicas: list[str] = field(default_factory=list)  # ids of the replicas it created
    drains: dict[str, bool] = field(default_factory=dict)  # replica id → drain before stop
    router_started: bool = False  # a new router process, recorded only by this sync's commit


class DeploymentManager:
    """Applies specs and runs the controller against an engine, a router and a store.

    Args:
        store: where specs, revisions, replicas and status live.
        engine: starts and stops replica processes.
        routing: keeps each deployment's router current (None: no routers, e.g. unit tests).
        clock: seconds since the epoch (``time.time``; a fake clock in tests).
        backoff: crash back-off policy.
        host: the address replicas listen on, as the router reaches them.
        probe_timeout: seconds allowed for one readiness probe.
        probe_failure_threshold: consecutive failed probes before a ready replica is marked
            not ready (Kubernetes' readiness ``failureThreshold``, default 3).
        ready_probe_period: seconds between readiness probes of a ready replica (Kubernetes'
            ``periodSeconds``; replicas not ready yet are probed every tick).
        poll_period: seconds between liveness checks of a ready replica's process and of the
            router's (the kubelet's 1 s relist; a replica not ready is polled every tick).
        resync_period: seconds an idle deployment goes without :func:`reconcile` (idle: its
            snapshot and observations are the very objects of its last sync, which took no
            action); what only time changes (progress deadline, ``minReadySeconds``, crash
            back-off, a timed pause) is acted on within this period. 0: reconcile every sync.
        drain_timeout: seconds a retiring replica may take to finish in-flight requests.
        stop_grace: seconds between SIGTERM and SIGKILL.
        background_stops: retire replicas (drain, stop) and run readiness probes on worker
            threads (True for real processes, so neither a drain nor a slow probe ever blocks
            the loop); False runs both inline (deterministic tests).
        templates: the AnalysisTemplates that Canary/BlueGreen analyses name (None: none).
        analysis: takes the analysis runs' measurements (default: the built-in providers,
            on worker threads with ``background_stops``, inline otherwise).
        autoscale_period: seconds between autoscaler decisions (the HPA's sync period).
    """

    def __init__(
        self,
        *,
        store: DeploymentStateStore,
        engine: DeployEngine,
        routing: Routing | None = None,
        clock: Clock = time.time,
        backoff: BackoffPolicy | None = None,
        host: str = "127.0.0.1",
        probe_timeout: float = 1.0,
        probe_failure_threshold: int = 3,
        ready_probe_period: float = 5.0,
        poll_period: float = 1.0,
        resync_period: float = 1.0,
        drain_timeout: float = 30.0,
        stop_grace: float = 10.0,
        background_stops: bool = True,
        templates: AnalysisTemplateStore | None = None,
        analysis: AnalysisRunner | None = None,
        autoscale_period: float = 15.0,
    ) -> None:
        self.store = store
        self.engine = engine
        self.routing = routing
        self.clock = clock
        self.backoff = backoff or BackoffPolicy()
        self.host = host
        self._probes = ThreadPoolExecutor(max_workers=4) if background_stops else None
        self.observer = ReplicaObserver(
            engine,
            backoff=self.backoff,
            probe_timeout=probe_timeout,
            failure_threshold=probe_failure_threshold,
            ready_probe_period=ready_probe_period,
            poll_period=poll_period,
            pool=self._probes,
        )
        self.retirer = Retirer(
            store=store,
            engine=engine,
            routing=routing,
            forget=self.observer.forget,
            drain_timeout=drain_timeout,
            stop_grace=stop_grace,
            pool=ThreadPoolExecutor(max_workers=8) if background_stops else None,
        )
        self.poll_period = poll_period
        self.resync_period = resync_period
        self._router_due: dict[str, float] = {}  # deployment → when to check its router
        self._idle: dict[str, tuple[DeploymentSnapshot, float]] = {}  # last no-action input
        self._pushed: dict[str, RouteTable] = {}
        self._tick = threading.Lock()  # held while syncing; deletions wait for it
        self._deleting: set[str] = set()
        self.templates = templates
        self.measurer = Measurer(
            analysis=analysis
            or AnalysisRunner(
                executor=ThreadPoolExecutor(max_workers=2) if background_stops else None
            ),
            autoscaler=Autoscaler(
                engine=engine,
                router_stats=stats_from(routing.stats) if routing is not None else no_stats,
                period=autoscale_period,
            ),
            templates=templates,
        )

    # ---- API used by the control plane ------------------------------------------------------

    def apply(self, spec: DeploymentSpec) -> Deployment:
        """Store ``spec`` (generation grows if it changed); the next sync acts on it."""
        return self.store.apply_spec(spec, self.clock())

    def undo(self, name: str, to_revision: int = 0) -> UndoResult:
        """``rollout undo``: store the spec with the template of revision ``to_revision``."""
        snap = self.store.snapshot(name)
        result = undo(snap.deployment.spec, list(snap.revisions), to_revision)
        if not result.skipped:
            self.store.apply_spec(result.spec, self.clock())
        return result

    def is_deleting(self, name: str) -> bool:
        """True while :meth:`delete` of ``name`` runs."""
        return name in self._deleting

    def delete(self, name: str, timeout: float = 60.0) -> None:
        """Stop every replica (drained) and the router, then forget the deployment.

        Waits for a tick in flight; the loop leaves the deployment alone from then on.

        Raises:
            NotFoundError: no such deployment.
            ConflictError: it is already being deleted.
            TimeoutError: the replicas did not stop within ``timeout`` seconds.
        """
        with self._tick:
            if name in self._deleting:
                raise ConflictError(f"Deployment {name!r} is being deleted; wait for it to finish.")
            snap = self.store.snapshot(name)
            self._deleting.add(name)
        try:
            view = SyncView(snap)
            for rep in view.current.replicas:
                if rep.phase is not ReplicaPhase.TERMINATING:
                    view.write(PutReplica(transition(rep, ReplicaPhase.TERMINATING, ready=False)))
            self.store.commit(name, view.writes)
            self._push(view)  # an empty table: the router stops sending to any of them
            stops = [self.retirer.retire(view.deployment, rep, True)
                     for rep in view.current.replicas]  # fmt: skip
            deadline = time.monotonic() + timeout
            for fut in stops:
                fut.result(timeout=max(0.0, deadline - time.monotonic()))
            if self.routing is not None:
                self.routing.stop(view.deployment)
            self._pushed.pop(name, None)
            self._router_due.pop(name, None)
            self._idle.pop(name, None)
            self.measurer.forget(name)
            self.store.delete_deployment(name)
        finally:
            with self._tick:
                self._deleting.discard(name)

    def adopt(self) -> None:
        """After a (re)start: every router gets its whole table again at the next sync.

        Replicas whose recorded (pid, start time) no longer match a live process are marked
        FAILED by the next observation and replaced; live ones are kept as they are; the
        stops of TERMINATING replicas are resumed by the next sync, after its push.
        """
        self._pushed.clear()
        self._router_due.clear()
        self._idle.clear()

    def run(
        self, stop: threading.Event, interval: float = 0.25, hooks: SyncHooks | None = None
    ) -> None:
        """The sync loop: :meth:`adopt`, then :meth:`sync_all` every ``interval`` s until
        ``stop`` is set. The control plane runs this loop with its hooks."""
        self.adopt()
        while not stop.is_set():
            try:
                self.sync_all(hooks)
            except Exception:  # the store itself failed; keep the loop alive
                log.exception("The sync loop failed; retrying in %.2f s.", interval)
            stop.wait(interval)

    def sync_all(self, hooks: SyncHooks | None = None) -> list[SyncResult]:
        """One tick: one snapshot of every deployment, then one sync each. An error in one
        deployment goes to ``hooks.sync_failed`` (or the log) and does not stop the others."""
        results: list[SyncResult] = []
        with self._tick:
            for snap in self.store.snapshot_all():
                if snap.name in self._deleting:
                    continue
                try:
                    result = self._sync(snap)
                except NotFoundError:
                    continue  # deleted meanwhile
                except Exception as exc:
                    if hooks is None:
                        log.exception("Sync of %r failed; retrying next round.", snap.name)
                    else:
                        hooks.sync_failed(snap.name, exc)
                    continue
                results.append(result)
                if hooks is not None:
                    hooks.synced(result)
        return results

    def sync(self, name: str) -> list[Action]:
        """One sync of one deployment (read on its own); returns the actions taken."""
        with self._tick:
            return list(self._sync(self.store.snapshot(name)).actions)

    def close(self, timeout: float = 60.0) -> None:
        """Wait (≤ ``timeout`` s) for retiring replicas; the processes keep running otherwise."""
        self.retirer.close(timeout)
        if self._probes is not None:
            self._probes.shutdown(wait=False, cancel_futures=True)

    # ---- one sync ---------------------------------------------------------------------------

    def _sync(self, snap: DeploymentSnapshot) -> SyncResult:
        """One deployment's sync (see the module docstring)."""
        view = SyncView(snap)
        now = self.clock()
        effects = _Effects()
        self._ensure_router(view, now, effects)
        try:
            for rep in snap.replicas:
                seen = self.observer.observe(rep, now)
                if seen is not rep:
                    view.write(PutReplica(seen))
            self.measurer.measure(view, now)
            actions = self._reconcile(view.current, now)
            for action in actions:
                self._apply(view, action, effects)
            self._push(view)
            if view.writes:
                self.store.commit(snap.name, view.writes)
        except Exception:
            # Nothing of this sync was stored: stop what it started (replicas, a router), so
            # no process runs that no record knows. The next tick starts from the store again.
            for handle in effects.launched:
                with contextlib.suppress(Exception):
                    self.engine.stop(handle, 0.0)
            for rid in effects.new_replicas:  # e.g. their working directories
                with contextlib.suppress(Exception):
                    self.engine.release_replica(rid)
            if effects.router_started and self.routing is not None:
                with contextlib.suppress(Exception):
                    self.routing.stop(view.deployment)
                self._pushed.pop(snap.name, None)
                self._router_due.pop(snap.name, None)
            raise
        self._retire_terminating(view, effects.drains)
        return SyncResult(snap, view.current, tuple(actions))

    def _reconcile(self, cur: DeploymentSnapshot, now: float) -> list[Action]:
        """:func:`reconcile`, unless the deployment is idle (see ``resync_period``)."""
        idle = self._idle.get(cur.name)
        rolling_out = cur.deployment.status.rollout is not None and (
            cur.deployment.status.rollout.canary is not None
        )  # its pauses, analyses and deadlines move with the clock alone
        if (
            idle is not None
            and not rolling_out
            and now - idle[1] < self.resync_period
            and _same(idle[0], cur)
        ):
            return []
        d = cur.deployment
        if d.spec.autoscaling is not None:  # the controller runs what the autoscaler decided
            d = replace(d, spec=replace(d.spec, replicas=replicas_wanted(d)))
        actions = reconcile(d, list(cur.revisions), list(cur.replicas), now, self.backoff,
                            self.measurer.templates_for(d))  # fmt: skip
        if actions:
            self._idle.pop(cur.name, None)
        else:
            self._idle[cur.name] = (cur, now)
        return actions

    def change_rollout(
        self,
        name: str,
        change: Callable[[DeploymentSpec, RolloutState | None, float], RolloutState],
    ) -> Deployment:
        """Apply a ``rollout promote|abort|retry`` to the stored rollout state, between two
        syncs (so the loop never overwrites it). Raises what ``change`` raises."""
        with self._tick:
            if name in self._deleting:
                raise ConflictError(f"Deployment {name!r} is being deleted; wait for it to finish.")
            d = self.store.snapshot(name).deployment
            state = change(d.spec, d.status.rollout, self.clock())
            self.store.commit(name, [SetStatus(replace(d.status, rollout=state))])
            self._idle.pop(name, None)
            return self.store.snapshot(name).deployment

    def _ensure_router(self, view: SyncView, now: float, effects: _Effects) -> None:
        if self.routing is None:
            return
        name = view.current.name
        if view.deployment.router is not None and now < self._router_due.get(name, now):
            return
        try:
            router = self.routing.ensure(view.deployment)
        except BackendError:
            # Replicas are still reconciled; the router is retried next round.
            log.exception("Router of deployment %r is not running; retrying.", name)
            return
        self._router_due[name] = now + self.poll_period
        if router != view.deployment.router:
            view.write(SetRouter(router))
            effects.router_started = router is not None
            self._pushed.pop(view.current.name, None)

    def _apply(self, view: SyncView, action: Action, effects: _Effects) -> None:
        """The one place where each action becomes writes (on the view) and side effects."""
        match action:
            case CreateRevision(revision=rev):
                view.write(PutRevision(rev))
            case ScaleRevision():
                rev = replace(view.revision(action.hash), replicas=action.replicas,
                              desired_replicas=action.desired_replicas,
                              max_replicas=action.max_replicas)  # fmt: skip
                view.write(PutRevision(rev))
            case RecordRevisionNumber():
                rev = replace(view.revision(action.hash), number=action.number,
                              history=action.history)  # fmt: skip
                view.write(PutRevision(rev))
            case DeleteRevision(hash=h):
                view.write(DropRevision(h))
            case StartReplica(revision=h):
                rev = view.revision(h)
                slot = Replica(id=f"{rev.name}-{secrets.token_hex(3)}", deployment=rev.deployment,
                               revision=rev.hash, phase=ReplicaPhase.PENDING,
                               created_at=self.clock())  # fmt: skip
                effects.new_replicas.append(slot.id)
                view.write(PutReplica(self._launch(slot, rev, effects)))
            case RestartReplica(replica_id=rid):
                rep = view.replica(rid)
                if rep is not None and rep.phase is ReplicaPhase.FAILED:
                    slot = transition(rep, ReplicaPhase.PENDING, restarts=rep.restarts + 1)
                    rev = view.revision(rep.revision)
                    view.write(PutReplica(self._launch(slot, rev, effects)))
            case StopReplica(replica_id=rid, drain=drain):
                rep = view.replica(rid)
                if rep is not None and rep.phase is not ReplicaPhase.TERMINATING:
                    view.write(PutReplica(transition(rep, ReplicaPhase.TERMINATING, ready=False)))
                    self.observer.forget(rid)
                    effects.drains[rid] = drain
            case UpdateStatus(status=status):
                view.write(SetStatus(status))
            case _:
                assert_never(action)

    def _launch(self, slot: Replica, rev: Revision, effects: _Effects) -> Replica:
        """Start the process of a PENDING slot; the slot as it is afterwards."""
        now = self.clock()
        try:
            handle = self.engine.start_replica(slot.id, rev.template)
            effects.launched.append(handle)
        except BackendError as exc:
            return transition(
                slot, ReplicaPhase.FAILED, pid=None, process_start=None, ready=False,
                ready_since=None, crash_streak=slot.crash_streak + 1,
                last_exit=ExitInfo(at=now, code=None, message=f"failed to start: {exc}",
                                   start_failed=True),
            )  # fmt: skip
        return replace(slot, pid=handle.pid, process_start=handle.process_start,
                       port=handle.port, log_path=handle.log_path, started_at=now, ready=False,
                       ready_since=None)  # fmt: skip

    def _push(self, view: SyncView) -> None:
        """Send the router the table of the view, if it changed."""
        if self.routing is None:
            return
        d = view.deployment
        previous = self._pushed.get(d.name)
        auto = d.spec.autoscaling
        table = route_table(
            view.current.replicas,
            self.host,
            traffic=d.status.traffic,
            hold_seconds=ACTIVATOR_HOLD_SECONDS if auto and auto.min_replicas == 0 else 0.0,
            labels=route_labels(d),
            previous=previous,
        )
        if table == previous:
            return
        try:
            self.routing.set_routes(d, table)
        except BackendError:
            log.exception("Could not update the router of %r; retrying next round.", d.name)
            return
        self._pushed[d.name] = table

    # ---- retiring replicas ------------------------------------------------------------------

    def _retire_terminating(self, view: SyncView, drains: dict[str, bool]) -> None:
        """Stop every TERMINATING replica whose stop is not already under way (new ones, and
        ones whose stop failed or was cut short by a restart)."""
        for rep in view.current.replicas:
            if rep.phase is ReplicaPhase.TERMINATING:
                fut = self.retirer.retire(view.deployment, rep, drains.get(rep.id, True))
                if not self.retirer.background and fut.result():
                    view.forget_replica(rep.id)


def _same(a: DeploymentSnapshot, b: DeploymentSnapshot) -> bool:
    """The very same objects (the stores hand out one object per unchanged row)."""
    return (
        a.deployment is b.deployment
        and len(a.revisions) == len(b.revisions)
        and len(a.replicas) == len(b.replicas)
        and all(x is y for x, y in zip(a.revisions, b.revisions, strict=True))
        and all(x is y for x, y in zip(a.replicas, b.replicas, strict=True))
    )
