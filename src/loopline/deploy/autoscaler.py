"""The autoscaler of the sync loop: observe load, :func:`~loopline.deploy.hpa.decide`, record.

Every ``period`` seconds (the HPA's sync period, 15 s by default) it reads, for the replicas
that serve traffic, the CPU of each replica's process session (through the engine), the
requests per second and requests in flight per revision (the router's ``/stats``), and, when
a ``queue_delay_seconds`` metric is configured, each replica's mean batch queue delay (its
``/metrics``). It turns them into :class:`~loopline.deploy.replica_calculator.ReplicaSample`
values and calls the pure decision. The decision (desired replicas, the HPA's state with its
recommendation history, conditions and current metrics) is kept in the deployment status,
so a restarted control plane continues with the same stabilization windows.

At zero replicas (``minReplicas: 0``) the router holds incoming requests (Knative's
activator); the autoscaler then checks for demand on every sync, not every period, so the
first replica starts within one tick of the first request.

Rollout-aware: during a canary or blue-green rollout the replicas of every revision that
carries traffic are measured, ``current`` is the deployment's replica count (the stable
revision's size, never stable + canary: argo-rollouts#4847), and scale-down waits until the
rollout ends.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from typing import Any

import httpx

from loopline.deploy.autoscaler_state import AutoscalerState, AutoscalerStatus
from loopline.deploy.autoscaling import Autoscaling, MetricSourceType
from loopline.deploy.deployment import Deployment
from loopline.deploy.engines.base import DeployEngine
from loopline.deploy.hpa import Demand, decide
from loopline.deploy.replica import Replica, ReplicaPhase
from loopline.deploy.replica_calculator import ReplicaSample
from loopline.errors import BackendError

log = logging.getLogger(__name__)

#: How long the router holds a request while a deployment scaled to zero starts a replica.
ACTIVATOR_HOLD_SECONDS = 60.0

RouterStats = Callable[[Deployment, float], "dict[str, Any] | None"]
Scrape = Callable[[str, int], "str | None"]


def replicas_wanted(d: Deployment) -> int:
    """The replica count the controller should run: the autoscaler's decision when the
    deployment autoscales, else ``spec.replicas``."""
    spec = d.spec.autoscaling
    if spec is None:
        return d.spec.replicas
    current = d.status.autoscaler
    if current is None:
        return min(max(d.spec.replicas, spec.min_replicas), spec.max_replicas)
    if current.desired == 0 and spec.min_replicas > 0:
        # The autoscaler scaled to zero under minReplicas 0 and the spec no longer allows
        # zero. Kubernetes leaves a target at zero alone ("scaled to zero by hand"), but this
        # zero was the autoscaler's own: without this the deployment would stay at zero, its
        # router no longer holding requests, until autoscaling is removed.
        return spec.min_replicas
    return current.desired


class Autoscaler:
    """Decides the replica count of autoscaled deployments.

    Args:
        engine: reads each replica's CPU seconds.
        router_stats: the router's ``/stats`` JSON for a deployment over a window (None when
            the router cannot be reached).
        period: seconds between decisions (the HPA's ``--horizontal-pod-autoscaler-sync-period``).
        scrape: fetches a replica's ``/metrics`` text (host, port) for queue delays.
    """

    def __init__(
        self,
        *,
        engine: DeployEngine,
        router_stats: RouterStats,
        period: float = 15.0,
        scrape: Scrape | None = None,
    ) -> None:
        self.engine = engine
        self.router_stats = router_stats
        self.period = period
        self.scrape = scrape or _scrape
        # Readings by (deployment, replica), kept only for the replicas a deployment still has.
        self._cpu: dict[tuple[str, str], tuple[float, float]] = {}  # → (at, cpu seconds)
        self._queue: dict[tuple[str, str], tuple[float, float]] = {}  # → (delay sum, count)
        self._ever_ready: set[tuple[str, str]] = set()

    def step(
        self, d: Deployment, replicas: Sequence[Replica], now: float, rolling_out: bool
    ) -> AutoscalerStatus | None:
        """A new decision when one is due (None: not autoscaled, or not due yet)."""
        spec = d.spec.autoscaling
        if spec is None:
            return None
        last = d.status.autoscaler
        current = replicas_wanted(d)
        self._keep(d.name, {r.id for r in replicas})
        for r in replicas:
            if r.ready:
                self._ever_ready.add((d.name, r.id))
        due = last is None or now >= last.observed_at + self.period
        if not due and current > 0:
            return None
        window = self.period if last is None else max(1.0, min(600.0, now - last.observed_at))
        stats = self.router_stats(d, window)
        demand = _demand(stats)
        if not due and not demand.active:
            return None  # at zero and nobody asks: nothing to do until the next period
        samples = self._samples(d, replicas, stats, now)
        state = last.state if last is not None else AutoscalerState()
        decision = decide(spec, current, samples, state, now, demand, rolling_out=rolling_out)
        return AutoscalerStatus(decision.desired, now, decision.state, decision.status_dict(),
                                tuple(e.to_dict() for e in decision.events))  # fmt: skip

    def forget(self, deployment: str) -> None:
        """Drop every reading of a deleted deployment."""
        self._keep(deployment, set())

    def _keep(self, deployment: str, replica_ids: set[str]) -> None:
        """Forget the readings of the deployment's replicas that are gone."""
        for cache in (self._cpu, self._queue):
            for key in [k for k in cache if k[0] == deployment and k[1] not in replica_ids]:
                del cache[key]
        self._ever_ready = {
            k for k in self._ever_ready if k[0] != deployment or k[1] in replica_ids
        }

    # ---- observation -------------------------------------------------------------------------

    def _samples(
        self,
        d: Deployment,
        replicas: Sequence[Replica],
        stats: dict[str, Any] | None,
        now: float,
    ) -> list[ReplicaSample]:
        spec = d.spec.autoscaling
        assert spec is not None
        weights = d.status.traffic.weight_map()
        serving = [
            r
            for r in replicas
            if r.phase is not ReplicaPhase.TERMINATING
            and (weights is None or weights.get(r.revision, 0) > 0)
        ]
        cpu = self._cpu_rates(d.name, serving, now)
        queue = (
            self._queue_delays(d.name, serving) if _wants(spec, "queue_delay_seconds") else {}
        )
        per_revision = (stats or {}).get("revisions") or {}
        ready_count: dict[str, int] = {}
        for r in serving:
            if r.ready:
                ready_count[r.revision] = ready_count.get(r.revision, 0) + 1
        samples = []
        for r in serving:
            rev = per_revision.get(r.revision) or {}
            n = ready_count.get(r.revision, 0)
            samples.append(
                ReplicaSample(
                    replica=r.id,
                    revision=r.revision,
                    phase=r.phase,
                    ready=r.ready,
                    started_at=r.started_at,
                    ready_since=r.ready_since,
                    ever_ready=(d.name, r.id) in self._ever_ready,
                    window_start=cpu.get(r.id, (None, None))[0],
                    cpu=cpu.get(r.id, (None, None))[1],
                    cpu_request=float(d.spec.template.workers),
                    in_flight_requests=_share(stats, rev.get("inFlight", 0), r.ready, n),
                    requests_per_second=_share(stats, rev.get("rate", 0.0), r.ready, n),
                    queue_delay_seconds=queue.get(r.id),
                )
            )
        return samples

    def _cpu_rates(
        self, deployment: str, replicas: Sequence[Replica], now: float
    ) -> dict[str, tuple[float | None, float | None]]:
        pids = {r.pid: r for r in replicas if r.pid is not None}
        totals = self.engine.cpu_seconds(list(pids))
        out: dict[str, tuple[float | None, float | None]] = {}
        for pid, r in pids.items():
            total = totals.get(pid)
            if total is None:
                continue
            before = self._cpu.get((deployment, r.id))
            self._cpu[(deployment, r.id)] = (now, total)
            if before is None or now <= before[0]:
                continue  # the first reading only starts the window
            out[r.id] = (before[0], max(0.0, total - before[1]) / (now - before[0]))
        return out

    def _queue_delays(self, deployment: str, replicas: Sequence[Replica]) -> dict[str, float]:
        out: dict[str, float] = {}
        for r in replicas:
            if not r.ready or r.port is None:
                continue
            text = self.scrape("127.0.0.1", r.port)
            if text is None:
                continue
            total, count = _histogram(text, "loopline_batch_queue_delay_seconds")
            before = self._queue.get((deployment, r.id))
            self._queue[(deployment, r.id)] = (total, count)
            if before is not None and count > before[1]:
                out[r.id] = (total - before[0]) / (count - before[1])
            elif before is not None:
                out[r.id] = 0.0  # no batch in the window: nothing waited
        return out


def _share(stats: object, value: object, ready: bool, n: int) -> float | None:
    """A revision's figure per ready replica (None: no stats, or the replica is not ready)."""
    if stats is None or not ready or n == 0 or not isinstance(value, int | float):
        return None
    return float(value) / n


def _wants(spec: Autoscaling, metric: str) -> bool:
    """Whether ``spec`` scales on the Pods metric ``metric``."""
    return any(m.type is MetricSourceType.PODS and m.name == metric for m in spec.metrics)


def _demand(stats: dict[str, Any] | None) -> Demand:
    if not stats:
        return Demand()
    revisions = (stats.get("revisions") or {}).values()
    return Demand(
        requests=sum(int(r.get("requests", 0)) for r in revisions),
        in_flight=sum(int(r.get("inFlight", 0)) for r in revisions),
        held=int(stats.get("held", 0)),
    )


_SAMPLE = re.compile(r"^(\w+)(?:\{[^}]*\})? ([0-9.eE+-]+|NaN|\+Inf)$", re.M)


def _histogram(text: str, name: str) -> tuple[float, float]:
    """Sum and count of a Prometheus histogram over every label set."""
    total = count = 0.0
    for m in _SAMPLE.finditer(text):
        if m.group(1) == f"{name}_sum":
            total += float(m.group(2))
        elif m.group(1) == f"{name}_count":
            count += float(m.group(2))
    return total, count


def _scrape(host: str, port: int) -> str | None:
    try:
        r = httpx.get(f"http://{host}:{port}/metrics", timeout=1.0)
    except httpx.HTTPError:
        return None
    return r.text if r.status_code == 200 else None


def no_stats(d: Deployment, window: float) -> dict[str, Any] | None:
    """Router stats of a loop without routers (unit tests): none."""
    return None


def stats_from(routing_stats: Callable[[Deployment, float], dict[str, Any]]) -> RouterStats:
    """Adapt a routing's ``stats`` (which raises BackendError) to None-on-failure."""

    def read(d: Deployment, window: float) -> dict[str, Any] | None:
        try:
            return routing_stats(d, window)
        except BackendError as exc:
            log.warning("Router stats of %r unavailable: %s", d.name, exc)
            return None

    return read
