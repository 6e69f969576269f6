"""The HPA decision core: groupPods and the replica calculator (cases from Kubernetes'
``replica_calculator_test.go``), stabilization and rate policies, the legacy path, conditions
and events, partial metrics, scale to zero, and the persisted state."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import pytest

from loopline.deploy.autoscaler_state import AutoscalerState, HpaConditionType
from loopline.deploy.autoscaling import (
    Autoscaling,
    Behavior,
    MetricSourceType,
    MetricSpec,
    MetricTarget,
    MetricTargetType,
    ScalingPolicy,
    ScalingPolicyType,
    ScalingRules,
    SelectPolicy,
)
from loopline.deploy.hpa import AutoscaleDecision, Demand, decide
from loopline.deploy.hpa_normalize import normalize_legacy, normalize_with_behavior
from loopline.deploy.replica import ReplicaPhase
from loopline.deploy.replica_calculator import (
    MetricFailure,
    MetricProposal,
    ReplicaSample,
    Tolerances,
    replicas_for_metric,
)
from loopline.errors import InvalidInputError

NOW = 10_000.0
LONG_AGO = NOW - 3600


def cpu(percent: int) -> MetricSpec:
    return MetricSpec.cpu_utilization(percent)


def pods(name: str, value: float) -> MetricSpec:
    target = MetricTarget(MetricTargetType.AVERAGE_VALUE, average_value=value)
    return MetricSpec(MetricSourceType.PODS, name, target)


def replicas(
    values: Sequence[float | None],
    metric: str = "cpu",
    ready: Sequence[bool] | None = None,
    requests: Sequence[float] | None = None,
    started_at: float = LONG_AGO,
    **kw: Any,
) -> list[ReplicaSample]:
    """Replicas reporting ``values`` of ``metric``; long started and ready unless told."""
    out = []
    for i, v in enumerate(values):
        ok = True if ready is None else ready[i]
        out.append(ReplicaSample(
            f"r{i}", "rev", ready=ok, started_at=started_at,
            ready_since=started_at + 10 if ok else None,
            cpu_request=1.0 if requests is None else requests[i], **{metric: v}, **kw,
        ))  # fmt: skip
    return out


def proposal(metric: MetricSpec, current: int, samples: list[ReplicaSample]) -> int:
    p = replicas_for_metric(metric, current, samples, NOW)
    assert isinstance(p, MetricProposal), p
    return p.replicas


# -- replica calculator ------------------------------------------------------------------------


def test_cpu_scale_up_is_ceil_of_ratio_times_ready_replicas() -> None:
    p = replicas_for_metric(cpu(30), 3, replicas([0.3, 0.5, 0.7]), NOW)
    assert p == MetricProposal(replicas=5, average_value=0.5, average_utilization=50)


def test_cpu_scale_down() -> None:
    assert proposal(cpu(50), 5, replicas([0.1, 0.3, 0.5, 0.25, 0.25])) == 3  # 28 % → ceil(2.8)


def test_cpu_utilization_is_truncated_to_a_whole_percent_like_kubernetes() -> None:
    # 100m of 300m is 33 %, not 33.3 %: ratio 0.66 → ceil(1.98) = 2, where 0.6667 would give 3
    p = replicas_for_metric(cpu(50), 3, replicas([0.1, 0.0, 0.0]), NOW)
    assert isinstance(p, MetricProposal) and p.average_utilization == 3
    assert proposal(cpu(50), 3, replicas([0.11, 0.11, 0.11], requests=[0.5, 0.5, 0.5])) == 2


def test_unready_replicas_count_as_idle_on_a_scale_up() -> None:
    samples = replicas([0.3, 0.5, 0.7], ready=[False, True, True], started_at=NOW - 60)
    assert proposal(cpu(30), 3, samples) == 4  # 60 % on 2 ready, then 40 % over 3 → 4, not 4 → 6


def test_unready_replicas_are_left_out_of_a_scale_down() -> None:
    samples = replicas([0.1, 0.3, 0.5, 0.25, 0.25], ready=[False, True, True, False, False],
                       started_at=NOW - 60)  # fmt: skip
    assert proposal(cpu(50), 5, samples) == 2  # 40 % over the 2 ready → ceil(1.6)


def test_within_the_tolerance_nothing_changes() -> None:
    samples = replicas([1.01, 1.03, 1.02], requests=[0.9, 1.0, 1.1])
    assert proposal(cpu(100), 3, samples) == 3  # 102 %: within 10 %
    assert proposal(cpu(100), 3, replicas([1.12, 1.12, 1.12])) == 4  # 112 %: outside
    assert proposal(cpu(100), 3, replicas([0.91, 0.91, 0.91])) == 3
    assert proposal(cpu(100), 3, replicas([0.89, 0.89, 0.89])) == 3  # ceil(2.67)
    assert proposal(cpu(100), 10, replicas([0.89] * 10)) == 9


def test_a_per_direction_tolerance_replaces_the_default() -> None:
    p = replicas_for_metric(cpu(100), 10, replicas([1.05] * 10), NOW, Tolerances(0.1, 0.02))
    assert isinstance(p, MetricProposal) and p.replicas == 11


def test_missing_replicas_count_as_fully_busy_on_a_scale_down() -> None:
    samples = replicas([0.1, 0.1, 0.1, None])
    # 10 % on 3, the missing one at 100 % of its request: 32.5 % → 32 % over 4 → ceil(2.56) = 3
    assert proposal(cpu(50), 4, samples) == 3  # not ceil(0.2 × 3) = 1


def test_missing_replicas_count_at_the_target_when_it_is_above_100_percent() -> None:
    samples = replicas([0.5, None])
    # ratio 50/150 < 1, missing at 150 % → (500 + 1500) / 2000 = 100 % → ratio 0.67 → 2
    assert proposal(cpu(150), 2, samples) == 2


def test_missing_replicas_never_flip_the_direction() -> None:
    # 60 % over 2 asks for more; with the missing one at 0 % it is 40 % < 50 %: keep 3
    assert proposal(cpu(50), 3, replicas([0.6, 0.6, None])) == 3
    # but a strong scale-up survives: 90 % on 2, 60 % over 3 → ratio 1.2 → 4
    assert proposal(cpu(50), 3, replicas([0.9, 0.9, None])) == 4


def test_cpu_of_a_replica_measured_before_it_turned_ready_is_ignored() -> None:
    fresh = ReplicaSample("new", "rev", ready=True, started_at=NOW - 40, ready_since=NOW - 10,
                          window_start=NOW - 15, cpu=1.0)  # loading the model: hot CPU
    old = replicas([0.2, 0.2])
    assert proposal(cpu(50), 3, [*old, fresh]) == 1  # only the old ones: ceil(0.4 × 2)
    settled = ReplicaSample("new", "rev", ready=True, started_at=NOW - 40, ready_since=NOW - 30,
                            window_start=NOW - 15, cpu=1.0)  # fmt: skip
    assert proposal(cpu(50), 3, [*old, settled]) == 3  # 1400m / 3000m = 46 %: within tolerance


def test_after_the_initialization_period_an_unready_replica_counts_if_it_was_ever_ready() -> None:
    sick = ReplicaSample("sick", "rev", ready=False, started_at=LONG_AGO, ever_ready=True, cpu=1.0)
    never = ReplicaSample("never", "rev", ready=False, started_at=LONG_AGO, cpu=1.0)
    old = replicas([0.5, 0.5])
    assert proposal(cpu(50), 3, [*old, sick]) == 4  # 67 % over 3 → ceil(4.0)
    assert proposal(cpu(50), 3, [*old, never]) == 3  # ratio 1.0 on the 2 ready, unready ignored


def test_readiness_gates_cpu_only_a_running_unready_replica_counts_for_pods_metrics() -> None:
    samples = replicas([50, 10, 30], metric="in_flight_requests", ready=[True, True, False])
    assert proposal(pods("in_flight_requests", 15), 3, samples) == 6  # mean 30 / 15 → 2 × 3


def test_pods_metrics_use_the_truncated_milli_mean() -> None:
    samples = replicas([20, 10, 30], metric="requests_per_second")
    assert proposal(pods("requests_per_second", 15), 3, samples) == 4
    samples = replicas([12] * 5, metric="requests_per_second")
    assert proposal(pods("requests_per_second", 20), 5, samples) == 3


def test_missing_replicas_count_at_the_target_for_pods_metrics_on_a_scale_down() -> None:
    samples = replicas([2.0, 2.0, None], metric="queue_delay_seconds")
    # mean 2 s over a 10 s target: 0.2 → missing at 10 s → (2+2+10)/3 = 4.67 → ceil(1.4) = 2
    assert proposal(pods("queue_delay_seconds", 10), 3, samples) == 2


def test_pending_replicas_are_unready_and_terminating_ones_ignored() -> None:
    base = replicas([0.9, 0.9])
    pending = ReplicaSample("p", "rev", phase=ReplicaPhase.PENDING, ready=False,
                            started_at=NOW - 5)  # fmt: skip
    leaving = ReplicaSample("t", "rev", phase=ReplicaPhase.TERMINATING, cpu=0.0)
    # 90 % on 2 ready; the pending one counts as 0 on the way up: 60 % over 3 → ratio 1.2 → 4
    assert proposal(cpu(50), 3, [*base, pending, leaving]) == 4
    assert proposal(cpu(50), 2, [*base, leaving]) == 4  # ceil(1.8 × 2)


def test_no_metrics_at_all_is_a_failure_with_the_hpa_wording() -> None:
    r = replicas_for_metric(cpu(50), 2, replicas([None, None]), NOW)
    assert r == MetricFailure(
        "FailedGetResourceMetric",
        "failed to get cpu utilization: unable to get metrics for resource cpu: no metrics "
        "returned from resource metrics API",
    )
    r = replicas_for_metric(pods("in_flight_requests", 4), 2, [], NOW)
    assert r == MetricFailure(
        "FailedGetPodsMetric",
        "failed to get pods metric value: unable to get metric in_flight_requests: no metrics "
        "returned from custom metrics API",
    )


def test_metrics_only_from_unready_replicas_is_a_failure() -> None:
    r = replicas_for_metric(cpu(50), 2, replicas([0.9, 0.9], ready=[False, False]), NOW)
    assert isinstance(r, MetricFailure)
    assert r.message.endswith("did not receive metrics for targeted replicas (replicas might be "
                              "unready)")  # fmt: skip


# -- normalization -----------------------------------------------------------------------------

UP_POLICIES = (ScalingPolicy(ScalingPolicyType.PODS, 4, 15),
               ScalingPolicy(ScalingPolicyType.PERCENT, 100, 15))  # fmt: skip


def behavior(select: SelectPolicy = SelectPolicy.MAX, up_window: int = 0,
             down: ScalingRules | None = None) -> Behavior:  # fmt: skip
    b = Behavior(scale_up=ScalingRules(up_window, select, UP_POLICIES))
    return b if down is None else Behavior(b.scale_up, down)


@pytest.mark.parametrize(
    ("select", "expected", "limited"),
    [(SelectPolicy.MAX, 20, True), (SelectPolicy.MIN, 14, True), (SelectPolicy.DISABLED, 10, True)],
)  # fmt: skip
def test_scale_up_rate_policies_pods_4_vs_percent_100(
    select: SelectPolicy, expected: int, limited: bool
) -> None:
    n = normalize_with_behavior(behavior(select), 10, 30, 1, 50, AutoscalerState(), NOW)
    assert n.desired == expected
    assert (n.limited, n.limited_reason) == (limited, "ScaleUpLimit")


def test_rate_policies_count_the_replicas_added_inside_their_period() -> None:
    state = AutoscalerState(scale_up_events=((4, NOW - 10),))
    n = normalize_with_behavior(behavior(SelectPolicy.MIN), 14, 30, 1, 50, state, NOW)
    assert n.desired == 14  # the period started at 10: Pods 10+4, Percent 20 → Min 14, no room
    state = AutoscalerState(scale_up_events=((4, NOW - 15),))  # just outside the period
    assert normalize_with_behavior(behavior(SelectPolicy.MIN), 14, 30, 1, 50, state,
                                   NOW).desired == 18  # fmt: skip


def test_max_replicas_bounds_a_scale_up_as_too_many_replicas() -> None:
    n = normalize_with_behavior(behavior(), 10, 30, 1, 12, AutoscalerState(), NOW)
    assert (n.desired, n.limited, n.limited_reason) == (12, True, "TooManyReplicas")


def test_scale_down_policies_select_max_allows_the_biggest_change() -> None:
    policies = (ScalingPolicy(ScalingPolicyType.PODS, 1, 60),
                ScalingPolicy(ScalingPolicyType.PERCENT, 50, 60))  # fmt: skip
    down = ScalingRules(0, SelectPolicy.MAX, policies)
    n = normalize_with_behavior(behavior(down=down), 18, 6, 1, 50, AutoscalerState(), NOW)
    assert (n.desired, n.limited_reason) == (9, "ScaleDownLimit")  # Percent: int(18 × 0.5)
    down = ScalingRules(0, SelectPolicy.MIN, down.policies)
    n = normalize_with_behavior(behavior(down=down), 18, 6, 1, 50, AutoscalerState(), NOW)
    assert n.desired == 17  # Pods: 18 - 1
    state = AutoscalerState(scale_down_events=((1, NOW - 30),))
    n = normalize_with_behavior(behavior(down=down), 17, 6, 1, 50, state, NOW)
    assert n.desired == 17  # the period started at 18: 18 - 1 = 17, no room left


def test_scale_down_stabilization_holds_the_highest_recommendation_of_the_window() -> None:
    b = behavior()  # default scale-down window: 300 s
    state = AutoscalerState(recommendations=((18, NOW - 299),))
    n = normalize_with_behavior(b, 18, 6, 1, 50, state, NOW)
    assert (n.desired, n.able_reason) == (18, "ScaleDownStabilized")
    assert n.state.recommendations[-1] == (6, NOW)
    state = AutoscalerState(recommendations=((18, NOW - 300),))  # the window is (now-300, now]
    n = normalize_with_behavior(b, 18, 6, 1, 50, state, NOW)
    assert (n.desired, n.able_reason, n.limited) == (6, "ReadyForNewScale", False)


def test_scale_up_stabilization_takes_the_lowest_recommendation_of_its_window() -> None:
    state = AutoscalerState(recommendations=((12, NOW - 30), (15, NOW - 20)))
    n = normalize_with_behavior(behavior(up_window=60), 10, 20, 1, 50, state, NOW)
    assert (n.desired, n.able_reason) == (12, "ScaleUpStabilized")


def test_history_no_window_reaches_is_dropped() -> None:
    state = AutoscalerState(recommendations=((5, NOW - 1000), (6, NOW - 100)))
    n = normalize_with_behavior(behavior(), 6, 6, 1, 50, state, NOW)
    assert n.state.recommendations == ((6, NOW - 100), (6, NOW))


def test_the_legacy_path_limits_scale_up_to_twice_or_4() -> None:
    s = AutoscalerState()
    assert normalize_legacy(1, 10, 1, 50, s, NOW).desired == 4
    assert normalize_legacy(3, 10, 1, 50, s, NOW).desired == 6
    n = normalize_legacy(3, 10, 1, 5, s, NOW)
    assert (n.desired, n.limited, n.limited_reason) == (5, True, "TooManyReplicas")
    n = normalize_legacy(3, 0, 2, 5, s, NOW)
    assert (n.desired, n.limited_reason) == (2, "TooFewReplicas")


def test_the_legacy_window_includes_its_first_second() -> None:
    state = AutoscalerState(recommendations=((18, NOW - 300),))
    assert normalize_legacy(18, 6, 1, 50, state, NOW).desired == 18
    state = AutoscalerState(recommendations=((18, NOW - 301),))
    assert normalize_legacy(18, 6, 1, 50, state, NOW).desired == 6


# -- decide ------------------------------------------------------------------------------------


def condition(d: AutoscaleDecision, kind: HpaConditionType) -> tuple[str, str]:
    c = d.state.condition(kind)
    assert c is not None
    return c.status, c.reason


def test_kubernetes_worked_example_10_replicas_at_90_percent_target_50_goes_to_18() -> None:
    spec = Autoscaling(max_replicas=30, metrics=(cpu(50),), behavior=Behavior())
    d = decide(spec, 10, replicas([0.9] * 10), AutoscalerState(), NOW, Demand())
    assert d.desired == 18 and d.rescale
    assert [(e.type, e.reason, e.message) for e in d.events] == [(
        "Normal", "SuccessfulRescale",
        "New size: 18; reason: cpu resource utilization (percentage of request) above target",
    )]  # fmt: skip
    assert condition(d, HpaConditionType.ABLE_TO_SCALE) == ("True", "SucceededRescale")
    assert condition(d, HpaConditionType.SCALING_ACTIVE) == ("True", "ValidMetricFound")
    assert condition(d, HpaConditionType.SCALING_LIMITED) == ("False", "DesiredWithinRange")
    assert d.state.scale_up_events == ((8, NOW),) and d.state.last_scale_time == NOW
    assert [m.summary for m in d.metrics] == ["cpu: 90%/50%"]
    status = d.status_dict()
    assert status["currentMetrics"] == [{"type": "Resource", "resource": {
        "name": "cpu", "current": {"averageValue": "900m", "averageUtilization": 90}}}]  # fmt: skip
    # load drops so metrics say 6: held at 18 for the 300 s window, then 6
    state, current = d.state, 18
    for t in range(15, 301, 15):
        d = decide(spec, current, replicas([0.05] * 18), state, NOW + t, Demand())
        state, current = d.state, d.desired
        assert current == (18 if t < 300 else 2), t
    assert d.events[-1].message == "New size: 2; reason: All metrics below target"


def test_the_largest_proposal_wins_and_names_its_metric() -> None:
    spec = Autoscaling(max_replicas=10, metrics=(cpu(50), pods("in_flight_requests", 2)),
                       behavior=Behavior())  # fmt: skip
    samples = [replace(s, in_flight_requests=6.0) for s in replicas([0.5, 0.5])]
    d = decide(spec, 2, samples, AutoscalerState(), NOW, Demand())
    assert d.desired == 6
    assert d.events[-1].message == ("New size: 6; reason: pods metric in_flight_requests above "
                                    "target")  # fmt: skip
    assert [m.replicas for m in d.metrics] == [2, 6]


def test_partial_metrics_may_scale_up_but_never_down() -> None:
    spec = Autoscaling(max_replicas=10, metrics=(cpu(50), pods("in_flight_requests", 2)))
    up = [replace(s, in_flight_requests=6.0) for s in replicas([None, None])]
    d = decide(spec, 2, up, AutoscalerState(), NOW, Demand())
    assert d.desired == 4  # legacy: max(2 × 2, 4)
    assert condition(d, HpaConditionType.SCALING_ACTIVE) == ("True", "ValidMetricFound")
    assert d.events[0].reason == "FailedGetResourceMetric"
    down = [replace(s, in_flight_requests=0.5) for s in replicas([None] * 4)]
    d = decide(spec, 4, down, AutoscalerState(), NOW, Demand())
    assert d.desired == 4 and not d.rescale
    assert condition(d, HpaConditionType.SCALING_ACTIVE) == ("False", "FailedGetResourceMetric")
    c = d.state.condition(HpaConditionType.SCALING_ACTIVE)
    assert c is not None and c.message.startswith(
        "the HPA was unable to compute the replica count: failed to get cpu utilization:")
    assert d.events[-1].reason == "FailedComputeMetricsReplicas"
    assert d.events[-1].message.startswith("invalid metrics (1 invalid out of 2), first error is: "
                                           "failed to get cpu utilization")  # fmt: skip
    assert d.state.recommendations == ()  # no action: nothing recorded


def test_a_deployment_scaled_to_zero_by_hand_disables_scaling() -> None:
    d = decide(Autoscaling(max_replicas=3), 0, [], AutoscalerState(), NOW, Demand(requests=5))
    assert d.desired == 0 and not d.rescale
    assert condition(d, HpaConditionType.SCALING_ACTIVE) == ("False", "ScalingDisabled")


@pytest.mark.parametrize(
    ("current", "desired", "reason"),
    [(7, 5, "Current number of replicas above Spec.MaxReplicas"),
     (1, 2, "Current number of replicas below Spec.MinReplicas")],
)  # fmt: skip
def test_out_of_bounds_goes_straight_to_the_bound(current: int, desired: int, reason: str) -> None:
    spec = Autoscaling(max_replicas=5, min_replicas=2)
    d = decide(spec, current, replicas([0.8] * current), AutoscalerState(), NOW, Demand())
    assert d.desired == desired
    assert d.events[-1].message == f"New size: {desired}; reason: {reason}"


def test_scale_down_waits_while_a_rollout_is_in_progress() -> None:
    spec = Autoscaling(max_replicas=10, behavior=Behavior(scale_down=ScalingRules(
        0, SelectPolicy.MAX, (ScalingPolicy(ScalingPolicyType.PERCENT, 100, 15),))))  # fmt: skip
    low = replicas([0.1] * 6)
    d = decide(spec, 6, low, AutoscalerState(), NOW, Demand(), rolling_out=True)
    assert d.desired == 6
    assert condition(d, HpaConditionType.ABLE_TO_SCALE) == ("True", "RolloutInProgress")
    assert decide(spec, 6, low, d.state, NOW + 15, Demand()).desired == 1
    high = replicas([1.0] * 6)
    assert decide(spec, 6, high, AutoscalerState(), NOW, Demand(), rolling_out=True).desired > 6


def test_scale_to_zero_after_idle_plus_grace_and_back_at_the_first_request() -> None:
    spec = Autoscaling(max_replicas=4, min_replicas=0, behavior=Behavior())
    idle = replicas([0.0])
    d = decide(spec, 1, idle, AutoscalerState(), NOW, Demand())
    assert d.state.last_demand_at == NOW and d.desired == 1  # the idle clock starts now
    d = decide(spec, 1, idle, d.state, NOW + 60, Demand(in_flight=1))
    state = d.state
    d = decide(spec, 1, idle, state, NOW + 149, Demand())
    assert d.desired == 1  # metrics never go below one replica
    d = decide(spec, 1, idle, d.state, NOW + 150, Demand())
    assert d.desired == 0
    assert d.events[-1].message == "New size: 0; reason: no requests for 90s (scale to zero)"
    assert condition(d, HpaConditionType.SCALING_ACTIVE) == ("False", "NoTraffic")
    d = decide(spec, 0, [], d.state, NOW + 400, Demand())
    assert d.desired == 0 and not d.events
    d = decide(spec, 0, [], d.state, NOW + 401, Demand(held=3))
    assert d.desired == 1
    assert d.events[-1].message == ("New size: 1; reason: requests arrived while scaled to "
                                    "zero")  # fmt: skip
    assert condition(d, HpaConditionType.SCALING_ACTIVE) == ("True", "ScaledFromZero")
    assert d.state.scale_up_events[-1] == (1, NOW + 401)


def test_min_replicas_above_zero_never_scales_to_zero_whatever_the_demand() -> None:
    spec = Autoscaling(max_replicas=4, behavior=Behavior())
    d = decide(spec, 1, replicas([0.0]), AutoscalerState(), NOW + 10_000, Demand())
    assert d.desired == 1 and d.state.last_demand_at is None


def test_condition_transition_times_move_only_when_the_status_changes() -> None:
    spec = Autoscaling(max_replicas=5, behavior=Behavior())
    d1 = decide(spec, 2, replicas([0.8, 0.8]), AutoscalerState(), NOW, Demand())
    d2 = decide(spec, 2, replicas([0.8, 0.8]), d1.state, NOW + 15, Demand())
    c1 = d1.state.condition(HpaConditionType.SCALING_ACTIVE)
    c2 = d2.state.condition(HpaConditionType.SCALING_ACTIVE)
    assert c1 is not None and c2 is not None and c2.last_transition_time == NOW
    d3 = decide(spec, 2, replicas([None, None]), d2.state, NOW + 30, Demand())
    c3 = d3.state.condition(HpaConditionType.SCALING_ACTIVE)
    assert c3 is not None and (c3.status, c3.last_transition_time) == ("False", NOW + 30)


def test_the_state_survives_json_so_a_restarted_control_plane_carries_on() -> None:
    spec = Autoscaling(max_replicas=30, metrics=(cpu(50),), behavior=Behavior())
    d = decide(spec, 10, replicas([0.9] * 10), AutoscalerState(), NOW, Demand())
    restored = AutoscalerState.from_json(json.loads(json.dumps(d.state.to_json())))
    assert restored == d.state
    low = replicas([0.05] * 18)
    assert decide(spec, 18, low, restored, NOW + 60, Demand()).desired == 18  # still held


@pytest.mark.parametrize(
    ("data", "match"),
    [([], r"Autoscaler state = \[\] is invalid: it must be an object"),
     ({"recommendations": [[1]]}, r"field recommendations\[0\] = \[1\] is invalid: it must be "
                                  r"\[count, seconds\]"),
     ({"lastScaleTime": "yesterday"}, r"field lastScaleTime = 'yesterday' is invalid"),
     ({"conditions": [{"type": "Happy"}]}, r"field conditions\[0\]\.type = 'Happy' is invalid")],
)  # fmt: skip
def test_a_corrupt_state_is_rejected_naming_the_field(data: object, match: str) -> None:
    with pytest.raises(InvalidInputError, match=match + r".*delete the stored state"):
        AutoscalerState.from_json(data)
