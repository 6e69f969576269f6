"""Alert rules: fire after forWindows breaches, clear after clearAfter clean windows, driven by
a simulator that feeds a sequence of window verdicts."""

from __future__ import annotations

from collections.abc import Sequence

from loopline.monitor import (
    AlertEvent,
    AlertRule,
    Check,
    FeatureResult,
    PerformanceValue,
    RuleState,
    WindowResult,
    step,
)


def window(index: int, drifted: bool | None, accuracy: float | None = None) -> WindowResult:
    """A window whose feature ``x`` drifted (True), did not (False) or was not compared (None)."""
    if drifted is None:
        feat = FeatureResult("x", "numeric", False, reason="one side has no finite values")
    else:
        value = 0.3 if drifted else 0.02
        check = Check("normalized_wasserstein", value, 0.1, drifted, True)
        feat = FeatureResult("x", "numeric", drifted, {"normalized_wasserstein": value}, (check,))
    perf = (
        ()
        if accuracy is None
        else (PerformanceValue("accuracy", accuracy, None, None, 100, "wilson"),)
    )
    return WindowResult(
        "m", "taxi", "3", index, float(index), index + 0.5, 100, (feat,), performance=perf
    )


def simulate(rule: AlertRule, verdicts: Sequence[bool | None]) -> list[AlertEvent]:
    state, events = RuleState(rule.name, "3"), []
    for i, v in enumerate(verdicts):
        state, new = step(rule, state, window(i, v))
        events += new
    return events


RULE = AlertRule("x-drift", "feature:x", for_windows=3, clear_after=2, severity="critical")


def test_fires_after_three_consecutive_breaches_and_names_the_windows() -> None:
    events = simulate(RULE, [False, True, True, True, True])
    assert [(e.state, e.first_window, e.last_window) for e in events] == [("firing", 1, 3)]
    e = events[0]
    assert (e.rule, e.model, e.version, e.severity, e.metric) == (
        "x-drift",
        "taxi",
        "3",
        "critical",
        "feature:x",
    )
    assert e.value == 0.3
    assert "feature 'x' drifted: normalized_wasserstein 0.3000 vs calibrated threshold" in e.reason


def test_an_interrupted_streak_does_not_fire() -> None:
    assert simulate(RULE, [True, True, False, True, True, False, True]) == []


def test_never_refires_while_firing_and_clears_with_hysteresis() -> None:
    events = simulate(RULE, [True, True, True, True, False, True, False, False, True])
    assert [(e.state, e.first_window, e.last_window) for e in events] == [
        ("firing", 0, 2),
        ("resolved", 0, 7),
    ]


def test_fires_again_after_it_resolved() -> None:
    events = simulate(RULE, [True] * 3 + [False] * 2 + [True] * 3)
    assert [(e.state, e.last_window) for e in events] == [
        ("firing", 2),
        ("resolved", 4),
        ("firing", 7),
    ]
    assert events[2].first_window == 5


def test_a_window_that_cannot_measure_keeps_the_streaks() -> None:
    events = simulate(RULE, [True, None, True, None, True])
    assert [(e.state, e.first_window, e.last_window) for e in events] == [("firing", 0, 4)]


def test_a_threshold_rule_on_accuracy_breaches_below_it() -> None:
    rule = AlertRule("decay", "accuracy", "<", 0.8, for_windows=2, clear_after=1)
    state, events = RuleState("decay", "3"), []
    for i, acc in enumerate([0.9, 0.7, None, 0.75, 0.85]):
        state, new = step(rule, state, window(i, False, acc))
        events += new
    assert [(e.state, e.first_window, e.last_window) for e in events] == [
        ("firing", 1, 3),
        ("resolved", 1, 4),
    ]
    assert "accuracy 0.7500 over 100 rows is < 0.8" in events[0].reason


def test_rule_state_and_events_round_trip_through_json_dicts() -> None:
    events = simulate(RULE, [True] * 3)
    assert AlertEvent.from_dict(events[0].to_dict()) == events[0]
    state = RuleState("r", "1", True, 3, 0, 0, 0)
    assert RuleState.from_dict(state.to_dict()) == state
    assert events[0].key == "m/x-drift/taxi/3/firing/0-2"
