"""ReplicaObserver: what the sync loop learns from replica processes, as replica updates.

Processes are polled (for the local engine, one read of ``/proc/<pid>/stat``): a replica
that is not ready (starting, or out after failed probes) every tick, a ready one every
``poll_period`` seconds (like the kubelet's 1 s relist), so an exit is seen within a second.
Readiness probes (an HTTP ``GET /v2/health/ready``) follow a cadence, like Kubernetes'
``periodSeconds``:

- a replica that is not ready (starting, or out after failed probes) is probed every tick,
  so a new replica joins the router as soon as it answers;
- a ready replica is probed every ``ready_probe_period`` seconds, its phase within the
  period spread by its id (so the probes of many replicas do not land on the same tick);
- a ready replica whose last probe failed is probed every tick until it passes again or
  fails ``failure_threshold`` probes in a row (then it is marked not ready).

The router health-checks its backends every second on its own, so a hung replica leaves the
rotation within seconds whatever this period is; the period sets how fast the *status*
(ready/available counts) notices.

Probes run on a thread pool when one is given (the control plane's case): a tick hands the
due probes to the pool and uses each answer at the first tick after it came, so a replica
that takes its whole ``probe_timeout`` to answer never delays the loop (Kubernetes' kubelet
runs its probers on their own goroutines for the same reason). Without a pool they run
inline and their answer is used at once (deterministic tests).

Nothing here writes: :meth:`ReplicaObserver.observe` returns the updated replica (the same
object when nothing changed) and the sync loop commits what changed.
"""

from __future__ import annotations

import zlib
from concurrent.futures import Executor, Future
from dataclasses import replace

from loopline.deploy.backoff import BackoffPolicy
from loopline.deploy.engines.base import DeployEngine, ProcessHandle
from loopline.deploy.replica import ExitInfo, Replica, ReplicaPhase, transition


def process_handle(rep: Replica) -> ProcessHandle | None:
    """The handle of the replica's recorded process (None when it has none)."""
    if rep.pid is None or rep.process_start is None or rep.port is None:
        return None
    return ProcessHandle(
        pid=rep.pid, process_start=rep.process_start, port=rep.port, log_path=rep.log_path
    )


def _phase(replica_id: str) -> float:
    """A fixed number in [0, 1) per replica: where in the period its probes fall."""
    return zlib.crc32(replica_id.encode()) / 2**32


