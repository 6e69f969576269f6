"""The thin sync loop: observe processes, :func:`reconcile`, apply the actions.

``DeploymentManager`` owns no state of its own that matters: everything is in the
:class:`~loopline.deploy.state.DeploymentStateStore`, so a fresh manager on the same store
(after a control-plane crash) re-adopts the running replicas and router and finishes any
rollout in progress (:meth:`DeploymentManager.adopt`).
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace

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
from loopline.deploy.backoff import BackoffPolicy
from loopline.deploy.controller import reconcile
from loopline.deploy.deployment import Deployment
from loopline.deploy.engines.base import DeployEngine, ProcessHandle
from loopline.deploy.replica import ExitInfo, Replica, ReplicaPhase
from loopline.deploy.revision import Revision
from loopline.deploy.route_table import RouteTable, route_table
from loopline.deploy.routing import Routing
from loopline.deploy.spec import DeploymentSpec
from loopline.deploy.state import DeploymentStateStore
from loopline.deploy.undo import UndoResult, undo
from loopline.errors import BackendError, NotFoundError

log = logging.getLogger(__name__)

Clock = Callable[[], float]


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
        drain_timeout: seconds a retiring replica may take to finish in-flight requests.
        stop_grace: seconds between SIGTERM and SIGKILL.
        background_stops: retire replicas on worker threads (True for real processes, so a
            drain never blocks the loop); False runs them inline (deterministic tests).
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
        drain_timeout: float = 30.0,
        stop_grace: float = 10.0,
        background_stops: bool = True,
    ) -> None:
        self.store = store
        self.engine = engine
        self.routing = routing
        self.clock = clock
        self.backoff = backoff or BackoffPolicy()
        self.host = host
        self.probe_timeout = probe_timeout
        self.probe_failure_threshold = probe_failure_threshold
        self.drain_timeout = drain_timeout
        self.stop_grace = stop_grace
        self._pool = ThreadPoolExecutor(max_workers=8) if background_stops else None
        self._stopping: dict[str, Future[None]] = {}
        self._pushed: dict[str, RouteTable] = {}
        self._lock = threading.Lock()

    # ---- API used by the control plane ------------------------------------------------------

    def apply(self, spec: DeploymentSpec) -> Deployment:
        """Store ``spec`` (generation grows if it changed); the next sync acts on it."""
        return self.store.apply_spec(spec, self.clock())

    def undo(self, name: str, to_revision: int = 0) -> UndoResult:
        """``rollout undo``: store the spec with the template of revision ``to_revision``."""
        d = self.store.get_deployment(name)
        result = undo(d.spec, self.store.list_revisions(name), to_revision)
        if not result.skipped:
            self.store.apply_spec(result.spec, self.clock())
        return result

    def delete(self, name: str, timeout: float = 60.0) -> None:
        """Stop every replica (drained) and the router, then forget the deployment."""
        d = self.store.get_deployment(name)
        for rep in self.store.list_replicas(name):
            self._retire(d, rep)
        deadline = time.monotonic() + timeout
        for rep in self.store.list_replicas(name):
            fut = self._stopping.get(rep.id)
            if fut is not None:
                fut.result(timeout=max(0.0, deadline - time.monotonic()))
        if self.routing is not None:
            self.routing.stop(d)
        self._pushed.pop(name, None)
        self.store.delete_deployment(name)

    def adopt(self) -> None:
        """After a (re)start: resume unfinished stops and re-push every router's backends.

        Replicas whose recorded (pid, start time) no longer match a live process are marked
        FAILED by the next observation and replaced; live ones are kept as they are.
        """
        self._pushed.clear()
        for d in self.store.list_deployments():
            for rep in self.store.list_replicas(d.name):
                if rep.phase is ReplicaPhase.TERMINATING:
                    self._retire(d, rep)

    def sync(self, name: str) -> list[Action]:
        """Observe, reconcile and act once for one deployment; returns the actions taken."""
        d = self.store.get_deployment(name)
        if self.routing is not None:
            try:
                router = self.routing.ensure(d)
            except BackendError:
                # Replicas are still reconciled; the router is retried next round.
                log.exception("Router of deployment %r is not running; retrying.", name)
            else:
                if router != d.router:
                    d = self.store.set_router(name, router)
                    self._pushed.pop(name, None)
        self._observe(d)
        # Route to what just became ready *before* the status can say Available, so a
        # client that waits for the rollout never races the router.
        try:
            self._push_backends(self.store.get_deployment(name))
        except BackendError:
            log.exception("Could not update the router of %r; retrying next round.", name)
        self._resume_stops(d)
        now = self.clock()
        actions = reconcile(
            d, self.store.list_revisions(name), self.store.list_replicas(name), now, self.backoff
        )
        for action in actions:
            self._apply(d, action)
        try:
            self._push_backends(self.store.get_deployment(name))
        except BackendError:
            log.exception("Could not update the router of %r; retrying next round.", name)
        return actions

    def sync_all(self) -> None:
        """One sync of every deployment; an error in one is logged and does not stop others."""
        for d in self.store.list_deployments():
            try:
                self.sync(d.name)
            except NotFoundError:
                continue  # deleted meanwhile
            except Exception:
                log.exception("Sync of deployment %r failed; retrying next round.", d.name)

    def run(self, stop: threading.Event, interval: float = 0.25) -> None:
        """Sync every deployment every ``interval`` seconds until ``stop`` is set."""
        while not stop.is_set():
            self.sync_all()
            stop.wait(interval)

    def close(self, timeout: float = 60.0) -> None:
        """Wait (≤ ``timeout`` s) for retiring replicas; the processes keep running otherwise."""
        if self._pool is not None:
            deadline = time.monotonic() + timeout
            for fut in list(self._stopping.values()):
                fut.result(timeout=max(0.0, deadline - time.monotonic()))
            self._pool.shutdown(wait=False)

    # ---- observation --------------------------------------------------------------------

    def _resume_stops(self, d: Deployment) -> None:
        """Retire again any TERMINATING replica whose stop is not in progress (it failed)."""
        for rep in self.store.list_replicas(d.name):
            if rep.phase is ReplicaPhase.TERMINATING:
                fut = self._stopping.get(rep.id)
                if fut is None and self._pool is not None:
                    self._retire(d, rep)

    def _observe(self, d: Deployment) -> None:
        for rep in self.store.list_replicas(d.name):
            if rep.phase not in (ReplicaPhase.PENDING, ReplicaPhase.RUNNING):
                continue
            handle = _handle(rep)
            if handle is None:
                continue
            now = self.clock()
            gone = self.engine.poll(handle)
            if gone is not None:
                ran = now - (rep.started_at or now)
                streak = 1 if ran >= self.backoff.reset_after else rep.crash_streak + 1
                code = "unknown code" if gone.code is None else f"code {gone.code}"
                self.store.put_replica(
                    replace(
                        rep,
                        phase=ReplicaPhase.FAILED,
                        ready=False,
                        ready_since=None,
                        crash_streak=streak,
                        last_exit=ExitInfo(at=now, code=gone.code, message=f"exited with {code}"),
                    )
                )
                continue
            ready = self.engine.probe_ready(handle, self.probe_timeout)
            if ready and not rep.ready:
                rep = replace(
                    rep, phase=ReplicaPhase.RUNNING, ready=True, ready_since=now, probe_failures=0
                )
                self.store.put_replica(rep)
            elif ready and rep.probe_failures:
                self.store.put_replica(replace(rep, probe_failures=0))
            elif not ready and rep.ready:
                failures = rep.probe_failures + 1
                if failures >= self.probe_failure_threshold:
                    rep = replace(rep, ready=False, ready_since=None, probe_failures=0)
                else:
                    rep = replace(rep, probe_failures=failures)
                self.store.put_replica(rep)

    # ---- actions ----------------------------------------------------------------------------

    def _apply(self, d: Deployment, action: Action) -> None:
        name = d.name
        if isinstance(action, CreateRevision):
            self.store.put_revision(action.revision)
        elif isinstance(action, ScaleRevision):
            rev = self._revision(name, action.hash)
            self.store.put_revision(
                replace(
                    rev,
                    replicas=action.replicas,
                    desired_replicas=action.desired_replicas,
                    max_replicas=action.max_replicas,
                )
            )
        elif isinstance(action, RecordRevisionNumber):
            rev = self._revision(name, action.hash)
            self.store.put_revision(replace(rev, number=action.number, history=action.history))
        elif isinstance(action, DeleteRevision):
            self.store.delete_revision(name, action.hash)
        elif isinstance(action, StartReplica):
            rev = self._revision(name, action.revision)
            rid = f"{rev.name}-{secrets.token_hex(3)}"
            slot = Replica(
                id=rid,
                deployment=name,
                revision=rev.hash,
                phase=ReplicaPhase.PENDING,
                created_at=self.clock(),
            )
            self._launch(slot, rev)
        elif isinstance(action, RestartReplica):
            rep = self._replica(name, action.replica_id)
            if rep is not None and rep.phase is ReplicaPhase.FAILED:
                rep = replace(rep, restarts=rep.restarts + 1)
                self._launch(rep, self._revision(name, rep.revision))
        elif isinstance(action, StopReplica):
            rep = self._replica(name, action.replica_id)
            if rep is not None:
                self._retire(d, rep, drain=action.drain)
        elif isinstance(action, UpdateStatus):
            self.store.set_status(name, action.status)

    def _launch(self, slot: Replica, rev: Revision) -> None:
        now = self.clock()
        try:
            handle = self.engine.start_replica(slot.id, rev.template)
        except BackendError as exc:
            self.store.put_replica(
                replace(
                    slot,
                    phase=ReplicaPhase.FAILED,
                    pid=None,
                    process_start=None,
                    ready=False,
                    ready_since=None,
                    crash_streak=slot.crash_streak + 1,
                    last_exit=ExitInfo(
                        at=now, code=None, message=f"failed to start: {exc}", start_failed=True
                    ),
                )
            )
            return
        self.store.put_replica(
            replace(
                slot,
                phase=ReplicaPhase.PENDING,
                pid=handle.pid,
                process_start=handle.process_start,
                port=handle.port,
                log_path=handle.log_path,
                started_at=now,
                ready=False,
                ready_since=None,
            )
        )

    def _retire(self, d: Deployment, rep: Replica, drain: bool = True) -> None:
        with self._lock:
            running = self._stopping.get(rep.id)
            if running is not None and not running.done():
                return
            if rep.phase is not ReplicaPhase.TERMINATING:
                rep = replace(rep, phase=ReplicaPhase.TERMINATING, ready=False)
                self.store.put_replica(rep)
            if self._pool is not None:
                self._stopping[rep.id] = self._pool.submit(self._finish_stop, d, rep, drain)
                return
        self._finish_stop(d, rep, drain)

    def _finish_stop(self, d: Deployment, rep: Replica, drain: bool) -> None:
        try:
            # Take it out of rotation first (the loop's next push also omits it), then
            # wait for in-flight requests, then signal the process.
            try:
                self._push_backends(self.store.get_deployment(d.name))
            except BackendError:
                log.warning("Router of %r unreachable while retiring %r.", d.name, rep.id)
            if drain and self.routing is not None and rep.port is not None:
                self.routing.drain(d, rep.id, self.drain_timeout)
            handle = _handle(rep)
            if handle is not None:
                self.engine.stop(handle, self.stop_grace)
            self.store.delete_replica(d.name, rep.id)
        except NotFoundError:
            pass  # the deployment or replica was deleted meanwhile
        except Exception:
            log.exception("Stopping replica %r failed; the next sync retries.", rep.id)
        finally:
            with self._lock:
                self._stopping.pop(rep.id, None)

    def _push_backends(self, d: Deployment) -> None:
        if self.routing is None:
            return
        with self._lock:  # compute and push under one lock: never push a stale set
            table = route_table(
                self.store.list_replicas(d.name),
                self.host,
                traffic=d.status.traffic,
                previous=self._pushed.get(d.name),
            )
            if self._pushed.get(d.name) == table:
                return
            self.routing.set_routes(d, table)
            self._pushed[d.name] = table

    def _revision(self, name: str, hash: str) -> Revision:
        for rev in self.store.list_revisions(name):
            if rev.hash == hash:
                return rev
        raise NotFoundError(f"Deployment {name!r} has no revision with hash {hash!r}.")

    def _replica(self, name: str, replica_id: str) -> Replica | None:
        for rep in self.store.list_replicas(name):
            if rep.id == replica_id:
                return rep
        return None


def _handle(rep: Replica) -> ProcessHandle | None:
    if rep.pid is None or rep.process_start is None or rep.port is None:
        return None
    return ProcessHandle(
        pid=rep.pid, process_start=rep.process_start, port=rep.port, log_path=rep.log_path
    )
