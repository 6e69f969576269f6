"""Argo Rollouts' verdicts, as pure functions (``utils/evaluate/evaluate.go``,
``analysis/analysis.go``).

* :func:`evaluate` — one measurement: no conditions → Successful; only a success condition →
  Failed when it is false; only a failure condition → Successful when it is false; both →
  Failed, Successful, or Inconclusive when neither holds; a condition that cannot be
  evaluated → Error.
* :func:`count_measurement` — the counters: Successful/Failed/Inconclusive add to ``count``;
  Error adds to ``error`` and ``consecutiveError`` only; any non-Error resets
  ``consecutiveError``; only Successful grows ``consecutiveSuccess``.
* :func:`limits_breached` then :func:`assess_metric` — a metric is Failed when failed >
  failureLimit (≥ 0), Inconclusive when inconclusive > inconclusiveLimit, Error when
  consecutiveError > consecutiveErrorLimit (the later check wins); else Successful when
  consecutiveSuccess reaches consecutiveSuccessLimit (> 0); else, when ``count`` is reached:
  Inconclusive if both limits apply, Failed if only the success limit does, else Successful;
  else Successful if the run is terminating, else Running.
"""

from __future__ import annotations

from dataclasses import replace

from loopline.deploy.analysis.measurement import AnalysisPhase, Measurement, MetricResult, Value
from loopline.deploy.analysis.template import Metric
from loopline.errors import InvalidInputError

P = AnalysisPhase


def evaluate(metric: Metric, value: Value) -> tuple[AnalysisPhase, str]:
    """The phase of one measurement with this ``value``, and why when it is Error."""
    result = list(value) if isinstance(value, tuple) else value
    success = failure = False
    for attr, cond in (("successCondition", metric.success_condition),
                       ("failureCondition", metric.failure_condition)):  # fmt: skip
        if cond is None:
            continue
        try:
            holds = cond.evaluate(result)
        except InvalidInputError as exc:
            return P.ERROR, f'could not evaluate {attr} "{cond.text}": {exc}'
        if attr == "successCondition":
            success = holds
        else:
            failure = holds
    if metric.success_condition is None and metric.failure_condition is None:
        return P.SUCCESSFUL, ""
    if metric.failure_condition is None:
        failure = not success
    elif metric.success_condition is None:
        success = not failure
    if failure:
        return P.FAILED, ""
    return (P.SUCCESSFUL if success else P.INCONCLUSIVE), ""


def count_measurement(result: MetricResult, m: Measurement, retention: int) -> MetricResult:
    """``result`` with measurement ``m`` counted (Argo's ``runMeasurements``) and kept."""
    kept = (*result.measurements, m)[-retention:]
    if m.phase is P.ERROR:
        return replace(result, error=result.error + 1,
                       consecutive_error=result.consecutive_error + 1, consecutive_success=0,
                       measurements=kept)  # fmt: skip
    return replace(
        result,
        count=result.count + 1,
        successful=result.successful + (m.phase is P.SUCCESSFUL),
        failed=result.failed + (m.phase is P.FAILED),
        inconclusive=result.inconclusive + (m.phase is P.INCONCLUSIVE),
        consecutive_error=0,
        consecutive_success=result.consecutive_success + 1 if m.phase is P.SUCCESSFUL else 0,
        measurements=kept,
    )


def limits_breached(metric: Metric, r: MetricResult) -> tuple[AnalysisPhase | None, str]:
    """Argo's ``assessMetricFailureInconclusiveOrError``: the phase a breached limit forces."""
    phase: AnalysisPhase | None = None
    message = ""
    if metric.failure_limit >= 0 and r.failed > metric.failure_limit:
        phase, message = P.FAILED, f"failed ({r.failed}) > failureLimit ({metric.failure_limit})"
    if r.inconclusive > metric.inconclusive_limit:
        phase = P.INCONCLUSIVE
        message = (
            f"inconclusive ({r.inconclusive}) > inconclusiveLimit ({metric.inconclusive_limit})"
        )
    if r.consecutive_error > metric.consecutive_error_limit:
        phase = P.ERROR
        message = (
            f"consecutiveErrors ({r.consecutive_error}) > consecutiveErrorLimit "
            f"({metric.consecutive_error_limit})"
        )
    return phase, message


def assess_metric(metric: Metric, r: MetricResult, terminating: bool) -> AnalysisPhase:
    """The phase of one metric (Argo's ``assessMetricStatus``)."""
    if r.phase.completed:
        return r.phase
    if r.measured == 0:
        if terminating:
            return P.SUCCESSFUL
        return P.RUNNING if r.waiting_since is not None else P.PENDING
    breached, _ = limits_breached(metric, r)
    if breached is not None:
        return breached
    success_applies = metric.consecutive_success_limit > 0
    if success_applies and r.consecutive_success >= metric.consecutive_success_limit:
        return P.SUCCESSFUL
    count = metric.effective_count
    if count is not None and r.count >= count:
        failure_applies = metric.failure_limit >= 0
        if failure_applies and success_applies:
            return P.INCONCLUSIVE
        if success_applies:
            return P.FAILED
        return P.SUCCESSFUL
    return P.SUCCESSFUL if terminating else P.RUNNING
