"""Automated analysis for canaries and blue-green: Argo Rollouts' AnalysisTemplate and
AnalysisRun semantics, with model-aware metrics.

Key contracts:

- :class:`AnalysisTemplate` (``apiVersion: loopline/v1``, ``kind: AnalysisTemplate``) is
  validated when built; errors name the field path and value. ``successCondition`` and
  ``failureCondition`` are parsed into safe :class:`Condition` trees (never ``eval``).
- :func:`start_run`, :func:`due_metrics`, :func:`record`, :func:`record_error`,
  :func:`terminate` are pure (``now`` is a parameter) and copy Argo's evaluate/assess rules:
  Successful/Failed/Inconclusive/Error, count, interval, initialDelay, failureLimit,
  inconclusiveLimit, consecutiveErrorLimit (4), consecutiveSuccessLimit, dryRun,
  measurementRetention (10); background runs without a count end Successful when terminated.
- Sample size: an outcome with fewer samples than ``minSampleSize`` is not a measurement; the
  metric waits, and a wait of ``sampleTimeout`` is Inconclusive, never Successful.
- :class:`AnalysisRun` round-trips through ``to_json``/``from_json`` (it lives in the
  deployment status).
- Providers (:func:`provider_for`): router figures per revision, mirrored agreement,
  prediction drift between canary and stable, online accuracy from feedback labels,
  Prometheus queries. :func:`measure_due` measures every due metric of a run and records it.
"""

from loopline.deploy.analysis.assess import assess_metric, evaluate
from loopline.deploy.analysis.expression import Condition
from loopline.deploy.analysis.measurement import (
    AnalysisPhase,
    Measurement,
    MeasurementOutcome,
    MetricResult,
)
from loopline.deploy.analysis.provider_spec import (
    AccuracyMetric,
    AccuracyQuery,
    AgreementQuery,
    DriftMeasure,
    DriftQuery,
    PrometheusQuery,
    ProviderSpec,
    RouterMetric,
    RouterQuery,
    Side,
)
from loopline.deploy.analysis.providers import (
    MeasureContext,
    MetricProvider,
    RevisionModel,
    provider_for,
)
from loopline.deploy.analysis.run import (
    AnalysisRun,
    RunKind,
    due_at,
    due_metrics,
    next_due,
    record,
    record_error,
    start_run,
    terminate,
)
from loopline.deploy.analysis.sweep import measure_due
from loopline.deploy.analysis.template import AnalysisTemplate, Metric, templates_from_yaml

__all__ = [
    "AccuracyMetric",
    "AccuracyQuery",
    "AgreementQuery",
    "AnalysisPhase",
    "AnalysisRun",
    "AnalysisTemplate",
    "Condition",
    "DriftMeasure",
    "DriftQuery",
    "MeasureContext",
    "Measurement",
    "MeasurementOutcome",
    "Metric",
    "MetricProvider",
    "MetricResult",
    "PrometheusQuery",
    "ProviderSpec",
    "RevisionModel",
    "RouterMetric",
    "RouterQuery",
    "RunKind",
    "Side",
    "assess_metric",
    "due_at",
    "due_metrics",
    "evaluate",
    "measure_due",
    "next_due",
    "provider_for",
    "record",
    "record_error",
    "start_run",
    "templates_from_yaml",
    "terminate",
]