class ReplicaObserver:
    """Polls and probes replica processes through an engine.

    Args:
        engine: the engine whose processes are observed.
        backoff: the crash back-off policy (its ``reset_after`` decides crash streaks).
        probe_timeout: seconds allowed for one readiness probe.
        failure_threshold: consecutive failed probes before a ready replica is marked not
            ready (Kubernetes' readiness ``failureThreshold``).
        ready_probe_period: seconds between probes of a ready replica (``periodSeconds``).
        poll_period: seconds between liveness polls of a ready replica (0: every tick).
        pool: where probes run (None: inline, in :meth:`observe`).
    """

    def __init__(
        self,
        engine: DeployEngine,
        *,
        backoff: BackoffPolicy,
        probe_timeout: float,
        failure_threshold: int,
        ready_probe_period: float,
        poll_period: float = 0.0,
        pool: Executor | None = None,
    ) -> None:
        self.engine = engine
        self.backoff = backoff
        self.probe_timeout = probe_timeout
        self.failure_threshold = failure_threshold
        self.ready_probe_period = ready_probe_period
        self.poll_period = poll_period
        self.pool = pool
        self._next_probe: dict[str, float] = {}  # ready replicas: when to probe next
        self._next_poll: dict[str, float] = {}  # ready replicas: when to poll next
        self._inflight: dict[str, tuple[ProcessHandle, Future[bool]]] = {}

    def observe(self, rep: Replica, now: float) -> Replica:
        """The replica as its process looks at ``now`` (``rep`` itself if unchanged)."""
        if rep.phase not in (ReplicaPhase.PENDING, ReplicaPhase.RUNNING):
            return rep
        handle = process_handle(rep)
        if handle is None:
            return rep
        steady = rep.ready and not rep.probe_failures
        if steady and not self._poll_due(rep.id, now):
            answered = rep.id in self._inflight and self._inflight[rep.id][1].done()
            if not answered and not self._due(rep, now):
                return rep
        gone = self.engine.poll(handle)
        if steady:
            self._next_poll[rep.id] = now + self.poll_period
        if gone is not None:
            self.forget(rep.id)
            ran = now - (rep.started_at or now)
            streak = 1 if ran >= self.backoff.reset_after else rep.crash_streak + 1
            code = "unknown code" if gone.code is None else f"code {gone.code}"
            return transition(
                rep, ReplicaPhase.FAILED, ready=False, ready_since=None, crash_streak=streak,
                last_exit=ExitInfo(at=now, code=gone.code, message=f"exited with {code}"),
            )  # fmt: skip
        if self.pool is None:  # inline: probe now if due, and use the answer at once
            if not self._due(rep, now):
                return rep
            return self._probed(rep, now, self.engine.probe_ready(handle, self.probe_timeout))
        ready = self._answer(rep.id, handle)
        seen = rep if ready is None else self._probed(rep, now, ready)
        if rep.id not in self._inflight and self._due(seen, now):
            probe = self.pool.submit(self.engine.probe_ready, handle, self.probe_timeout)
            self._inflight[rep.id] = (handle, probe)
        return seen

    def _answer(self, replica_id: str, handle: ProcessHandle) -> bool | None:
        """The answer of the replica's probe on the pool, once it came (None before)."""
        inflight = self._inflight.get(replica_id)
        if inflight is None or not inflight[1].done():
            return None
        del self._inflight[replica_id]
        probed, probe = inflight
        if probed != handle:
            return None  # it asked an earlier process of this replica
        try:
            return probe.result()
        except Exception:
            return False

    def _probed(self, rep: Replica, now: float, ready: bool) -> Replica:
        """The replica after a probe answered ``ready``."""
        if ready:
            self._schedule(rep.id, now, first=not rep.ready)
        if ready and not rep.ready:
            if rep.phase is ReplicaPhase.PENDING:
                return transition(
                    rep, ReplicaPhase.RUNNING, ready=True, ready_since=now, probe_failures=0
                )
            return replace(rep, ready=True, ready_since=now, probe_failures=0)
        if ready:
            return replace(rep, probe_failures=0) if rep.probe_failures else rep
        if not rep.ready:
            return rep
        failures = rep.probe_failures + 1
        if failures >= self.failure_threshold:
            self.forget(rep.id)
            return replace(rep, ready=False, ready_since=None, probe_failures=0)
        return replace(rep, probe_failures=failures)

    def forget(self, replica_id: str) -> None:
        """Drop what is kept about a replica (it stopped, or is no longer ready)."""
        self._next_probe.pop(replica_id, None)
        self._next_poll.pop(replica_id, None)
        inflight = self._inflight.pop(replica_id, None)
        if inflight is not None:
            inflight[1].cancel()

    def _due(self, rep: Replica, now: float) -> bool:
        if not rep.ready or rep.probe_failures:
            return True
        due = self._next_probe.get(rep.id)
        if due is None:  # ready before this observer started (adopted): spread them out
            due = self._next_probe[rep.id] = now + self.ready_probe_period * _phase(rep.id)
        return now >= due

    def _poll_due(self, replica_id: str, now: float) -> bool:
        due = self._next_poll.get(replica_id)
        if due is None:
            due = self._next_poll[replica_id] = now + self.poll_period * _phase(replica_id)
        return now >= due

    def _schedule(self, replica_id: str, now: float, *, first: bool) -> None:
        period = self.ready_probe_period
        spread = period * (0.5 + _phase(replica_id)) if first else period
        self._next_probe[replica_id] = now + spread
