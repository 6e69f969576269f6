"""Turn one closed window into a :class:`WindowResult`: drift, schema, skew, performance.

* Feature drift: ``loopline.data.compare(reference, window, schema, calibration=...)`` — the
  thresholds calibrated on reference chunks of the window's size unless the schema pins one.
* Prediction drift: the window's ``predict`` profile against the reference predictions.
* Schema violations: ``loopline.data.validate`` against the model's schema, restricted to the
  monitored features (the label and unserved columns are not expected in the logs).
* Training–serving skew: ``compare(..., mode="skew")`` for features whose schema states skew
  thresholds (TFDV's ``skew_comparator``); none stated, none checked.
* Performance: realised from the labels joined to the window's predictions
  (:mod:`loopline.monitor.performance`), CBPE estimates from its scores
  (:mod:`loopline.monitor.cbpe`) for binary classifiers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from loopline.data import (
    Calibration,
    DriftReport,
    FeatureDrift,
    FeatureProfile,
    Profile,
    Schema,
    compare,
    validate,
)
from loopline.errors import InvalidInputError
from loopline.monitor import performance as perf
from loopline.monitor import regression
from loopline.monitor.cbpe import CBPE
from loopline.monitor.spec import Task
from loopline.monitor.window_result import (
    Check,
    FeatureResult,
    Histogram,
    PerformanceValue,
    Violation,
)

PLOT_CATEGORIES = 20


@dataclass(frozen=True, slots=True)
class Labelled:
    """The window's rows whose labels arrived: labels, predictions, positive-class scores."""

    labels: np.ndarray[Any, Any]
    predictions: np.ndarray[Any, Any]
    scores: np.ndarray[Any, Any] | None


def drift(
    reference: Profile, current: Profile, schema: Schema | None, calibration: Calibration | None
) -> tuple[FeatureResult, ...]:
    """Per-feature drift of ``current`` against ``reference`` (same bucket edges)."""
    report = compare(reference, current, schema, calibration=calibration)
    return tuple(_feature(d, reference, current) for d in report.features)


def skewed(reference: Profile, current: Profile, schema: Schema | None) -> tuple[str, ...]:
    """Features beyond the skew thresholds their schema states."""
    if schema is None:
        return ()
    stated = Schema(tuple(f for f in schema.features if f.skew))
    if not stated.features:
        return ()
    names = {f.name for f in stated.features}
    ref = Profile(reference.num_rows, tuple(f for f in reference.features if f.name in names))
    report: DriftReport = compare(ref, current, stated, mode="skew")
    return report.drifted_features


def violations(
    current: Profile, schema: Schema | None, monitored: tuple[str, ...]
) -> tuple[Violation, ...]:
    """Anomalies of the monitored features (a served column that is missing is one)."""
    if schema is None:
        return ()
    names = set(monitored)
    mine = Schema(tuple(f for f in schema.features if f.name in names))
    return tuple(
        Violation(a.feature, a.kind.value, a.severity.value, a.description)
        for a in validate(current, mine)
    )


def _feature(d: FeatureDrift, reference: Profile, current: Profile) -> FeatureResult:
    checks = tuple(
        Check(c.metric.value, c.value, c.threshold, c.drifted, c.calibrated) for c in d.checks
    )
    ref, cur = reference.get(d.feature), current.get(d.feature)
    missing = cur.missing / cur.num_rows if cur is not None and cur.num_rows else 0.0
    return FeatureResult(
        name=d.feature,
        kind=d.kind,
        drifted=d.drifted,
        metrics={str(k): float(v) for k, v in d.metrics.items()},
        checks=checks,
        reason=d.reason,
        histogram=None if ref is None or cur is None else histogram(ref, cur),
        missing_share=missing,
    )


def histogram(ref: FeatureProfile, cur: FeatureProfile) -> Histogram | None:
    """Reference and current shares on the reference's buckets (numeric) or top categories."""
    if ref.numeric is not None and cur.numeric is not None:
        if ref.numeric.edges != cur.numeric.edges:
            return None
        return Histogram(
            _shares(ref.numeric.bucket_counts),
            _shares(cur.numeric.bucket_counts),
            edges=ref.numeric.edges,
        )
    if ref.categorical is not None and cur.categorical is not None:
        values, counts, tail = ref.categorical.top_k(PLOT_CATEGORIES)
        lookup = dict(zip(cur.categorical.values, cur.categorical.counts, strict=True))
        current = [lookup.get(v, 0) for v in values]
        current.append(cur.categorical.count - sum(current))
        return Histogram(
            _shares((*counts, tail)), _shares(current), categories=(*values, "__other__")
        )
    return None


def _shares(counts: Any) -> tuple[float, ...]:
    total = float(sum(counts))
    return tuple(float(c) / total if total else 0.0 for c in counts)


def realised(
    labelled: Labelled | None, task: Task, positive_class: str | None
) -> tuple[PerformanceValue, ...]:
    """Performance of the labelled rows (none: no labels arrived for this window)."""
    if labelled is None or len(labelled.labels) == 0:
        return ()
    y, p = labelled.labels, labelled.predictions
    funcs: list[tuple[str, Callable[[], perf.MetricValue]]]
    if task is Task.REGRESSION:
        funcs = [
            ("rmse", lambda: regression.rmse(y, p)),
            ("mae", lambda: regression.mae(y, p)),
            ("mape", lambda: regression.mape(y, p)),
        ]
    else:
        pos: dict[str, Any] = {} if positive_class is None else {"positive_class": positive_class}
        funcs = [
            ("accuracy", lambda: perf.accuracy(y, p)),
            ("precision", lambda: perf.precision(y, p, **pos)),
            ("recall", lambda: perf.recall(y, p, **pos)),
            ("f1", lambda: perf.f1(y, p, **pos)),
        ]
        scores = labelled.scores
        if scores is not None and positive_class is not None:
            funcs.append(("auc", lambda: perf.auc(y, scores, positive_class=positive_class)))
    out = []
    for name, fn in funcs:
        try:
            m = fn()
        except InvalidInputError as exc:
            out.append(PerformanceValue(name, None, None, None, len(y), "", reason=str(exc)))
            continue
        out.append(PerformanceValue(m.name, m.value, m.lower, m.upper, m.n, m.method, m.reason))
    return tuple(out)


def estimated(
    cbpe: CBPE | None, scores: np.ndarray[Any, Any] | None, predictions: np.ndarray[Any, Any]
) -> tuple[PerformanceValue, ...]:
    """CBPE's estimates for the window's scored rows (none without a fitted CBPE or scores)."""
    if cbpe is None or scores is None or len(scores) == 0:
        return ()
    try:
        est = cbpe.estimate(scores, predictions)
    except InvalidInputError as exc:
        return (PerformanceValue("accuracy", None, None, None, len(scores), "CBPE", str(exc)),)
    return tuple(
        PerformanceValue(
            m.name, m.value, m.lower, m.upper, m.n, m.method, m.reason, m.alert_lower, m.alert_upper
        )
        for m in est.metrics
    )
