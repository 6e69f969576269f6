"""Model metrics for the Evaluator and the Tuner: classification and regression, per slice.

Metric names: ``example_count``; classification ``accuracy``, ``auc`` (binary, ROC),
``log_loss``, ``precision``, ``recall``, ``f1`` (binary, of ``positive_label``), ``macro_f1``
(multiclass); regression ``rmse``, ``mae``, ``r2``. A metric that cannot be computed on a slice
(AUC with one class present) is NaN; NaN fails every threshold, as in TFMA.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from loopline.errors import InvalidInputError
from loopline.types import Json

HIGHER_IS_BETTER = frozenset({"accuracy", "auc", "precision", "recall", "f1", "macro_f1", "r2"})
LOWER_IS_BETTER = frozenset({"log_loss", "rmse", "mae"})


def is_classifier(estimator: Any) -> bool:
    """True for a fitted estimator with ``classes_`` (its last step for a pipeline)."""
    return getattr(estimator, "classes_", None) is not None


def predictions(estimator: Any, x: Any) -> tuple[npt.NDArray[Any], npt.NDArray[Any] | None]:
    """``predict`` and, for a classifier that has it, ``predict_proba`` on ``x``."""
    pred = np.asarray(estimator.predict(x))
    proba = None
    if is_classifier(estimator) and callable(getattr(estimator, "predict_proba", None)):
        proba = np.asarray(estimator.predict_proba(x), dtype=np.float64)
    return pred, proba


def compute_metrics(
    estimator: Any,
    x: Any,
    y: npt.NDArray[Any],
    *,
    positive_label: str | None = None,
) -> dict[str, float]:
    """Every metric that applies to ``estimator`` on rows ``x`` with labels ``y``."""
    if len(y) == 0:
        return {"example_count": 0.0}
    pred, proba = predictions(estimator, x)
    classes = [str(c) for c in estimator.classes_] if is_classifier(estimator) else None
    return metrics_from_predictions(y, pred, proba, classes, positive_label=positive_label)


def metrics_from_predictions(
    y: npt.NDArray[Any],
    pred: npt.NDArray[Any],
    proba: npt.NDArray[Any] | None,
    classes: list[str] | None,
    *,
    positive_label: str | None = None,
) -> dict[str, float]:
    """Metrics from labels and predictions; ``classes`` None means regression."""
    from sklearn import metrics as skm

    n = len(y)
    out: dict[str, float] = {"example_count": float(n)}
    if n == 0:
        return out
    if classes is None:
        yt = np.asarray(y, dtype=np.float64)
        yp = pred.astype(np.float64)
        out["rmse"] = float(math.sqrt(np.mean((yt - yp) ** 2)))
        out["mae"] = float(np.mean(np.abs(yt - yp)))
        out["r2"] = float(skm.r2_score(yt, yp)) if n > 1 else math.nan
        return out
    yt_s = np.asarray([str(v) for v in y], dtype=object)
    yp_s = np.asarray([str(v) for v in pred], dtype=object)
    out["accuracy"] = float(np.mean(yt_s == yp_s))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn warns on ill-defined precision etc.
        if proba is not None:
            out["log_loss"] = float(skm.log_loss(yt_s, proba, labels=classes))
        if len(classes) == 2:
            pos = positive_label if positive_label is not None else classes[1]
            if pos not in classes:
                raise InvalidInputError(
                    f"positive_label {pos!r} is not a class of the model; classes: {classes}."
                )
            truth = yt_s == pos
            guess = yp_s == pos
            out["precision"] = float(skm.precision_score(truth, guess, zero_division=0))
            out["recall"] = float(skm.recall_score(truth, guess, zero_division=0))
            out["f1"] = float(skm.f1_score(truth, guess, zero_division=0))
            if proba is not None:
                score = proba[:, classes.index(pos)]
                out["auc"] = (
                    float(skm.roc_auc_score(truth, score)) if 0 < truth.sum() < n else math.nan
                )
        else:
            out["macro_f1"] = float(skm.f1_score(yt_s, yp_s, average="macro", zero_division=0))
    return out


def to_json_metrics(values: Mapping[str, float]) -> dict[str, Json]:
    """NaN becomes None (JSON has no NaN)."""
    return {k: (v if math.isfinite(v) else None) for k, v in values.items()}
