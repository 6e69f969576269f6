"""Argo Rollouts' own cases for evaluate and assessMetricStatus (``evaluate_test.go``,
``analysis_test.go``), replayed on loopline's functions."""

from __future__ import annotations

from typing import Any

import pytest

from loopline.deploy.analysis import AnalysisPhase, AnalysisTemplate, Metric, MetricResult, evaluate
from loopline.deploy.analysis import assess_metric as assess

P = AnalysisPhase


def metric(**fields: Any) -> Metric:
    m = {"name": "success-rate", "provider": {"agreement": {}}, **fields}
    return AnalysisTemplate.from_dict({
        "apiVersion": "loopline/v1", "kind": "AnalysisTemplate", "metadata": {"name": "t"},
        "spec": {"metrics": [m]},
    }).metrics[0]  # fmt: skip


def result(**counters: int) -> MetricResult:
    return MetricResult("success-rate", P.RUNNING, **counters)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("success", "failure", "expected"),
    [
        ("true", "false", P.SUCCESSFUL),  # TestEvaluateResultWithSuccess
        ("true", "true", P.FAILED),  # TestEvaluateResultWithFailure
        ("false", "false", P.INCONCLUSIVE),  # TestEvaluateResultInconclusive
        (None, "false", P.SUCCESSFUL),  # NoSuccessConditionAndNotFailing
        ("false", None, P.FAILED),  # NoFailureConditionAndNotSuccessful
        (None, None, P.SUCCESSFUL),  # NoFailureConditionAndNoSuccessCondition
        ("result[5] > 0", "true", P.ERROR),  # WithErrorOnSuccessCondition
        ("true", "result[5] > 0", P.ERROR),  # WithErrorOnFailureCondition
    ],
)
def test_evaluate_copies_argos_truth_table(
    success: str | None, failure: str | None, expected: AnalysisPhase
) -> None:
    fields = {k: v for k, v in (("successCondition", success), ("failureCondition", failure))
              if v is not None}  # fmt: skip
    phase, message = evaluate(metric(**fields), (1.0,))
    assert phase is expected
    assert (message != "") == (expected is P.ERROR)


def test_an_evaluation_error_names_the_condition_and_the_value() -> None:
    phase, message = evaluate(metric(successCondition="result > 0.9"), float("nan"))
    assert phase is P.ERROR
    assert message.startswith('could not evaluate successCondition "result > 0.9": ')
    assert "NaN" in message and "result = nan" in message


def test_no_measurements_is_pending_or_successful_when_terminating() -> None:
    m = metric()
    assert assess(m, MetricResult("success-rate"), False) is P.PENDING
    assert assess(m, MetricResult("success-rate"), True) is P.SUCCESSFUL


def test_failure_limit() -> None:  # TestAssessMetricStatusFailureLimit
    r = result(failed=3, count=3)
    assert assess(metric(failureLimit=2, interval="60s"), r, False) is P.FAILED
    assert assess(metric(failureLimit=2, interval="60s"), r, True) is P.FAILED
    assert assess(metric(failureLimit=3, interval="60s"), r, False) is P.RUNNING
    assert assess(metric(failureLimit=3, interval="60s"), r, True) is P.SUCCESSFUL


def test_consecutive_success_limit() -> None:  # TestAssessMetricStatusConsecutiveSuccessLimit
    r = result(failed=3, successful=4, consecutive_success=3, count=7)

    def m(limit: int, count: int = 0) -> Metric:
        return metric(failureLimit=-1, consecutiveSuccessLimit=limit, interval="60s", count=count)

    assert (assess(m(3), r, False), assess(m(3), r, True)) == (P.SUCCESSFUL, P.SUCCESSFUL)
    assert (assess(m(5), r, False), assess(m(5), r, True)) == (P.RUNNING, P.SUCCESSFUL)
    assert (assess(m(5, 7), r, False), assess(m(5, 7), r, True)) == (P.FAILED, P.FAILED)
    assert (assess(m(3, 7), r, False), assess(m(3, 7), r, True)) == (P.SUCCESSFUL, P.SUCCESSFUL)
    assert (assess(m(3, 9), r, False), assess(m(3, 9), r, True)) == (P.SUCCESSFUL, P.SUCCESSFUL)
    assert (assess(m(5, 9), r, False), assess(m(5, 9), r, True)) == (P.RUNNING, P.SUCCESSFUL)


