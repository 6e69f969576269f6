"""From a metric proposal to the replica count the HPA applies (Kubernetes ``horizontal.go``).

Two paths, as in Kubernetes:

- :func:`normalize_with_behavior` (``spec.autoscaling.behavior`` set): stabilization windows
  over the recommendation history, then the rate policies over the scale events of each
  policy's ``periodSeconds`` (``normalizeDesiredReplicasWithBehaviors``).
- :func:`normalize_legacy` (no ``behavior``): the highest recommendation of the last 300 s,
  then ``[minReplicas, min(maxReplicas, max(2 × current, 4))]`` (``normalizeDesiredReplicas``).

Histories live in :class:`AutoscalerState`; entries no window or period can see any more are
dropped (Kubernetes reuses their slots instead). Pure: ``now`` is a parameter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from loopline.deploy.autoscaler_state import AutoscalerState, TimedCount
from loopline.deploy.autoscaling import (
    DEFAULT_DOWNSCALE_STABILIZATION_SECONDS,
    Behavior,
    ScalingPolicyType,
    ScalingRules,
    SelectPolicy,
)

ABLE_MESSAGES = {
    "ScaleUpStabilized": "recent recommendations were lower than current one, applying the "
    "lowest recent recommendation",
    "ScaleDownStabilized": "recent recommendations were higher than current one, applying the "
    "highest recent recommendation",
    "ReadyForNewScale": "recommended size matches current size",
}
"""AbleToScale reasons set by normalization, with the HPA's messages."""
LIMITED_MESSAGES = {
    "ScaleUpLimit": "the desired replica count is increasing faster than the maximum scale rate",
    "TooManyReplicas": "the desired replica count is more than the maximum replica count",
    "ScaleDownLimit": "the desired replica count is decreasing faster than the maximum scale rate",
    "TooFewReplicas": "the desired replica count is less than the minimum replica count",
    "DesiredWithinRange": "the desired count is within the acceptable range",
}
"""ScalingLimited reasons, with the HPA's messages."""


@dataclass(frozen=True, slots=True)
class Normalized:
    """A normalized count, the history it leaves and the two conditions it sets."""

    desired: int
    state: AutoscalerState
    able_reason: str
    """AbleToScale (status True): a key of :data:`ABLE_MESSAGES`."""
    limited: bool
    """ScalingLimited status: the rate policies or the bounds changed the count."""
    limited_reason: str
    """A key of :data:`LIMITED_MESSAGES`."""


def normalize_with_behavior(
    behavior: Behavior,
    current: int,
    desired: int,
    min_replicas: int,
    max_replicas: int,
    state: AutoscalerState,
    now: float,
) -> Normalized:
    """``normalizeDesiredReplicasWithBehaviors``: stabilize, then apply the rate policies.

    Stabilization clamps ``current`` between the lowest recommendation of the scale-up window
    and the highest of the scale-down window (both including ``desired``); ``desired`` joins
    the history. A rate policy allows a change relative to the replicas at the start of its
    period (the scale events inside the period undone); ``selectPolicy`` Max takes the policy
    allowing the biggest change, Min the smallest, Disabled forbids that direction.
    """
    up, down = behavior.scale_up, behavior.scale_down
    up_cutoff = now - up.stabilization_window_seconds
    down_cutoff = now - down.stabilization_window_seconds
    up_rec = min([r for r, t in state.recommendations if t > up_cutoff] + [desired])
    down_rec = max([r for r, t in state.recommendations if t > down_cutoff] + [desired])
    stabilized = min(max(current, up_rec), down_rec)
    state = _remember(state, desired, now, min(up_cutoff, down_cutoff))
    if stabilized == desired:
        able = "ReadyForNewScale"
    else:
        able = "ScaleUpStabilized" if desired >= current else "ScaleDownStabilized"
    result, limited = stabilized, "DesiredWithinRange"
    if stabilized > current:
        limit = max(_scale_up_limit(current, up, state, now), current)
        bound, limited = (limit, "ScaleUpLimit") if max_replicas > limit else (
            max_replicas, "TooManyReplicas")  # fmt: skip
        result = min(stabilized, bound)
    elif stabilized < current:
        limit = min(_scale_down_limit(current, down, state, now), current)
        bound, limited = (limit, "ScaleDownLimit") if min_replicas < limit else (
            min_replicas, "TooFewReplicas")  # fmt: skip
        result = max(stabilized, bound)
    if result == stabilized:
        limited = "DesiredWithinRange"
    return Normalized(result, state, able, result != stabilized, limited)


