"""Run semantics on a fake clock: Argo's timing, limits, dry runs, termination, and
loopline's sample-size rule."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import pytest

from loopline.deploy.analysis import (
    AnalysisPhase,
    AnalysisRun,
    AnalysisTemplate,
    MeasurementOutcome,
    RunKind,
    due_metrics,
    next_due,
    record,
    record_error,
    start_run,
    terminate,
)
from loopline.errors import ConflictError, InvalidDefinitionError, NotFoundError

P = AnalysisPhase
T0 = 1_700_000_000.0


def template(*metrics: dict[str, Any], name: str = "t") -> AnalysisTemplate:
    ms = [{"provider": {"agreement": {}}, **m} for m in metrics]
    return AnalysisTemplate.from_dict({
        "apiVersion": "loopline/v1", "kind": "AnalysisTemplate", "metadata": {"name": name},
        "spec": {"metrics": ms},
    })  # fmt: skip


def run_of(*metrics: dict[str, Any], kind: RunKind = RunKind.STEP) -> AnalysisRun:
    return start_run("r", kind, [template(*metrics)], canary="new1", stable="old1", now=T0)


def ok(value: float = 1.0, samples: int = 1000) -> MeasurementOutcome:
    return MeasurementOutcome(value, samples)


def roundtrip(run: AnalysisRun) -> AnalysisRun:
    """Through strict JSON, as the deployment status stores it."""
    back = AnalysisRun.from_json(json.loads(json.dumps(run.to_json(), allow_nan=False)))
    assert back.to_json() == run.to_json()  # (NaN values make == false on the objects)
    return back


Source = Callable[[str, float], MeasurementOutcome | str]


def simulate(run: AnalysisRun, source: Source, until: float, tick: float = 1.0) -> AnalysisRun:
    """Advance a fake clock from T0 in ``tick`` steps; measure what is due with ``source``
    (a string means the provider failed with that message). Survives a restart each tick."""
    now = T0
    while now <= T0 + until and not run.completed:
        for name in due_metrics(run, now):
            if run.completed:
                break
            out = source(name, now)
            run = record_error(run, name, out, now) if isinstance(out, str) else record(
                run, name, out, now)  # fmt: skip
        run = roundtrip(run)
        now += tick
    return run


# ---- start -----------------------------------------------------------------------------------


def test_start_run_copies_the_metrics_of_every_template_and_is_running() -> None:
    a = template({"name": "a"}, name="ta")
    b = template({"name": "b", "dryRun": True}, name="tb")
    run = start_run("r", RunKind.PRE_PROMOTION, [a, b], canary="c", stable=None, now=T0)
    assert run.templates == ("ta", "tb") and [m.name for m in run.metrics] == ["a", "b"]
    assert run.phase is P.RUNNING and [r.phase for r in run.results] == [P.PENDING] * 2
    assert run.results[1].dry_run and run.started_at == T0 and run.stable is None


def test_start_run_rejects_a_metric_defined_by_two_templates() -> None:
    with pytest.raises(InvalidDefinitionError, match="'a' is defined by both template 'x' and"):
        start_run("r", RunKind.STEP, [template({"name": "a"}, name="x"),
                                      template({"name": "a"}, name="y")],
                  canary="c", stable="s", now=T0)  # fmt: skip


def test_start_run_rejects_an_endless_metric_outside_a_background_run() -> None:
    endless = template({"name": "a", "interval": "1m"})
    with pytest.raises(InvalidDefinitionError, match="has an interval and no count"):
        start_run("r", RunKind.STEP, [endless], canary="c", stable="s", now=T0)
    run = start_run("r", RunKind.BACKGROUND, [endless], canary="c", stable="s", now=T0)
    assert run.phase is P.RUNNING


def test_start_run_needs_at_least_one_metric() -> None:
    with pytest.raises(InvalidDefinitionError, match="has no metrics"):
        start_run("r", RunKind.STEP, [], canary="c", stable="s", now=T0)


# ---- timing ----------------------------------------------------------------------------------


def test_a_metric_without_interval_is_measured_once() -> None:
    run = run_of({"name": "a"})
    assert due_metrics(run, T0) == ("a",)
    run = record(run, "a", ok(), T0)
    assert run.phase is P.SUCCESSFUL and due_metrics(run, T0 + 3600) == ()
    assert run.finished_at == T0 and next_due(run) is None


def test_initial_delay_then_interval_until_count() -> None:
    run = run_of({"name": "a", "initialDelay": "30s", "interval": "10s", "count": 3})
    assert due_metrics(run, T0 + 29) == () and next_due(run) == T0 + 30
    assert due_metrics(run, T0 + 30) == ("a",)
    run = record(run, "a", ok(), T0 + 31)
    assert due_metrics(run, T0 + 40) == () and next_due(run) == T0 + 41
    run = record(run, "a", ok(), T0 + 41)
    run = record(run, "a", ok(), T0 + 51)
    assert run.phase is P.SUCCESSFUL and run.results[0].count == 3 and next_due(run) is None


def test_an_error_is_retried_after_ten_seconds_not_the_interval() -> None:
    run = run_of({"name": "a", "interval": "5m", "count": 2})
    run = record_error(run, "a", "router down", T0)
    assert run.results[0].error == 1 and run.results[0].count == 0
    assert due_metrics(run, T0 + 9) == () and due_metrics(run, T0 + 10) == ("a",)
    run = record(run, "a", ok(), T0 + 10)
    assert next_due(run) == T0 + 310


def test_metrics_are_due_in_template_order_and_next_due_is_the_earliest() -> None:
    run = run_of({"name": "slow", "interval": "1m", "count": 2},
                 {"name": "fast", "interval": "10s", "count": 2})  # fmt: skip
    assert due_metrics(run, T0) == ("slow", "fast")
    run = record(record(run, "slow", ok(), T0), "fast", ok(), T0)
    assert next_due(run) == T0 + 10


# ---- Argo's limits through record ------------------------------------------------------------


def test_one_failed_measurement_fails_the_run_with_argos_message() -> None:
    run = run_of({"name": "a", "interval": "1m", "count": 3, "successCondition": "result > 0.9"})
    run = record(run, "a", ok(0.5), T0)
    assert run.phase is P.FAILED and run.results[0].phase is P.FAILED
    assert run.message == 'Metric "a" assessed Failed due to failed (1) > failureLimit (0)'
    assert due_metrics(run, T0 + 3600) == ()


def test_failure_limit_tolerates_that_many_failures() -> None:
    run = run_of({"name": "a", "interval": "1m", "count": 4, "failureLimit": 2,
                  "successCondition": "result > 0.9"})  # fmt: skip
    values = iter([0.5, 0.95, 0.5, 0.95])
    run = simulate(run, lambda n, t: ok(next(values)), until=600)
    assert run.phase is P.SUCCESSFUL and run.results[0].failed == 2


def test_inconclusive_measurements_beyond_the_limit_make_the_run_inconclusive() -> None:
    run = run_of({"name": "a", "interval": "1m", "count": 4, "inconclusiveLimit": 1,
                  "successCondition": "result >= 0.95",
                  "failureCondition": "result < 0.9"})  # fmt: skip
    values = iter([0.92, 0.99, 0.93])
    run = simulate(run, lambda n, t: ok(next(values)), until=600)
    assert run.phase is P.INCONCLUSIVE and run.results[0].inconclusive == 2
    assert "inconclusive (2) > inconclusiveLimit (1)" in run.message


def test_five_consecutive_errors_make_the_run_error_and_a_success_resets_the_streak() -> None:
    run = run_of({"name": "a", "interval": "1m", "count": 3})
    for i in range(4):
        run = record_error(run, "a", "no answer", T0 + 10 * i)
    run = record(run, "a", ok(), T0 + 40)
    assert run.results[0].consecutive_error == 0 and run.phase is P.RUNNING
    for i in range(5):
        run = record_error(run, "a", "no answer", T0 + 100 + 10 * i)
    assert run.phase is P.ERROR
    assert run.message == ('Metric "a" assessed Error due to consecutiveErrors (5) > '
                           'consecutiveErrorLimit (4): "Error Message: no answer"')  # fmt: skip


def test_consecutive_success_limit_ends_a_metric_early() -> None:
    run = run_of({"name": "a", "interval": "1m", "count": 10, "consecutiveSuccessLimit": 2,
                  "failureLimit": 3, "successCondition": "result > 0.9"})  # fmt: skip
    for i, v in enumerate([0.5, 0.95, 0.95]):
        run = record(run, "a", ok(v), T0 + 60 * i)
    assert run.phase is P.SUCCESSFUL and run.results[0].count == 3


def test_an_evaluation_error_is_an_error_measurement() -> None:
    run = run_of({"name": "a", "interval": "1m", "count": 2, "successCondition": "result[3] > 1"})
    run = record(run, "a", MeasurementOutcome([1.0], 10), T0)
    r = run.results[0]
    assert r.error == 1 and r.measurements[0].phase is P.ERROR
    assert "Index 3 is out of range" in r.measurements[0].message


def test_a_failed_metric_terminates_its_siblings_as_successful() -> None:
    run = run_of({"name": "bad", "successCondition": "result > 0.9"},
                 {"name": "slow", "interval": "1m", "count": 5})  # fmt: skip
    run = record(run, "slow", ok(), T0)
    run = record(run, "bad", ok(0.1), T0)
    assert run.phase is P.FAILED
    assert [r.phase for r in run.results] == [P.FAILED, P.SUCCESSFUL]
    assert due_metrics(run, T0 + 600) == ()


def test_the_run_takes_the_worst_phase_in_argos_order() -> None:
    run = run_of({"name": "inc", "successCondition": "false", "failureCondition": "false"},
                 {"name": "err", "consecutiveErrorLimit": 0},
                 {"name": "fail", "successCondition": "false"})  # fmt: skip
    run = record(run, "inc", ok(), T0)
    assert run.phase is P.INCONCLUSIVE
    run2 = record_error(run_of({"name": "err", "consecutiveErrorLimit": 0},
                               {"name": "fail", "successCondition": "false"}), "err", "x", T0)
    assert run2.phase is P.ERROR
    run3 = record(run_of({"name": "fail", "successCondition": "false"},
                         {"name": "err", "consecutiveErrorLimit": 0}), "fail", ok(), T0)
    assert run3.phase is P.FAILED


# ---- dry run -----------------------------------------------------------------------------------


def test_a_failing_dry_run_metric_never_decides_the_run() -> None:
    run = run_of({"name": "real", "interval": "1m", "count": 2},
                 {"name": "dry", "dryRun": True, "successCondition": "result > 0.9"})  # fmt: skip
    run = record(run, "dry", ok(0.1), T0)
    assert run.results[1].phase is P.FAILED and run.phase is P.RUNNING
    run = record(run, "real", ok(), T0)
    run = record(run, "real", ok(), T0 + 60)
    assert run.phase is P.SUCCESSFUL and run.message == ""


def test_a_run_of_only_dry_run_metrics_is_successful_when_they_complete() -> None:
    run = run_of({"name": "dry", "dryRun": True, "successCondition": "false"})
    run = record(run, "dry", ok(), T0)
    assert run.results[0].phase is P.FAILED and run.phase is P.SUCCESSFUL


# ---- background runs and terminate ---------------------------------------------------------


def test_a_background_run_without_count_measures_until_terminated_then_succeeds() -> None:
    run = run_of({"name": "a", "interval": "30s", "successCondition": "result > 0.9"},
                 kind=RunKind.BACKGROUND)
    run = simulate(run, lambda n, t: ok(0.99), until=600)
    assert run.phase is P.RUNNING and run.results[0].count == 21
    assert roundtrip(run) == run
    run = terminate(run, T0 + 601)
    assert run.phase is P.SUCCESSFUL and run.terminated and run.message == "Run Terminated"
    assert run.finished_at == T0 + 601 and due_metrics(run, T0 + 700) == ()
    assert terminate(run, T0 + 900) == run


def test_a_background_run_fails_as_soon_as_a_measurement_fails() -> None:
    run = run_of({"name": "a", "interval": "30s", "successCondition": "result > 0.9"},
                 kind=RunKind.BACKGROUND)
    run = simulate(run, lambda n, t: ok(0.5 if t >= T0 + 90 else 0.99), until=600)
    assert run.phase is P.FAILED and run.finished_at == T0 + 90


def test_terminating_a_run_that_never_measured_is_successful_like_argo() -> None:
    run = run_of({"name": "a", "initialDelay": "5m", "interval": "1m"}, kind=RunKind.BACKGROUND)
    assert terminate(run, T0 + 10).phase is P.SUCCESSFUL


def test_recording_into_a_finished_run_or_an_unknown_metric_is_refused() -> None:
    run = run_of({"name": "a"})
    with pytest.raises(NotFoundError, match="has no metric 'b'; its metrics are \\['a'\\]"):
        record(run, "b", ok(), T0)
    done = record(run, "a", ok(), T0)
    with pytest.raises(ConflictError, match="is Successful; it takes no more measurements"):
        record(done, "a", ok(), T0)


# ---- sample size -----------------------------------------------------------------------------


def test_too_few_samples_is_a_wait_not_a_measurement() -> None:
    run = run_of({"name": "a", "minSampleSize": 200, "sampleTimeout": "5m",
                  "successCondition": "result > 0.9"})  # fmt: skip
    run = record(run, "a", MeasurementOutcome(None, 0), T0)
    r = run.results[0]
    assert r.measured == 0 and r.waiting_since == T0 and r.phase is P.RUNNING
    assert r.message == "Waiting for samples: 0 of the 200 samples it needs so far."
    assert due_metrics(run, T0 + 9) == () and due_metrics(run, T0 + 10) == ("a",)
    run = record(run, "a", MeasurementOutcome(0.2, 150), T0 + 10)
    assert run.results[0].waiting_since == T0 and run.phase is P.RUNNING
    run = record(run, "a", MeasurementOutcome(0.95, 250), T0 + 20)
    m = run.results[0].measurements[0]
    assert run.phase is P.SUCCESSFUL and (m.started_at, m.finished_at, m.samples) == (
        T0, T0 + 20, 250)  # fmt: skip


def test_waiting_longer_than_the_sample_timeout_is_inconclusive_never_successful() -> None:
    run = run_of({"name": "a", "minSampleSize": 200, "sampleTimeout": "5m"})  # no conditions
    trickle = simulate(run, lambda n, t: MeasurementOutcome(1.0, int(t - T0) // 10), until=900)
    r = trickle.results[0]
    assert trickle.phase is P.INCONCLUSIVE and r.inconclusive == 1 and r.successful == 0
    assert trickle.finished_at == T0 + 300
    assert r.measurements[0].message == ("Waited 5m and saw only 30 of the 200 samples it needs: "
                                         "too little traffic to decide.")  # fmt: skip


def test_an_inconclusive_limit_lets_a_quiet_window_pass_and_the_wait_restarts() -> None:
    run = run_of({"name": "a", "interval": "1m", "count": 3, "inconclusiveLimit": 1,
                  "minSampleSize": 100, "sampleTimeout": "2m"})  # fmt: skip
    quiet = {T0 + 60 * k for k in range(1, 4)}

    def source(name: str, t: float) -> MeasurementOutcome:
        return MeasurementOutcome(1.0, 10 if any(t >= q for q in quiet) and t < T0 + 240 else 500)

    run = simulate(run, source, until=1200)
    r = run.results[0]
    assert r.inconclusive == 1 and r.successful == 2 and run.phase is P.SUCCESSFUL


def test_a_metric_terminated_while_waiting_for_its_first_samples_is_inconclusive() -> None:
    run = run_of({"name": "a", "interval": "30s", "minSampleSize": 50}, kind=RunKind.BACKGROUND)
    run = record(run, "a", MeasurementOutcome(None, 3), T0)
    run = terminate(run, T0 + 60)
    assert run.phase is P.INCONCLUSIVE and run.results[0].inconclusive == 1
    assert run.results[0].measurements[0].message.startswith("Terminated after waiting 1m")


def test_errors_and_a_wait_are_no_evidence_either() -> None:
    run = run_of({"name": "a", "interval": "30s", "minSampleSize": 50}, kind=RunKind.BACKGROUND)
    run = record_error(run, "a", "router restarting", T0)
    run = record(run, "a", MeasurementOutcome(None, 3), T0 + 10)
    run = terminate(run, T0 + 60)
    assert run.phase is P.INCONCLUSIVE and run.results[0].waiting_since is None


def test_a_wait_after_good_measurements_is_dropped_on_terminate() -> None:
    run = run_of({"name": "a", "interval": "30s", "minSampleSize": 50}, kind=RunKind.BACKGROUND)
    run = record(run, "a", ok(), T0)
    run = record(run, "a", MeasurementOutcome(None, 3), T0 + 30)
    run = terminate(run, T0 + 45)
    assert run.phase is P.SUCCESSFUL and run.results[0].count == 1
    assert run.results[0].waiting_since is None


def test_a_low_traffic_model_is_decided_once_it_has_enough_requests() -> None:
    """Flagger fails "no values found" checks; here 1 request / 5 s meets 100 samples at 500 s."""
    run = run_of({"name": "errors", "interval": "1m", "count": 2, "minSampleSize": 100,
                  "sampleTimeout": "15m", "successCondition": "result <= 0.01"})  # fmt: skip
    run = simulate(run, lambda n, t: MeasurementOutcome(0.0, int(t - T0) // 5), until=3600)
    r = run.results[0]
    assert run.phase is P.SUCCESSFUL and r.successful == 2 and r.inconclusive == 0
    assert r.measurements[0].finished_at == T0 + 500


# ---- storage ---------------------------------------------------------------------------------


def test_measurement_retention_keeps_the_last_n_and_all_counters() -> None:
    run = run_of({"name": "a", "interval": "1s", "count": 8, "measurementRetention": 3})
    for i in range(8):
        run = record(run, "a", ok(float(i)), T0 + i)
    r = run.results[0]
    assert r.count == 8 and [m.value for m in r.measurements] == [5.0, 6.0, 7.0]


def test_runs_survive_strict_json_with_nan_and_infinite_values() -> None:
    run = run_of({"name": "a", "interval": "1s", "count": 4, "failureLimit": 3,
                  "successCondition": "!isNaN(result) && result < 1"})  # fmt: skip
    run = record(run, "a", MeasurementOutcome(math.nan, 5), T0)
    run = record(run, "a", MeasurementOutcome([math.inf, -math.inf, 0.5], 5), T0 + 1)
    back = roundtrip(run)
    assert math.isnan(back.results[0].measurements[0].value)  # type: ignore[arg-type]
    assert back.results[0].measurements[1].value == (math.inf, -math.inf, 0.5)
    assert back.metrics == run.metrics and back.metrics[0].success_condition is not None


def test_a_restarted_controller_carries_on_from_the_stored_run() -> None:
    run = run_of({"name": "a", "interval": "10s", "count": 3, "minSampleSize": 10})
    run = record(run, "a", ok(), T0)
    run = record(run, "a", MeasurementOutcome(1.0, 2), T0 + 10)
    back = roundtrip(run)
    assert due_metrics(back, T0 + 20) == ("a",) and back.results[0].waiting_since == T0 + 10
    back = record(record(back, "a", ok(), T0 + 20), "a", ok(), T0 + 30)
    assert back.phase is P.SUCCESSFUL