@pytest.mark.parametrize(
    ("count", "failed", "successful", "n", "streak", "expected"),
    [
        # indefinite (no count)
        (0, 3, 4, 7, 3, (P.RUNNING, P.SUCCESSFUL)),
        (0, 5, 9, 9, 0, (P.FAILED, P.FAILED)),
        (0, 3, 5, 8, 4, (P.SUCCESSFUL, P.SUCCESSFUL)),
        (0, 5, 5, 10, 4, (P.FAILED, P.FAILED)),
        # count 10 reached
        (10, 4, 6, 10, 3, (P.INCONCLUSIVE, P.INCONCLUSIVE)),
        (10, 5, 5, 10, 3, (P.FAILED, P.FAILED)),
        (10, 4, 6, 10, 4, (P.SUCCESSFUL, P.SUCCESSFUL)),
        (10, 5, 5, 10, 4, (P.FAILED, P.FAILED)),
        # count 10 not reached
        (10, 3, 5, 8, 3, (P.RUNNING, P.SUCCESSFUL)),
        (10, 5, 3, 8, 3, (P.FAILED, P.FAILED)),
        (10, 3, 5, 8, 4, (P.SUCCESSFUL, P.SUCCESSFUL)),
        (10, 5, 4, 9, 4, (P.FAILED, P.FAILED)),
    ],
)
def test_failure_limit_and_consecutive_success_limit(
    count: int, failed: int, successful: int, n: int, streak: int,
    expected: tuple[AnalysisPhase, AnalysisPhase],
) -> None:  # fmt: skip
    m = metric(failureLimit=4, consecutiveSuccessLimit=4, interval="60s", count=count)
    r = result(failed=failed, successful=successful, count=n, consecutive_success=streak)
    assert (assess(m, r, False), assess(m, r, True)) == expected


def test_inconclusive_limit() -> None:  # TestAssessMetricStatusInconclusiveLimit
    r = result(inconclusive=3, count=3)
    assert assess(metric(inconclusiveLimit=2, interval="60s"), r, False) is P.INCONCLUSIVE
    assert assess(metric(inconclusiveLimit=2, interval="60s"), r, True) is P.INCONCLUSIVE
    assert assess(metric(inconclusiveLimit=3, interval="60s"), r, False) is P.RUNNING
    assert assess(metric(inconclusiveLimit=3, interval="60s"), r, True) is P.SUCCESSFUL


def test_consecutive_errors_beyond_the_default_limit_of_four() -> None:
    m = metric(interval="60s")
    assert assess(m, result(consecutive_error=5, error=5), False) is P.ERROR
    assert assess(m, result(consecutive_error=5, error=5), True) is P.ERROR
    assert assess(m, result(consecutive_error=4, error=4), True) is P.SUCCESSFUL
    assert assess(m, result(consecutive_error=4, error=4), False) is P.RUNNING


def test_count_reached() -> None:  # TestAssessMetricStatusCountReached
    m = metric(count=10, interval="1m")
    assert assess(m, result(successful=10, count=10), False) is P.SUCCESSFUL
    assert assess(m, result(successful=5, inconclusive=5, count=10), False) is P.INCONCLUSIVE


def test_the_later_limit_wins_when_several_are_breached() -> None:
    m = metric(interval="1m")
    r = result(failed=1, inconclusive=1, count=2, consecutive_error=5, error=5)
    assert assess(m, r, False) is P.ERROR
    assert assess(m, result(failed=1, inconclusive=1, count=2), False) is P.INCONCLUSIVE


def test_a_completed_metric_keeps_its_phase() -> None:
    done = MetricResult("success-rate", P.FAILED, failed=1, count=1)
    assert assess(metric(failureLimit=5, interval="1m"), done, False) is P.FAILED
