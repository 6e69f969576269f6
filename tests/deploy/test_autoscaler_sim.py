"""The autoscaler on a fake clock: Kubernetes' worked examples, tolerance, rate policies,
missing and unready replicas, bounded events under an oscillating load, scale to zero and back,
and the legacy path."""

from __future__ import annotations

import itertools
import math

import pytest

from loopline.deploy.autoscaler_sim import (
    CapacityModel,
    LoadTrace,
    ScaleEvent,
    SimulationResult,
    simulate,
)
from loopline.deploy.autoscaling import (
    DEFAULT_SCALE_DOWN,
    DEFAULT_SCALE_UP,
    Autoscaling,
    Behavior,
    MetricSpec,
    ScalingPolicy,
    ScalingPolicyType,
    ScalingRules,
    SelectPolicy,
)
from loopline.errors import InvalidInputError

CAPACITY = CapacityModel(capacity_rps=50)  # 1 worker: 50 rps = 100 % CPU


DEFAULTS = Behavior()  # behavior: {} — every field at its HPA default


def cpu_spec(target: int, max_replicas: int = 30, behavior: Behavior | None = DEFAULTS,
             min_replicas: int = 1) -> Autoscaling:  # fmt: skip
    metrics = (MetricSpec.cpu_utilization(target),)
    return Autoscaling(max_replicas=max_replicas, min_replicas=min_replicas, metrics=metrics,
                       behavior=behavior)  # fmt: skip


def steps(*points: tuple[float, float]) -> LoadTrace:
    return LoadTrace(tuple((float(t), float(r)) for t, r in points))


