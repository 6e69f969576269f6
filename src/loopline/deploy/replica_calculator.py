"""Replicas one metric asks for: Kubernetes' ``replica_calculator.go``, on replica samples.

:func:`replicas_for_metric` copies ``GetResourceReplicas`` (CPU Utilization),
``GetRawResourceReplicas`` (CPU AverageValue) and ``GetMetricReplicas`` (Pods AverageValue):

- ``groupPods``: terminating and failed replicas are ignored; pending replicas are *unready*;
  a running replica without the metric is *missing*; for CPU only, a replica is also unready
  while it is not ready within the CPU initialization period (5 min from start) or its sample
  window began before it turned ready, and after that period while unready if it was never
  ready. Every other replica with the metric is *ready*.
- the ratio is computed over ready replicas (CPU: ``Σusage·100 / Σrequest`` truncated to a whole
  percent, over the target; Pods: the truncated milli-unit mean over the target); within the
  tolerance (0.1) nothing changes, else ``ceil(ratio × ready)`` — when nothing is unready or
  missing.
- otherwise missing replicas count pessimistically both ways (on a scale-down as at the target —
  CPU: ``max(100, target)`` % of the request; on a scale-up as 0), unready ones as 0 on a
  scale-up; the ratio is recomputed and the result never flips the direction of the first one.

Values are milli-units (``round(value × 1000)``) as in Kubernetes. Pure: ``now`` is a parameter.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from loopline.deploy.autoscaling import CPU, MetricSourceType, MetricSpec, MetricTargetType
from loopline.deploy.replica import ReplicaPhase

CPU_INITIALIZATION_PERIOD = 300.0
"""``--horizontal-pod-autoscaler-cpu-initialization-period``: CPU readiness gating, seconds."""
DEFAULT_TOLERANCE = 0.1
"""``--horizontal-pod-autoscaler-tolerance``: ratios within 1 ± 0.1 change nothing."""


@dataclass(frozen=True, slots=True)
class ReplicaSample:
    """What one replica reported at one sync, and its lifecycle (the pod's status).

    A metric value None means the replica did not report it (a *missing* replica).
    """

    replica: str
    revision: str
    phase: ReplicaPhase = ReplicaPhase.RUNNING
    """PENDING (started, never probed ready) counts as a Kubernetes Pending pod;
    TERMINATING and FAILED replicas are ignored."""
    ready: bool = True
    started_at: float | None = None
    ready_since: float | None = None
    """When the replica last turned ready (None while unready)."""
    ever_ready: bool = False
    """It passed readiness at least once since it started: an unready replica that was ready
    before is overloaded or sick, and its CPU counts after the initialization period."""
    window_start: float | None = None
    """Start of the interval the values average over (None: they postdate readiness)."""
    cpu: float | None = None
    """Cores in use (0.7 = 70 % of one core)."""
    cpu_request: float = 1.0
    """Cores the replica is sized for: one per worker (the CPU request)."""
    in_flight_requests: float | None = None
    requests_per_second: float | None = None
    queue_delay_seconds: float | None = None

    def value(self, metric: str) -> float | None:
        """The reported value of ``metric`` (``cpu`` or one of the Pods metrics)."""
        value: float | None = getattr(self, metric)
        return value


@dataclass(frozen=True, slots=True)
class Tolerances:
    """``Tolerances``: ratios in ``[1 - scale_down, 1 + scale_up]`` change nothing."""

    scale_down: float = DEFAULT_TOLERANCE
    scale_up: float = DEFAULT_TOLERANCE

    def within(self, ratio: float) -> bool:
        return 1.0 - self.scale_down <= ratio <= 1.0 + self.scale_up


@dataclass(frozen=True, slots=True)
class MetricProposal:
    """The replica count one metric asks for, and the value it observed."""

    replicas: int
    average_value: float
    """Mean per counted replica, in the metric's unit (cores for CPU)."""
    average_utilization: int | None = None
    """CPU Utilization targets only: percent of the request, truncated like Kubernetes."""


@dataclass(frozen=True, slots=True)
class MetricFailure:
    """The metric could not be computed; ``reason`` is the HPA's condition reason."""

    reason: str  # "FailedGetResourceMetric" | "FailedGetPodsMetric"
    message: str  # "failed to get cpu utilization: …"


@dataclass(slots=True)
class SampleGroups:
    """``groupPods``' result: ready count, unready and missing replica ids, counted values."""

    ready: int
    unready: set[str]
    missing: set[str]
    values: dict[str, int]  # milli-units of replicas that count, by replica id


def _milli(value: float) -> int:
    return round(value * 1000)


def group_samples(samples: Sequence[ReplicaSample], metric: str, now: float) -> SampleGroups:
    """``groupPods``: ready count, unready and missing replicas, values of the counted ones."""
    g = SampleGroups(0, set(), set(), {})
    for s in samples:
        if s.phase in (ReplicaPhase.TERMINATING, ReplicaPhase.FAILED):
            continue  # ignored: neither counted nor replaced
        if s.phase is ReplicaPhase.PENDING:
            g.unready.add(s.replica)
            continue
        value = s.value(metric)
        if value is None:
            g.missing.add(s.replica)
            continue
        if metric == CPU and _cpu_unready(s, now):
            g.unready.add(s.replica)
            continue
        g.ready += 1
        g.values[s.replica] = _milli(value)
    return g


def _cpu_unready(s: ReplicaSample, now: float) -> bool:
    if s.started_at is None:
        return True
    if s.started_at + CPU_INITIALIZATION_PERIOD > now:
        # within the initialization period: unready, or one window not measured since ready
        return not s.ready or (
            s.window_start is not None and s.ready_since is not None
            and s.window_start < s.ready_since
        )  # fmt: skip
    return not s.ready and not s.ever_ready


def replicas_for_metric(
    metric: MetricSpec,
    current: int,
    samples: Sequence[ReplicaSample],
    now: float,
    tolerances: Tolerances = Tolerances(),
) -> MetricProposal | MetricFailure:
    """The replica count ``metric`` asks for, given ``current`` replicas and their samples."""
    resource = metric.type is MetricSourceType.RESOURCE
    utilization = metric.target.type is MetricTargetType.UTILIZATION
    if resource:
        prefix = f"failed to get {metric.name} {'utilization' if utilization else 'usage'}: "
        fetch = f"unable to get metrics for resource {metric.name}: "
        source, reason = "resource metrics API", "FailedGetResourceMetric"
    else:
        prefix = "failed to get pods metric value: "
        fetch = f"unable to get metric {metric.name}: "
        source, reason = "custom metrics API", "FailedGetPodsMetric"
    if all(s.value(metric.name) is None for s in samples):
        return MetricFailure(reason, f"{prefix}{fetch}no metrics returned from {source}")
    g = group_samples(samples, metric.name, now)
    if not g.values:
        message = "did not receive metrics for targeted replicas (replicas might be unready)"
        return MetricFailure(reason, prefix + message)
    requests = {s.replica: _milli(s.cpu_request) for s in samples}
    if utilization:
        target = metric.target.average_utilization or 0
        ratio, percent, raw = _utilization_ratio(g.values, requests, target)
        fallback = {r: requests[r] * max(100, target) // 100 for r in g.missing}
    else:
        target = _milli(metric.target.average_value or 0.0)
        ratio, raw = _usage_ratio(g.values, target)
        percent = None
        fallback = dict.fromkeys(g.missing, target)

    def proposal(replicas: int) -> MetricProposal:
        return MetricProposal(replicas, raw / 1000, percent)

    scale_up_with_unready = bool(g.unready) and ratio > 1.0
    if not scale_up_with_unready and not g.missing:
        if tolerances.within(ratio):
            return proposal(current)
        return proposal(math.ceil(ratio * g.ready))
    values = dict(g.values)
    if ratio < 1.0:
        values.update(fallback)  # missing replicas: as at the target (or 100 % of the request)
    elif ratio > 1.0:
        values.update(dict.fromkeys(g.missing, 0))
    if scale_up_with_unready:
        values.update(dict.fromkeys(g.unready, 0))
    if utilization:
        new_ratio = _utilization_ratio(values, requests, target)[0]
    else:
        new_ratio = _usage_ratio(values, target)[0]
    if tolerances.within(new_ratio) or (ratio < 1.0 < new_ratio) or (new_ratio < 1.0 < ratio):
        return proposal(current)  # too small a change, or the direction would flip
    replicas = math.ceil(new_ratio * len(values))
    if (new_ratio < 1.0 and replicas > current) or (new_ratio > 1.0 and replicas < current):
        return proposal(current)
    return proposal(replicas)


def _utilization_ratio(
    values: dict[str, int], requests: dict[str, int], target: int
) -> tuple[float, int, int]:
    """``GetResourceUtilizationRatio``: (ratio, whole percent, mean milli-usage)."""
    total = sum(values.values())
    requested = sum(requests[r] for r in values)
    percent = total * 100 // requested if requested else 0
    return percent / target, percent, total // len(values)


def _usage_ratio(values: dict[str, int], target: int) -> tuple[float, int]:
    """``GetMetricUsageRatio``: (ratio, mean milli-value truncated)."""
    usage = sum(values.values()) // len(values)
    return usage / target, usage
