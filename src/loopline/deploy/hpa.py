"""The HorizontalPodAutoscaler as pure decision functions (Kubernetes ``horizontal.go``).

:func:`decide` is one sync of one deployment's autoscaler: ``(spec, current replicas, replica
samples, state, now, demand) → AutoscaleDecision``. It copies ``reconcileAutoscaler``:

- ``current == 0`` with ``minReplicas > 0``: scaling disabled (someone scaled to zero by hand);
  ``current`` above ``maxReplicas`` or below ``minReplicas``: straight to the bound;
- otherwise every metric proposes a count (:func:`replicas_for_metric`) and the largest wins;
  invalid metrics may let it scale up but never down (all invalid: no action);
- the proposal is normalized: with ``behavior``, stabilization windows over the recommendation
  history then rate policies over the scale events of each policy's period
  (:func:`normalize_with_behavior`); without, the legacy 300 s scale-down window and
  ``max(2 × current, 4)`` scale-up limit (:func:`normalize_legacy`);
- the AbleToScale / ScalingActive / ScalingLimited conditions and the events carry the HPA's
  reason strings and messages ("New size: 18; reason: cpu resource utilization (percentage of
  request) above target").

Scale to zero (``minReplicas: 0``, after Knative): zero replicas only after ``idleSeconds +
graceSeconds`` without any :class:`Demand`; from zero, any demand means one replica at once (no
stabilization). Metrics never scale below one replica.

During a rollout (``rolling_out=True``) scale-down waits: the autoscaler and the rollout must not
fight over replicas (argo-rollouts#4847, flagger#634). Nothing here does I/O or reads a clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from loopline.deploy.autoscaler_state import (
    AutoscalerState,
    HpaCondition,
    HpaConditionType,
)
from loopline.deploy.autoscaling import (
    Autoscaling,
    Behavior,
    MetricSourceType,
    MetricSpec,
    MetricTargetType,
    format_quantity,
)
from loopline.deploy.hpa_normalize import (
    ABLE_MESSAGES,
    LIMITED_MESSAGES,
    normalize_legacy,
    normalize_with_behavior,
    store_scale_event,
)
from loopline.deploy.replica_calculator import (
    DEFAULT_TOLERANCE,
    MetricFailure,
    MetricProposal,
    ReplicaSample,
    Tolerances,
    replicas_for_metric,
)
from loopline.types import JsonDict

ABLE, ACTIVE, LIMITED = (HpaConditionType.ABLE_TO_SCALE, HpaConditionType.SCALING_ACTIVE,
                         HpaConditionType.SCALING_LIMITED)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Demand:
    """Requests seen by the router, for scale to zero (all zero: idle)."""

    requests: int = 0
    """Requests received since the previous decision."""
    in_flight: int = 0
    """Requests being answered now."""
    held: int = 0
    """Requests the router holds because no replica is ready (the activator)."""

    @property
    def active(self) -> bool:
        return self.requests > 0 or self.in_flight > 0 or self.held > 0


@dataclass(frozen=True, slots=True)
class HpaEvent:
    """An event as the HPA records it (``kubectl describe hpa``)."""

    type: str  # "Normal" | "Warning"
    reason: str  # "SuccessfulRescale", "FailedGetResourceMetric", …
    message: str
    at: float

    def to_dict(self) -> JsonDict:
        return {"type": self.type, "reason": self.reason, "message": self.message, "at": self.at}


@dataclass(frozen=True, slots=True)
class MetricObservation:
    """One metric's current value (None when it could not be computed) and its proposal."""

    metric: MetricSpec
    average_value: float | None = None
    average_utilization: int | None = None
    replicas: int | None = None

    @property
    def summary(self) -> str:
        """``kubectl get hpa``'s TARGETS cell: ``cpu: 45%/70%``, ``in_flight_requests: 6/8``."""
        t = self.metric.target
        if t.type is MetricTargetType.UTILIZATION:
            percent = self.average_utilization
            now = "<unknown>" if percent is None else f"{percent}%"
            return f"{self.metric.name}: {now}/{t.average_utilization}%"
        now = "<unknown>" if self.average_value is None else format_quantity(self.average_value)
        return f"{self.metric.name}: {now}/{format_quantity(t.average_value or 0.0)}"

    def to_dict(self) -> JsonDict:
        """An HPA ``MetricStatus``: the source and its ``current`` value."""
        current: JsonDict = {}
        if self.average_value is not None:
            current["averageValue"] = format_quantity(self.average_value)
        if self.average_utilization is not None:
            current["averageUtilization"] = self.average_utilization
        if self.metric.type is MetricSourceType.PODS:
            return {"type": "Pods", "pods": {"metric": {"name": self.metric.name},
                                             "current": current}}  # fmt: skip
        return {"type": "Resource", "resource": {"name": self.metric.name, "current": current}}