def normalize_legacy(
    current: int,
    desired: int,
    min_replicas: int,
    max_replicas: int,
    state: AutoscalerState,
    now: float,
) -> Normalized:
    """``normalizeDesiredReplicas``: the highest recommendation of the last 300 s (inclusive),
    then ``[minReplicas, min(maxReplicas, max(2 × current, 4))]``."""
    cutoff = now - DEFAULT_DOWNSCALE_STABILIZATION_SECONDS
    stabilized = max([r for r, t in state.recommendations if t >= cutoff] + [desired])
    state = _remember(state, desired, now, cutoff)
    able = "ReadyForNewScale" if stabilized == desired else "ScaleDownStabilized"
    up_limit = max(2 * current, 4)
    top, limited = (up_limit, "ScaleUpLimit") if max_replicas > up_limit else (
        max_replicas, "TooManyReplicas")  # fmt: skip
    if stabilized < min_replicas:
        result, limited = min_replicas, "TooFewReplicas"
    elif stabilized > top:
        result = top
    else:
        result, limited = stabilized, "DesiredWithinRange"
    return Normalized(result, state, able, result != stabilized, limited)


def store_scale_event(
    behavior: Behavior, state: AutoscalerState, before: int, after: int, now: float
) -> AutoscalerState:
    """``storeScaleEvent``: record a rescale; forget events older than the longest period."""
    if after > before:
        keep = now - max(p.period_seconds for p in behavior.scale_up.policies)
        up = tuple(e for e in state.scale_up_events if e[1] >= keep)
        return replace(state, scale_up_events=(*up, (after - before, now)))
    keep = now - max(p.period_seconds for p in behavior.scale_down.policies)
    down = tuple(e for e in state.scale_down_events if e[1] >= keep)
    return replace(state, scale_down_events=(*down, (before - after, now)))


def _remember(state: AutoscalerState, desired: int, now: float, cutoff: float) -> AutoscalerState:
    """Append ``desired`` to the history, dropping what no window reaches any more."""
    kept = tuple(rt for rt in state.recommendations if rt[1] >= cutoff)
    return replace(state, recommendations=(*kept, (desired, now)))


def _changed_in(events: tuple[TimedCount, ...], period: int, now: float) -> int:
    """``getReplicasChangePerPeriod``: replicas changed by the events inside the last period."""
    return sum(change for change, at in events if at > now - period)


def _period_start(current: int, period: int, state: AutoscalerState, now: float) -> int:
    return (current - _changed_in(state.scale_up_events, period, now)
            + _changed_in(state.scale_down_events, period, now))  # fmt: skip


def _scale_up_limit(current: int, rules: ScalingRules, state: AutoscalerState, now: float) -> int:
    """``calculateScaleUpLimitWithScalingRules`` (Percent rounds up)."""
    if rules.select_policy is SelectPolicy.DISABLED:
        return current
    proposals = []
    for p in rules.policies:
        start = _period_start(current, p.period_seconds, state, now)
        if p.type is ScalingPolicyType.PODS:
            proposals.append(start + p.value)
        else:
            proposals.append(math.ceil(start * (1 + p.value / 100)))
    return max(proposals) if rules.select_policy is SelectPolicy.MAX else min(proposals)


def _scale_down_limit(current: int, rules: ScalingRules, state: AutoscalerState, now: float) -> int:
    """``calculateScaleDownLimitWithBehaviors`` (Percent truncates; Max = the lowest count)."""
    if rules.select_policy is SelectPolicy.DISABLED:
        return current
    proposals = []
    for p in rules.policies:
        start = _period_start(current, p.period_seconds, state, now)
        if p.type is ScalingPolicyType.PODS:
            proposals.append(start - p.value)
        else:
            proposals.append(int(start * (1 - p.value / 100)))
    return min(proposals) if rules.select_policy is SelectPolicy.MAX else max(proposals)