def square_wave(low: float, high: float, half_period: int, duration: int) -> LoadTrace:
    return steps(*[(t, high if (t // half_period) % 2 == 0 else low)
                   for t in range(0, duration + 1, half_period)])  # fmt: skip


def moves(result: SimulationResult) -> list[tuple[float, int, int]]:
    return [(e.t, e.before, e.after) for e in result.events]


def test_worked_example_90_percent_on_10_goes_to_18_then_holds_300_s_after_the_drop() -> None:
    # 450 rps on 10 replicas of 50 rps: 90 % CPU; target 50 % → 18. At 120 s the load drops to
    # 150 rps (metrics say 6); the last recommendation of 18 was at 120 s: down at 420 s.
    result = simulate(cpu_spec(50), steps((0, 450), (120, 150), (900, 150)), CAPACITY,
                      initial_replicas=10)  # fmt: skip
    assert moves(result) == [(15.0, 10, 18), (420.0, 18, 6)]
    assert result.events[0].message == (
        "New size: 18; reason: cpu resource utilization (percentage of request) above target")
    assert result.events[1].message == "New size: 6; reason: All metrics below target"
    at = {row.t: row for row in result.timeline}
    assert dict(at[15.0].metrics) == {"cpu %": 90.0}
    assert (at[60.0].ready, dict(at[60.0].metrics)) == (18, {"cpu %": 50.0})
    assert all(row.desired == 18 for row in result.timeline if 15 <= row.t < 420)


def test_the_legacy_path_holds_its_window_one_sync_longer_and_limits_to_twice() -> None:
    # no behavior: the 300 s window includes its first second, so the 18 of 120 s still counts
    # at 420 s; the scale-up limit is max(2 × current, 4)
    result = simulate(cpu_spec(50, behavior=None), steps((0, 450), (120, 150), (900, 150)),
                      CAPACITY, initial_replicas=10)  # fmt: skip
    assert moves(result) == [(15.0, 10, 18), (435.0, 18, 6)]
    flood = simulate(cpu_spec(10, max_replicas=50, behavior=None), steps((0, 5000), (300, 5000)),
                     CAPACITY, initial_replicas=1)  # fmt: skip
    assert moves(flood)[0] == (15.0, 1, 4)
    assert all(e.after <= max(2 * e.before, 4) for e in flood.events)


@pytest.mark.parametrize(
    ("load", "expected"),
    [(270, []),  # 54 %: ratio 1.08, within the 10 % tolerance
     (230, []),  # 46 %: ratio 0.92
     (280, [(15.0, 10, 12)]),  # 56 %: ratio 1.12 → ceil(11.2)
     (220, [(15.0, 10, 9)])],  # 44 %: ratio 0.88 → ceil(8.8); no history to hold it yet
)  # fmt: skip
def test_a_change_within_the_tolerance_does_nothing(load: int, expected: list[object]) -> None:
    result = simulate(cpu_spec(50), steps((0, load), (600, load)), CAPACITY, initial_replicas=10)
    assert moves(result) == expected


@pytest.mark.parametrize(
    ("select", "first"),
    [(SelectPolicy.MAX, 6),  # Pods 2 + 4 = 6 vs Percent ceil(2 × 2) = 4: Max → 6
     (SelectPolicy.MIN, 4)],
)  # fmt: skip
def test_scale_up_policies_pods_4_vs_percent_100(select: SelectPolicy, first: int) -> None:
    up = ScalingRules(0, select, DEFAULT_SCALE_UP.policies)
    result = simulate(cpu_spec(10, max_replicas=50, behavior=Behavior(scale_up=up)),
                      steps((0, 5000), (120, 5000)), CAPACITY, initial_replicas=2)  # fmt: skip
    assert moves(result)[0] == (15.0, 2, first)


def test_a_disabled_direction_never_scales_that_way() -> None:
    up = ScalingRules(0, SelectPolicy.DISABLED, DEFAULT_SCALE_UP.policies)
    result = simulate(cpu_spec(10, behavior=Behavior(scale_up=up)), steps((0, 5000), (300, 5000)),
                      CAPACITY, initial_replicas=2)  # fmt: skip
    assert result.events == ()
    limited = next(c for c in result.state.conditions if c.type.value == "ScalingLimited")
    assert (limited.status, limited.reason) == ("True", "ScaleUpLimit")


def test_replicas_whose_metrics_are_missing_hold_a_scale_down() -> None:
    # 2 replicas at 90 % → 4 at 15 s; at 30 s the load drops to 20 rps. The 2 new replicas are
    # ready at 25 s but report nothing for 120 s: counted as fully busy, they hold the count.
    no_window = Behavior(scale_down=ScalingRules(0, SelectPolicy.MAX, DEFAULT_SCALE_DOWN.policies))
    spec = cpu_spec(50, behavior=no_window)
    trace = steps((0, 90), (30, 20), (400, 20))
    prompt = simulate(spec, trace, CapacityModel(50, startup_seconds=10), initial_replicas=2)
    assert moves(prompt) == [(15.0, 2, 4), (45.0, 4, 1)]
    slow = CapacityModel(50, startup_seconds=10, metrics_delay_seconds=120)
    assert moves(simulate(spec, trace, slow, initial_replicas=2)) == [(15.0, 2, 4), (150.0, 4, 1)]


def test_starting_replicas_and_their_model_loading_cpu_do_not_scale_up_again() -> None:
    # 60 s to start: the 8 new replicas are pending, then ready with the CPU of loading the
    # model in their first window; neither makes the HPA scale beyond 18
    result = simulate(cpu_spec(50), steps((0, 450), (600, 450)),
                      CapacityModel(50, startup_seconds=60), initial_replicas=10)  # fmt: skip
    assert moves(result) == [(15.0, 10, 18)]
    assert result.timeline[-1].ready == 18


def test_an_oscillating_load_scales_no_more_often_than_the_behavior_allows() -> None:
    trace = square_wave(100, 400, half_period=60, duration=1800)  # a 2-minute cycle
    default = simulate(cpu_spec(70, max_replicas=20), trace, CAPACITY, initial_replicas=2)
    window = DEFAULT_SCALE_DOWN.stabilization_window_seconds
    # a scale-down needs every recommendation of the window below the current count, and the
    # last scale-up recommended at least its new size: scale-ups and -downs are a window apart
    assert _apart(default.events, up_window=0, down_window=window)
    reversals = sum(1 for a, b in itertools.pairwise(default.events)
                    if a.after > a.before and b.after < b.before)  # fmt: skip
    assert reversals <= 1800 // window + 1
    assert all(e.after > e.before for e in default.events)  # the troughs never reach it
    # without the window it flaps with the load
    flappy = Behavior(scale_down=ScalingRules(0, SelectPolicy.MAX, DEFAULT_SCALE_DOWN.policies))
    flapping = simulate(cpu_spec(70, max_replicas=20, behavior=flappy), trace, CAPACITY,
                        initial_replicas=2)  # fmt: skip
    assert len(flapping.events) > 5 * len(default.events)


def _within_policy(events: tuple[ScaleEvent, ...], up: bool, value: int, period: int) -> bool:
    """No ``period`` seconds hold more than ``value`` replicas of change in that direction."""
    moved = [(e.t, abs(e.after - e.before)) for e in events if (e.after > e.before) == up]
    return all(sum(n for t, n in moved if start - period < t <= start) <= value
               for start, _ in moved)  # fmt: skip


def _apart(events: tuple[ScaleEvent, ...], up_window: int, down_window: int) -> bool:
    """A scale-down comes a down window after the last scale-up, and vice versa: the last
    recommendation of one direction holds the other for its window."""
    for a, b in itertools.pairwise(events):
        a_up, b_up = a.after > a.before, b.after > b.before
        if a_up != b_up and b.t - a.t < (down_window if a_up else up_window):
            return False
    return True


def test_an_oscillating_load_scales_no_more_often_than_the_policies_allow() -> None:
    duration = 1800
    # windows at least as long as the periods: no period sees a change in the other direction,
    # so a policy of `value` pods per `period` allows at most `value` events per period
    up = ScalingRules(60, SelectPolicy.MAX, (ScalingPolicy(ScalingPolicyType.PODS, 2, 60),))
    down = ScalingRules(120, SelectPolicy.MAX, (ScalingPolicy(ScalingPolicyType.PODS, 1, 120),))
    spec = cpu_spec(60, max_replicas=20, behavior=Behavior(up, down))
    trace = square_wave(50, 500, half_period=240, duration=duration)  # an 8-minute cycle
    result = simulate(spec, trace, CAPACITY, initial_replicas=2)
    bound = 2 * math.ceil(duration / 60) + 1 * math.ceil(duration / 120)
    assert 0 < len(result.events) <= bound
    assert _within_policy(result.events, up=True, value=2, period=60)
    assert _within_policy(result.events, up=False, value=1, period=120)
    assert _apart(result.events, up_window=60, down_window=120)
    assert any(e.after < e.before for e in result.events)  # it does follow the slow cycle down


def test_scale_to_zero_after_idle_plus_grace_and_back_at_the_first_request() -> None:
    spec = cpu_spec(80, max_replicas=5, min_replicas=0)
    trace = steps((0, 50), (120, 0), (600, 80), (900, 80))
    result = simulate(spec, trace, CAPACITY, initial_replicas=1)
    events = moves(result)
    assert (210.0, 2, 0) in events  # last request before 120 s; idle 60 s + grace 30 s
    assert (601.0, 0, 1) in events  # the router holds the first requests and pokes at once
    assert result.events[events.index((601.0, 0, 1))].message == (
        "New size: 1; reason: requests arrived while scaled to zero")
    row = next(r for r in result.timeline if r.t == 601.0)
    assert row.held == 80 and row.ready == 0
    assert next(r for r in result.timeline if r.t == 630.0).held == 0  # served once ready
    assert result.timeline[-1].desired >= 2


def test_the_simulation_is_deterministic() -> None:
    trace = square_wave(20, 300, half_period=90, duration=900)
    a = simulate(cpu_spec(60), trace, CAPACITY, initial_replicas=3)
    b = simulate(cpu_spec(60), trace, CAPACITY, initial_replicas=3)
    assert a == b and a.to_dict() == b.to_dict()
    assert len(a.timeline) == 900 // 15


def test_a_trace_reads_csv_and_each_rate_holds_until_the_next_row() -> None:
    trace = LoadTrace.from_csv("# a comment\nseconds,requests_per_second\n0,10\n\n60,25.5\n"
                               "120,0\n")  # fmt: skip
    assert trace.points == ((0.0, 10.0), (60.0, 25.5), (120.0, 0.0))
    assert (trace.rate_at(59.9), trace.rate_at(60), trace.duration) == (10.0, 25.5, 120.0)


@pytest.mark.parametrize(
    ("text", "match"),
    [("time,rps\n0,1\n", r"t\.csv line 1 is 'time,rps'; the header must be "
                         r"'seconds,requests_per_second'"),
     ("seconds,requests_per_second\n0,1\n30,lots\n",
      r"t\.csv line 3 is '30,lots'; write two numbers: seconds,requests_per_second"),
     ("seconds,requests_per_second\n0,1\n30\n", r"t\.csv line 3 is '30'"),
     ("seconds,requests_per_second\n0,1\n30,-2\n", r"t\.csv line 3 is '30,-2'; .* at least 0"),
     ("seconds,requests_per_second\n0,1\n30,2\n30,3\n",
      r"t\.csv line 4: seconds 30 must be greater than the previous row's 30"),
     ("seconds,requests_per_second\n10,1\n", r"t\.csv: A load trace must start at 0 seconds"),
     ("seconds,requests_per_second\n", r"t\.csv holds no rows after its header"),
     ("", r"t\.csv is empty")],
)  # fmt: skip
def test_a_bad_trace_is_rejected_naming_the_line(text: str, match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        LoadTrace.from_csv(text, source="t.csv")