@dataclass(frozen=True, slots=True)
class AutoscaleDecision:
    """The outcome of one sync: scale to ``desired`` when it differs from ``current``."""

    current: int
    desired: int
    state: AutoscalerState
    """Store it and pass it to the next :func:`decide`."""
    events: tuple[HpaEvent, ...]
    metrics: tuple[MetricObservation, ...]

    @property
    def rescale(self) -> bool:
        return self.desired != self.current

    @property
    def conditions(self) -> tuple[HpaCondition, ...]:
        return self.state.conditions

    def status_dict(self) -> JsonDict:
        """The HPA ``status`` block (currentReplicas, desiredReplicas, currentMetrics, …)."""
        return {
            "currentReplicas": self.current,
            "desiredReplicas": self.desired,
            "lastScaleTime": self.state.last_scale_time,
            "currentMetrics": [m.to_dict() for m in self.metrics if m.replicas is not None],
            "conditions": [c.to_dict() for c in self.conditions],
        }


def decide(
    spec: Autoscaling,
    current: int,
    samples: Sequence[ReplicaSample],
    state: AutoscalerState,
    now: float,
    demand: Demand,
    *,
    rolling_out: bool = False,
) -> AutoscaleDecision:
    """One autoscaler sync of one deployment.

    Args:
        spec: the deployment's ``spec.autoscaling``.
        current: the deployment's ``spec.replicas`` (the scale's replicas).
        samples: one per replica of every revision of the deployment (the HPA's selector).
        state: what the previous decision returned (``AutoscalerState()`` the first time).
        now: seconds since the epoch (a fake clock in tests).
        demand: the router's view of requests (used when ``minReplicas`` is 0).
        rolling_out: a rollout is in progress: scale-down waits until it completes.
    """
    sync = _Sync(spec, current, state, now)
    sync.condition(ABLE, True, "SucceededGetScale",
                   "the HPA controller was able to get the target's current scale")  # fmt: skip
    zero = spec.scale_to_zero
    if zero is not None:
        last = now if demand.active or state.last_demand_at is None else state.last_demand_at
        sync.state = replace(sync.state, last_demand_at=last)
        idle = zero.idle_seconds + zero.grace_seconds
        if current == 0 and not demand.active:
            sync.condition(ACTIVE, False, "NoTraffic", "the target is not receiving traffic")
            return sync.finish(0, "")
        if current == 0:
            sync.condition(ACTIVE, True, "ScaledFromZero",
                           "the target received requests while scaled to zero")  # fmt: skip
            return sync.finish(1, "requests arrived while scaled to zero")
        if now - last >= idle and not rolling_out:
            sync.condition(ACTIVE, False, "NoTraffic", "the target is not receiving traffic")
            return sync.finish(0, f"no requests for {idle}s (scale to zero)")
    if current == 0:
        message = "scaling is disabled since the replica count of the target is zero"
        sync.condition(ACTIVE, False, "ScalingDisabled", message)
        return sync.finish(0, "")
    if current > spec.max_replicas:
        return sync.finish(spec.max_replicas, "Current number of replicas above Spec.MaxReplicas")
    floor = max(1, spec.min_replicas)  # metrics never scale to zero
    if current < floor:
        return sync.finish(floor, "Current number of replicas below Spec.MinReplicas")
    proposal = sync.compute_replicas_for_metrics(samples)
    if proposal is None:
        return sync.finish(current, "")
    best, reason = proposal
    if spec.behavior is None:
        n = normalize_legacy(current, best, floor, spec.max_replicas, sync.state, now)
    else:
        n = normalize_with_behavior(spec.behavior, current, best, floor, spec.max_replicas,
                                    sync.state, now)  # fmt: skip
    sync.state = n.state
    sync.condition(ABLE, True, n.able_reason, ABLE_MESSAGES[n.able_reason])
    sync.condition(LIMITED, n.limited, n.limited_reason, LIMITED_MESSAGES[n.limited_reason])
    desired = n.desired
    if rolling_out and desired < current:
        desired = current
        sync.condition(ABLE, True, "RolloutInProgress",
                       "a rollout is in progress; scale-down waits until it completes")  # fmt: skip
    return sync.finish(desired, reason)


