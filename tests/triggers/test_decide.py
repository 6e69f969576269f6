"""decide(): de-duplication, one run per model, cooldown, coalescing — on a fake clock."""

from __future__ import annotations

import pytest
from tests.triggers.helpers import trigger
from tests.triggers.simulator import TriggerSimulator

from loopline.triggers import (
    Cause,
    Defer,
    Launch,
    Skip,
    TriggerEvent,
    TriggerState,
    consumed_up_to,
    decide,
)


def test_a_new_span_starts_one_run_and_never_a_second_one() -> None:
    sim = TriggerSimulator(trigger(), run_seconds=30)
    sim.span(42)
    sim.advance(300)
    assert [(r.params, r.keys) for r in sim.runs] == [({"span": 42}, ("span:42",))]
    assert sim.skipped[-1][1] == "span 42 already trained by run 1"


def test_spans_arriving_during_a_run_wait_for_it_and_then_start_one_run_together() -> None:
    sim = TriggerSimulator(
        trigger(params={"span": "{{span}}", "spans": "{{spans}}", "first": "{{first_span}}"}),
        run_seconds=60,
    )
    sim.span(42)
    sim.advance(5)
    sim.span(43)
    sim.span(44)
    sim.advance(30)
    assert len(sim.runs) == 1
    assert "run 1 for model 'taxi' is in flight (one run per model)" in sim.deferred[-1][1]
    sim.advance(60)
    assert [r.params for r in sim.runs] == [
        {"span": 42, "spans": [42], "first": 42},
        {"span": 44, "spans": [43, 44], "first": 43},
    ]
    assert sim.runs[1].started == sim.runs[0].ends  # at the first tick after the first ended
    assert sim.runs[1].keys == ("span:44", "span:43")


def test_a_span_waits_out_the_cooldown_and_then_runs() -> None:
    sim = TriggerSimulator(trigger(cooldown="10m"), run_seconds=60)
    sim.span(1)
    sim.advance(120)
    sim.span(2)
    sim.advance(1200)
    assert [r.params["span"] for r in sim.runs] == [1, 2]
    assert sim.runs[1].started == sim.runs[0].ends + 600
    waits = [reason for _, reason in sim.deferred]
    assert (
        waits[0] == "in cooldown until 1970-01-01T00:11:01Z (the last run ended "
        "1970-01-01T00:01:01Z)"
    )


def test_alerts_during_the_cooldown_are_suppressed_not_queued() -> None:
    sim = TriggerSimulator(trigger({"alert": {"monitor": "taxi"}}, cooldown="10m"), run_seconds=60)
    sim.alert(7)
    sim.advance(120)
    sim.alert(9)
    sim.advance(1200)
    assert [r.keys for r in sim.runs] == [("alert:7",)]
    assert sim.skipped[-1][1].startswith("alert 9 fired: suppressed, in cooldown until ")


def test_a_flurry_of_alerts_starts_one_run_that_names_them_all() -> None:
    sim = TriggerSimulator(
        trigger({"alert": {}}, params={"first": "{{alerts}}", "why": "{{alert.metric}}"})
    )
    for artifact_id, metric in ((11, "fare"), (12, "trip_miles"), (13, "tips")):
        sim.alert(artifact_id, metric)
    sim.advance(1)
    assert len(sim.runs) == 1
    assert sim.runs[0].params == {"first": [11, 12, 13], "why": "tips"}
    assert set(sim.runs[0].keys) == {"alert:11", "alert:12", "alert:13"}


def test_a_run_of_another_trigger_on_the_same_model_defers_this_one() -> None:
    sim = TriggerSimulator(trigger(), others={"taxi": 99})
    sim.span(5)
    sim.advance(10)
    assert sim.runs == []
    assert sim.deferred[-1][1] == "run 99 for model 'taxi' is in flight (one run per model)"
    sim.others = {}
    sim.advance(1)
    assert [r.params for r in sim.runs] == [{"span": 5}]


def test_a_registry_event_caused_by_this_triggers_own_run_is_skipped() -> None:
    spec = trigger(
        {"registry": {"model": "base", "event": "newVersion"}}, params={"base": "{{event.version}}"}
    )

    def registered(execution: int, who: str) -> TriggerEvent:
        return TriggerEvent(
            key=f"registry:{execution}",
            position=execution,
            summary=f"base v{execution}",
            variables={"event": {"version": execution}},
            cause=Cause("Model", artifact_id=1),
            origin=who,
        )

    sim = TriggerSimulator(spec, origins=frozenset({"pipeline run retrain-7 "}))
    sim.event(registered(3, "pipeline run retrain-7 (step Pusher)"))
    sim.event(registered(4, "ana"))
    sim.advance(1)
    assert [r.params for r in sim.runs] == [{"base": 4}]
    assert sim.skipped == [(1.0, "base v3: caused by this trigger's own run")]


def test_parameters_that_cannot_be_rendered_skip_the_event_with_the_reason() -> None:
    spec = trigger({"alert": {}}, params={"n": "{{alert.value + 1}}"})
    event = TriggerEvent(
        key="alert:1",
        position=1,
        summary="alert 1 fired",
        variables={"alert": {"value": 0.3}},
        cause=Cause("Alert", 1),
    )
    [action] = decide(spec, TriggerState(), [event], now=0.0)
    assert isinstance(action, Skip)
    assert action.reason == (
        "alert 1 fired: the parameters cannot be rendered: alert.value = "
        "0.3 is not an integer, so it cannot be shifted"
    )


@pytest.mark.parametrize(
    "actions, expected",
    [([], 50.0), (["skip:10", "defer:20", "defer:30"], 19.0), (["skip:40"], 50.0)],
)
def test_the_cursor_stops_before_the_first_deferred_event(
    actions: list[str], expected: float
) -> None:
    def event(position: int) -> TriggerEvent:
        return TriggerEvent(f"alert:{position}", position, "", {}, Cause("Alert", position))

    built: list[Skip | Defer | Launch] = []
    for a in actions:
        kind, _, pos = a.partition(":")
        e = event(int(pos))
        built.append(Skip(e, "") if kind == "skip" else Defer(e, ""))
    assert consumed_up_to(50.0, built) == expected
