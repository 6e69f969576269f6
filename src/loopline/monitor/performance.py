"""Classification performance from labels, each value with a confidence interval. Pure NumPy.

============  ==============================================  ================================
function      value                                           interval (``method`` says which)
============  ==============================================  ================================
``accuracy``  share of predictions equal to the label         Wilson score
``precision`` TP / (TP + FP) of ``positive_class``, or the    Wilson (binary); bootstrap of
              unweighted mean over the classes                the confusion matrix (macro)
``recall``    TP / (TP + FN), same two cases                  same
``f1``        2·TP / (2·TP + FP + FN), same two cases         bootstrap of the confusion matrix
``auc``       ROC AUC of 1-d ``scores`` for                   DeLong (binary); row bootstrap
              ``positive_class``; one-vs-rest macro AUC of    (multiclass)
              2-d scores (rows × ``classes``)
============  ==============================================  ================================

Regression (RMSE, MAE, MAPE) is in :mod:`loopline.monitor.regression`; both return
:class:`MetricValue`. Labels and predictions are 1-d arrays of class labels (strings, integers
or booleans; both of one kind). Binary metrics need ``positive_class`` unless the classes are
``{0, 1}`` or ``{False, True}``; with more than two classes and no ``positive_class``,
precision, recall and F1 are macro averages over every class seen in the labels or the
predictions (a class never predicted counts 0, as scikit-learn's ``zero_division=0``). A metric
the data cannot define (AUC with one class only, precision with no positive prediction) has
``value`` None and a ``reason``; bad input (empty, mismatched lengths, missing values, mixed
label kinds) raises :class:`~loopline.errors.InvalidInputError` naming the argument.

Bootstrap intervals are percentile intervals over ``resamples`` resamples drawn with a fixed
``seed``, so a window's interval is reproducible. For metrics of a confusion matrix a
multinomial draw of its cells is exactly a row bootstrap, at O(cells) per resample.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from loopline.errors import InvalidInputError
from loopline.monitor.intervals import (
    BLOCK_CELLS,
    bootstrap_label,
    bootstrap_weights,
    check_resamples,
    delong_components,
    percentile_interval,
    weighted_aucs,
    wilson_interval,
    z_value,
)
from loopline.monitor.label_arrays import (
    check_positive_kind,
    class_array,
    confusion,
    encode,
    numbers,
    positive_index,
    same_length,
    vector,
)

DEFAULT_RESAMPLES = 1000

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class MetricValue:
    """One metric over ``n`` observations with its ``confidence`` interval ``[lower, upper]``.

    ``n`` counts what the value is a share of (precision: the rows predicted positive; recall:
    the positive rows; the others: every row). ``value`` is None when the data cannot define
    the metric, and ``reason`` says why.
    """

    name: str
    value: float | None
    lower: float | None
    upper: float | None
    n: int
    method: str
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": self.value,
            "lower": self.lower,
            "upper": self.upper,
            "n": self.n,
            "method": self.method,
            "reason": self.reason,
        }


# --------------------------------------------------------------------------- classification


def accuracy(
    labels: npt.ArrayLike, predictions: npt.ArrayLike, *, confidence: float = 0.95
) -> MetricValue:
    """Share of rows whose prediction equals the label, with a Wilson interval."""
    y, p, _ = encode(labels, predictions)
    n = len(y)
    correct = int(np.count_nonzero(y == p))
    lo, hi = wilson_interval(correct, n, confidence)
    return MetricValue("accuracy", correct / n, lo, hi, n, f"Wilson score {confidence:.0%}")


def _binary_share(name: str, hits: int, n: int, confidence: float, undefined: str) -> MetricValue:
    if n == 0:
        return MetricValue(name, None, None, None, 0, "Wilson score", undefined)
    lo, hi = wilson_interval(hits, n, confidence)
    return MetricValue(name, hits / n, lo, hi, n, f"Wilson score {confidence:.0%}")


def _macro(
    name: str,
    cm: Ints,
    confidence: float,
    resamples: int,
    seed: int,
) -> MetricValue:
    """Macro precision/recall/F1 with a multinomial bootstrap of the confusion matrix."""
    check_resamples(resamples)
    k = cm.shape[0]
    n = int(cm.sum())
    value = float(_macro_stat(name, cm[None, :, :].astype(np.float64))[0])
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(n, cm.ravel() / n, size=resamples).reshape(resamples, k, k)
    lo, hi = percentile_interval(_macro_stat(name, draws.astype(np.float64)), confidence)
    method = f"macro average over {k} classes; " + bootstrap_label(
        resamples, seed, "confusion matrix"
    )
    return MetricValue(name, value, lo, hi, n, method)


def _macro_stat(name: str, cms: Floats) -> Floats:
    """Per-resample macro metric of a stack of confusion matrices (rows: label, cols: pred)."""
    tp = np.diagonal(cms, axis1=1, axis2=2)
    predicted = cms.sum(axis=1)
    actual = cms.sum(axis=2)
    with np.errstate(divide="ignore", invalid="ignore"):
        if name == "precision":
            per_class = np.where(predicted > 0, tp / predicted, 0.0)
        elif name == "recall":
            per_class = np.where(actual > 0, tp / actual, 0.0)
        else:
            denom = predicted + actual
            per_class = np.where(denom > 0, 2 * tp / denom, 0.0)
    present = (predicted + actual) > 0
    return np.asarray(
        np.sum(per_class * present, axis=1) / np.maximum(present.sum(axis=1), 1), np.float64
    )


def _binary_counts(
    labels: npt.ArrayLike, predictions: npt.ArrayLike, positive_class: Any, name: str
) -> tuple[int, int, int, int] | Ints:
    """(TP, FP, FN, TN) for a binary metric, or the confusion matrix for a macro average."""
    y, p, classes = encode(labels, predictions)
    pos = positive_index(classes, positive_class, name)
    if pos is None:
        return confusion(y, p, len(classes))
    yt, pt = y == pos, p == pos
    tp = int(np.count_nonzero(yt & pt))
    fp = int(np.count_nonzero(~yt & pt))
    fn = int(np.count_nonzero(yt & ~pt))
    return tp, fp, fn, len(y) - tp - fp - fn


def precision(
    labels: npt.ArrayLike,
    predictions: npt.ArrayLike,
    *,
    positive_class: Any = None,
    confidence: float = 0.95,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> MetricValue:
    """TP / (TP + FP) of ``positive_class`` (Wilson), or the macro average (bootstrap)."""
    counts = _binary_counts(labels, predictions, positive_class, "precision")
    z_value(confidence)
    if isinstance(counts, np.ndarray):
        return _macro("precision", counts, confidence, resamples, seed)
    tp, fp, _, _ = counts
    return _binary_share(
        "precision", tp, tp + fp, confidence, "No row is predicted as the positive class."
    )


def recall(
    labels: npt.ArrayLike,
    predictions: npt.ArrayLike,
    *,
    positive_class: Any = None,
    confidence: float = 0.95,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> MetricValue:
    """TP / (TP + FN) of ``positive_class`` (Wilson), or the macro average (bootstrap)."""
    counts = _binary_counts(labels, predictions, positive_class, "recall")
    z_value(confidence)
    if isinstance(counts, np.ndarray):
        return _macro("recall", counts, confidence, resamples, seed)
    tp, _, fn, _ = counts
    return _binary_share(
        "recall", tp, tp + fn, confidence, "No row is labelled with the positive class."
    )


def f1(
    labels: npt.ArrayLike,
    predictions: npt.ArrayLike,
    *,
    positive_class: Any = None,
    confidence: float = 0.95,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> MetricValue:
    """2·TP / (2·TP + FP + FN); interval from a multinomial bootstrap of the confusion matrix."""
    counts = _binary_counts(labels, predictions, positive_class, "f1")
    z_value(confidence)
    if isinstance(counts, np.ndarray):
        return _macro("f1", counts, confidence, resamples, seed)
    check_resamples(resamples)
    tp, fp, fn, tn = counts
    n = tp + fp + fn + tn
    if tp + fp + fn == 0:
        return MetricValue(
            "f1",
            None,
            None,
            None,
            n,
            "bootstrap",
            "No row is labelled or predicted as the positive class.",
        )
    cells = np.array([tp, fp, fn, tn], dtype=np.float64)
    draws = np.random.default_rng(seed).multinomial(n, cells / n, size=resamples)
    d = draws.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        stats = 2 * d[:, 0] / (2 * d[:, 0] + d[:, 1] + d[:, 2])
    lo, hi = percentile_interval(stats, confidence)
    value = 2 * tp / (2 * tp + fp + fn)
    method = bootstrap_label(resamples, seed, "confusion matrix")
    return MetricValue("f1", value, lo, hi, n, method)


def auc(
    labels: npt.ArrayLike,
    scores: npt.ArrayLike,
    *,
    positive_class: Any = None,
    classes: npt.ArrayLike | None = None,
    confidence: float = 0.95,
    resamples: int = 200,
    seed: int = 0,
) -> MetricValue:
    """ROC AUC with an interval.

    1-d ``scores`` are the positive class's scores: DeLong's interval (normal, clipped to
    [0, 1]). 2-d ``scores`` (rows × classes, columns in the order of ``classes``, e.g. the
    model's ``classes_``) give the one-vs-rest macro AUC over the classes present in the labels
    (scikit-learn's ``multi_class="ovr"``), with a row bootstrap.
    """
    z = z_value(confidence)
    y = class_array(labels, "labels")
    s = np.asarray(scores)
    if s.ndim == 2:
        return _multiclass_auc(y, s, classes, confidence, resamples, seed)
    s = numbers(vector(s, "scores"), "scores")
    same_length(y, s, "labels", "scores")
    values = np.unique(y)
    if positive_class is None:
        vals = set(values.tolist())
        if not (vals <= {0, 1} or vals <= {False, True}):
            raise InvalidInputError(
                f"Name the positive class (positive_class=...) for auc: the labels are "
                f"{values.tolist()!r}."
            )
        positive_class = 1
    check_positive_kind(values, positive_class)
    positive = y == positive_class
    m = int(np.count_nonzero(positive))
    n = len(y)
    if m in (0, n):
        only = "positive" if m == n else "negative"
        return MetricValue(
            "auc",
            None,
            None,
            None,
            n,
            "DeLong",
            f"Every labelled row is {only} (positive class {positive_class!r}); ROC AUC needs "
            "both classes.",
        )
    value, v10, v01 = delong_components(positive, s)
    var = float(np.var(v10, ddof=1) / m if m > 1 else 0.0) + float(
        np.var(v01, ddof=1) / (n - m) if n - m > 1 else 0.0
    )
    half = z * math.sqrt(max(var, 0.0))
    return MetricValue(
        "auc",
        value,
        max(0.0, value - half),
        min(1.0, value + half),
        n,
        f"DeLong {confidence:.0%} (normal, clipped to [0, 1])",
    )


def _multiclass_auc(
    y: npt.NDArray[Any],
    s: npt.NDArray[Any],
    classes: npt.ArrayLike | None,
    confidence: float,
    resamples: int,
    seed: int,
) -> MetricValue:
    check_resamples(resamples)
    if classes is None:
        raise InvalidInputError(
            "2-d scores need classes=... naming the class of each column (the model's classes_)."
        )
    cls = np.asarray(classes)
    scores = numbers(s, "scores")
    if scores.shape[1] != len(cls):
        raise InvalidInputError(
            f"scores have {scores.shape[1]} columns but classes names {len(cls)}; one per column."
        )
    same_length(y, scores, "labels", "scores")
    present = [j for j, c in enumerate(cls.tolist()) if np.any(y == c)]
    n = len(y)
    method = "one-vs-rest macro; " + bootstrap_label(resamples, seed)
    if len(present) < 2:
        return MetricValue(
            "auc",
            None,
            None,
            None,
            n,
            method,
            "Fewer than two of the classes appear in the labels; ROC AUC needs both sides.",
        )
    ones = np.ones((1, n))
    rng = np.random.default_rng(seed)
    block = max(1, BLOCK_CELLS // n)
    values = np.zeros(1)
    boot = np.zeros(resamples)
    for j in present:
        positive = y == cls[j]
        values += weighted_aucs(positive, scores[:, j], ones)
    done = 0
    while done < resamples:
        b = min(block, resamples - done)
        w = bootstrap_weights(rng, b, n)
        acc = np.zeros(b)
        for j in present:
            acc += weighted_aucs(y == cls[j], scores[:, j], w)
        boot[done : done + b] = acc / len(present)
        done += b
    lo, hi = percentile_interval(boot, confidence)
    return MetricValue("auc", float(values[0] / len(present)), lo, hi, n, method)


# --------------------------------------------------------------------------- bundles


def classification_metrics(
    labels: npt.ArrayLike,
    predictions: npt.ArrayLike,
    scores: npt.ArrayLike | None = None,
    *,
    positive_class: Any = None,
    classes: npt.ArrayLike | None = None,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[MetricValue, ...]:
    """accuracy, precision, recall, f1 and, with ``scores``, auc of one window."""
    common: dict[str, Any] = {
        "positive_class": positive_class,
        "confidence": confidence,
        "seed": seed,
    }
    out = [
        accuracy(labels, predictions, confidence=confidence),
        precision(labels, predictions, **common),
        recall(labels, predictions, **common),
        f1(labels, predictions, **common),
    ]
    if scores is not None:
        out.append(auc(labels, scores, classes=classes, **common))
    return tuple(out)