class _Sync:
    """One sync in progress: conditions, events and metric observations as they are set."""

    def __init__(self, spec: Autoscaling, current: int, state: AutoscalerState, now: float):
        self.spec, self.current, self.state, self.now = spec, current, state, now
        self.conditions = {c.type: c for c in state.conditions}
        self.events: list[HpaEvent] = []
        self.observed: tuple[MetricObservation, ...] = ()

    def condition(self, kind: HpaConditionType, status: bool, reason: str, message: str) -> None:
        """``setCondition``: the transition time moves only when the status changes."""
        text = "True" if status else "False"
        old = self.conditions.get(kind)
        when = old.last_transition_time if old is not None and old.status == text else self.now
        self.conditions[kind] = HpaCondition(kind, text, reason, message, when)

    def event(self, kind: str, reason: str, message: str) -> None:
        self.events.append(HpaEvent(kind, reason, message, self.now))

    def compute_replicas_for_metrics(
        self, samples: Sequence[ReplicaSample]
    ) -> tuple[int, str] | None:
        """``computeReplicasForMetrics``: the largest proposal and the rescale reason, or None
        when every metric failed, or some failed and the rest would scale down."""
        tolerances = _tolerances(self.spec.behavior)
        results = [(m, replicas_for_metric(m, self.current, samples, self.now, tolerances))
                   for m in self.spec.metrics]  # fmt: skip
        self.observed = tuple(_observation(m, p) for m, p in results)
        failures = [p for _, p in results if isinstance(p, MetricFailure)]
        for f in failures:
            self.event("Warning", f.reason, f.message)
        best, name = 0, ""
        for m, p in results:
            if isinstance(p, MetricProposal) and (best == 0 or p.replicas > best):
                best, name = p.replicas, m.description
        if len(failures) == len(results) or (failures and best < self.current):
            first = failures[0]
            message = f"the HPA was unable to compute the replica count: {first.message}"
            self.condition(ACTIVE, False, first.reason, message)
            self.event("Warning", "FailedComputeMetricsReplicas",
                       f"invalid metrics ({len(failures)} invalid out of {len(results)}), "
                       f"first error is: {first.message}")  # fmt: skip
            return None
        message = f"the HPA was able to successfully calculate a replica count from {name}"
        self.condition(ACTIVE, True, "ValidMetricFound", message)
        if best > self.current:
            return best, f"{name} above target"
        return best, "All metrics below target" if best < self.current else ""

    def finish(self, desired: int, reason: str) -> AutoscaleDecision:
        """Rescale when ``desired`` differs: condition, event, scale event, last scale time."""
        state = self.state
        if desired != self.current:
            message = f"the HPA controller was able to update the target scale to {desired}"
            self.condition(ABLE, True, "SucceededRescale", message)
            self.event("Normal", "SuccessfulRescale", f"New size: {desired}; reason: {reason}")
            state = replace(state, last_scale_time=self.now)
            if self.spec.behavior is not None:
                state = store_scale_event(self.spec.behavior, state, self.current, desired,
                                          self.now)  # fmt: skip
        conditions = tuple(self.conditions[k] for k in HpaConditionType if k in self.conditions)
        state = replace(state, conditions=conditions)
        return AutoscaleDecision(self.current, desired, state, tuple(self.events), self.observed)


def _tolerances(behavior: Behavior | None) -> Tolerances:
    if behavior is None:
        return Tolerances()
    down, up = behavior.scale_down.tolerance, behavior.scale_up.tolerance
    return Tolerances(DEFAULT_TOLERANCE if down is None else down,
                      DEFAULT_TOLERANCE if up is None else up)  # fmt: skip


def _observation(metric: MetricSpec, p: MetricProposal | MetricFailure) -> MetricObservation:
    if isinstance(p, MetricFailure):
        return MetricObservation(metric)
    return MetricObservation(metric, p.average_value, p.average_utilization, p.replicas)
