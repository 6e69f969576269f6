"""Model performance from labels, each value with a confidence interval. Pure NumPy.

=================  ===========================================  ===================================
function           value                                        interval (``method`` says which)
=================  ===========================================  ===================================
``accuracy``       share of predictions equal to the label      Wilson score interval
``precision``      TP / (TP + FP) of ``positive_class``;        Wilson (binary); bootstrap of the
                   unweighted mean over classes otherwise       confusion matrix (macro)
``recall``         TP / (TP + FN), same two cases               same
``f1``             2·TP / (2·TP + FP + FN), same two cases      bootstrap of the confusion matrix
``auc``            ROC AUC of ``scores`` for ``positive_class``  DeLong (binary); row bootstrap
                   (1-d); one-vs-rest macro AUC (2-d scores)    (multiclass)
``rmse``           √ mean (label − prediction)²                 bootstrap (percentile), normal
``mae``            mean |label − prediction|                    approximation above
``mape``           mean |label − prediction| / |label|, a share  ``BOOTSTRAP_MAX_ROWS`` rows
=================  ===========================================  ===================================

Labels and predictions are 1-d arrays of class labels (strings, integers or booleans; both
of one kind) or, for regression, numbers. Binary metrics need ``positive_class`` unless the
classes are ``{0, 1}`` or ``{False, True}``; with more than two classes and no
``positive_class`` precision, recall and F1 are macro averages over every class seen in the
labels or the predictions (a class never predicted counts 0, as scikit-learn's
``zero_division=0``). A metric that the data cannot define (AUC with one class only, precision
with no positive prediction, MAPE with a zero label) has ``value`` None and a ``reason``; bad
input (empty, mismatched lengths, missing values, mixed label kinds) raises
:class:`~loopline.errors.InvalidInputError`.

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

BOOTSTRAP_MAX_ROWS = 100_000  # above this many rows RMSE/MAE/MAPE use the normal approximation
DEFAULT_RESAMPLES = 1000
_BLOCK_CELLS = 4_000_000  # bootstrap weights are drawn in blocks of at most this many cells

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


# --------------------------------------------------------------------------- input checks


def _z(confidence: float) -> float:
    if not 0.0 < confidence < 1.0:
        raise InvalidInputError(
            f"confidence must be between 0 and 1 (exclusive), e.g. 0.95; got {confidence!r}."
        )
    from scipy.special import ndtri

    return float(ndtri(0.5 + confidence / 2.0))


def _vector(values: npt.ArrayLike, field: str) -> npt.NDArray[Any]:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise InvalidInputError(f"{field} must be a 1-d array; got shape {arr.shape}.")
    if arr.size == 0:
        raise InvalidInputError(f"{field} is empty; a metric needs at least one row.")
    return arr


def _same_length(a: npt.NDArray[Any], b: npt.NDArray[Any], fa: str, fb: str) -> None:
    if len(a) != len(b):
        raise InvalidInputError(
            f"{fa} has {len(a)} rows but {fb} has {len(b)}; pass one of each per row."
        )


def _as_class_array(values: npt.ArrayLike, field: str) -> npt.NDArray[Any]:
    """Class labels as a NumPy array of one kind: strings (``U``) or numbers/booleans."""
    arr = _vector(values, field)
    if arr.dtype.kind == "O":
        items = arr.tolist()
        missing = sum(1 for v in items if v is None)
        if missing:
            raise InvalidInputError(
                f"{field} has {missing} missing value(s) (None); drop unlabelled rows first."
            )
        kinds = {type(v) for v in items}
        if kinds <= {str}:
            arr = arr.astype(str)
        elif kinds <= {int, bool}:
            arr = arr.astype(np.int64)
        elif kinds <= {int, bool, float}:
            arr = arr.astype(np.float64)
        else:
            names = ", ".join(sorted(k.__name__ for k in kinds))
            raise InvalidInputError(
                f"{field} mixes value types ({names}); class labels must be all strings or all "
                "numbers."
            )
    if arr.dtype.kind == "f":
        nan = int(np.sum(np.isnan(arr)))
        if nan:
            raise InvalidInputError(
                f"{field} has {nan} missing value(s) (NaN); drop unlabelled rows first."
            )
    if arr.dtype.kind not in "UbiuSf":
        raise InvalidInputError(
            f"{field} has values of dtype {arr.dtype}; class labels must be strings or numbers."
        )
    return arr


def _encode(
    labels: npt.ArrayLike, predictions: npt.ArrayLike, pred_field: str = "predictions"
) -> tuple[Ints, Ints, npt.NDArray[Any]]:
    """Labels and predictions as codes into their sorted union of classes."""
    y = _as_class_array(labels, "labels")
    p = _as_class_array(predictions, pred_field)
    _same_length(y, p, "labels", pred_field)
    if (y.dtype.kind in "US") != (p.dtype.kind in "US"):
        raise InvalidInputError(
            f"labels are {'strings' if y.dtype.kind in 'US' else 'numbers'} but {pred_field} "
            f"are {'strings' if p.dtype.kind in 'US' else 'numbers'}; compare like with like "
            "(map the model's output to the label values)."
        )
    classes, codes = np.unique(np.concatenate([y, p]), return_inverse=True)
    return codes[: len(y)].astype(np.int64), codes[len(y) :].astype(np.int64), classes


def _positive_index(classes: npt.NDArray[Any], positive_class: Any, field: str) -> int | None:
    """Index of the positive class; None for a macro average over more than two classes."""
    if positive_class is None:
        values = set(classes.tolist())
        if values <= {0, 1} or values <= {False, True}:
            return int(np.flatnonzero(classes == 1)[0]) if 1 in values else -1
        if len(classes) > 2:
            return None
        raise InvalidInputError(
            f"Name the positive class (positive_class=...) for {field}: the classes are "
            f"{classes.tolist()!r}."
        )
    _check_positive_kind(classes, positive_class)
    hit = np.flatnonzero(classes == positive_class)
    if hit.size == 0:
        return -1  # never seen: every row is negative
    return int(hit[0])


def _check_positive_kind(classes: npt.NDArray[Any], positive_class: Any) -> None:
    textual = classes.dtype.kind in "US"
    if textual != isinstance(positive_class, str):
        raise InvalidInputError(
            f"positive_class {positive_class!r} is "
            f"{'a string' if isinstance(positive_class, str) else 'a number'} but the classes are "
            f"{'strings' if textual else 'numbers'} ({classes[:5].tolist()!r}); name it as it "
            "appears in the labels."
        )


def _confusion(y: Ints, p: Ints, k: int) -> Ints:
    return np.bincount(y * k + p, minlength=k * k).reshape(k, k).astype(np.int64)


# --------------------------------------------------------------------------- intervals


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion ``successes / n`` (n ≥ 1)."""
    z = _z(confidence)
    if n <= 0:
        raise InvalidInputError(f"A proportion needs n ≥ 1 observations; got n={n}.")
    phat = successes / n
    z2 = z * z
    denom = 1.0 + z2 / n
    centre = (phat + z2 / (2 * n)) / denom
    half = z / denom * math.sqrt(phat * (1 - phat) / n + z2 / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def _percentile(stats: Floats, confidence: float) -> tuple[float | None, float | None]:
    finite = stats[np.isfinite(stats)]
    if finite.size == 0:
        return None, None
    alpha = 1.0 - confidence
    lo, hi = np.quantile(finite, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


def _bootstrap_label(resamples: int, seed: int, what: str = "rows") -> str:
    return f"bootstrap percentile, {resamples} resamples of the {what}, seed {seed}"


def _check_resamples(resamples: int) -> None:
    if resamples < 10:
        raise InvalidInputError(f"resamples must be at least 10; got {resamples}.")


# --------------------------------------------------------------------------- classification


def accuracy(
    labels: npt.ArrayLike, predictions: npt.ArrayLike, *, confidence: float = 0.95
) -> MetricValue:
    """Share of rows whose prediction equals the label, with a Wilson interval."""
    y, p, _ = _encode(labels, predictions)
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
    _check_resamples(resamples)
    k = cm.shape[0]
    n = int(cm.sum())
    value = float(_macro_stat(name, cm[None, :, :].astype(np.float64))[0])
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(n, cm.ravel() / n, size=resamples).reshape(resamples, k, k)
    lo, hi = _percentile(_macro_stat(name, draws.astype(np.float64)), confidence)
    method = f"macro average over {k} classes; " + _bootstrap_label(
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
    y, p, classes = _encode(labels, predictions)
    pos = _positive_index(classes, positive_class, name)
    if pos is None:
        return _confusion(y, p, len(classes))
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
    _z(confidence)
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
    _z(confidence)
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
    _z(confidence)
    if isinstance(counts, np.ndarray):
        return _macro("f1", counts, confidence, resamples, seed)
    _check_resamples(resamples)
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
    lo, hi = _percentile(stats, confidence)
    value = 2 * tp / (2 * tp + fp + fn)
    method = _bootstrap_label(resamples, seed, "confusion matrix")
    return MetricValue("f1", value, lo, hi, n, method)


def _scores(values: npt.ArrayLike, field: str) -> Floats:
    arr = np.asarray(values)
    if arr.dtype.kind not in "fiub":
        raise InvalidInputError(f"{field} must be numbers; got values of dtype {arr.dtype}.")
    out = arr.astype(np.float64)
    if out.size == 0:
        raise InvalidInputError(f"{field} is empty; a metric needs at least one row.")
    if not np.all(np.isfinite(out)):
        bad = int(np.sum(~np.isfinite(out)))
        raise InvalidInputError(f"{field} has {bad} missing or infinite value(s) (NaN/inf).")
    return out


def auc_score(positive: npt.NDArray[np.bool_], scores: Floats) -> float:
    """ROC AUC (Mann–Whitney, ties count one half) of ``scores`` for the rows ``positive``.

    Both classes must be present; callers check.
    """
    from scipy.stats import rankdata

    ranks = rankdata(scores)
    m = int(np.count_nonzero(positive))
    n = len(scores) - m
    return float((ranks[positive].sum() - m * (m + 1) / 2.0) / (m * n))


def delong_components(
    positive: npt.NDArray[np.bool_], scores: Floats
) -> tuple[float, Floats, Floats]:
    """AUC and its DeLong placement values V10 (per positive) and V01 (per negative).

    Var(AUC) ≈ var(V10)/m + var(V01)/n (Sun & Xu's fast algorithm: midranks, O(N log N)).
    """
    from scipy.stats import rankdata

    pos, neg = scores[positive], scores[~positive]
    m, n = len(pos), len(neg)
    tz = rankdata(np.concatenate([pos, neg]))
    tx, ty = rankdata(pos), rankdata(neg)
    auc = float((tz[:m].sum() - m * (m + 1) / 2.0) / (m * n))
    v10 = (tz[:m] - tx) / n
    v01 = 1.0 - (tz[m:] - ty) / m
    return auc, v10, v01


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
    z = _z(confidence)
    y = _as_class_array(labels, "labels")
    s = np.asarray(scores)
    if s.ndim == 2:
        return _multiclass_auc(y, s, classes, confidence, resamples, seed)
    s = _scores(_vector(s, "scores"), "scores")
    _same_length(y, s, "labels", "scores")
    values = np.unique(y)
    if positive_class is None:
        vals = set(values.tolist())
        if not (vals <= {0, 1} or vals <= {False, True}):
            raise InvalidInputError(
                f"Name the positive class (positive_class=...) for auc: the labels are "
                f"{values.tolist()!r}."
            )
        positive_class = 1
    _check_positive_kind(values, positive_class)
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


def _weighted_aucs(positive: npt.NDArray[np.bool_], scores: Floats, weights: Floats) -> Floats:
    """AUC of each row of ``weights`` (resample multiplicities); ties count one half."""
    order = np.argsort(scores, kind="stable")
    s, pos = scores[order], positive[order]
    w = weights[:, order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    wp = np.add.reduceat(w * pos, starts, axis=1)
    wn = np.add.reduceat(w * ~pos, starts, axis=1)
    below = np.cumsum(wn, axis=1) - wn
    num = np.sum(wp * (below + 0.5 * wn), axis=1)
    den = wp.sum(axis=1) * wn.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(np.where(den > 0, num / den, np.nan), np.float64)


def _multiclass_auc(
    y: npt.NDArray[Any],
    s: npt.NDArray[Any],
    classes: npt.ArrayLike | None,
    confidence: float,
    resamples: int,
    seed: int,
) -> MetricValue:
    _check_resamples(resamples)
    if classes is None:
        raise InvalidInputError(
            "2-d scores need classes=... naming the class of each column (the model's classes_)."
        )
    cls = np.asarray(classes)
    scores = _scores(s, "scores")
    if scores.shape[1] != len(cls):
        raise InvalidInputError(
            f"scores have {scores.shape[1]} columns but classes names {len(cls)}; one per column."
        )
    _same_length(y, scores, "labels", "scores")
    present = [j for j, c in enumerate(cls.tolist()) if np.any(y == c)]
    n = len(y)
    method = "one-vs-rest macro; " + _bootstrap_label(resamples, seed)
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
    block = max(1, _BLOCK_CELLS // n)
    values = np.zeros(1)
    boot = np.zeros(resamples)
    for j in present:
        positive = y == cls[j]
        values += _weighted_aucs(positive, scores[:, j], ones)
    done = 0
    while done < resamples:
        b = min(block, resamples - done)
        w = _bootstrap_weights(rng, b, n)
        acc = np.zeros(b)
        for j in present:
            acc += _weighted_aucs(y == cls[j], scores[:, j], w)
        boot[done : done + b] = acc / len(present)
        done += b
    lo, hi = _percentile(boot, confidence)
    return MetricValue("auc", float(values[0] / len(present)), lo, hi, n, method)


def _bootstrap_weights(rng: np.random.Generator, b: int, n: int) -> Floats:
    """Multiplicities of ``b`` row resamples of ``n`` rows, shape (b, n)."""
    idx = rng.integers(0, n, size=(b, n)) + (np.arange(b) * n)[:, None]
    return np.bincount(idx.ravel(), minlength=b * n).reshape(b, n).astype(np.float64)


# --------------------------------------------------------------------------- regression


def _regression(labels: npt.ArrayLike, predictions: npt.ArrayLike) -> tuple[Floats, Floats]:
    y = _scores(_vector(labels, "labels"), "labels")
    p = _scores(_vector(predictions, "predictions"), "predictions")
    _same_length(y, p, "labels", "predictions")
    return y, p


def _mean_metric(
    name: str,
    losses: Floats,
    confidence: float,
    resamples: int,
    seed: int,
    root: bool = False,
) -> MetricValue:
    """Mean of per-row ``losses`` (√ of it when ``root``) with a bootstrap interval."""
    z = _z(confidence)
    _check_resamples(resamples)
    n = len(losses)
    mean = float(losses.mean())
    value = math.sqrt(mean) if root else mean
    if n > BOOTSTRAP_MAX_ROWS:
        se = float(losses.std(ddof=1)) / math.sqrt(n)
        lo, hi = max(0.0, mean - z * se), mean + z * se
        if root:
            lo, hi = math.sqrt(lo), math.sqrt(hi)
        method = f"normal approximation {confidence:.0%} (n > {BOOTSTRAP_MAX_ROWS:,})"
        return MetricValue(name, value, lo, hi, n, method)
    rng = np.random.default_rng(seed)
    block = max(1, _BLOCK_CELLS // n)
    stats = np.empty(resamples)
    done = 0
    while done < resamples:
        b = min(block, resamples - done)
        stats[done : done + b] = losses[rng.integers(0, n, size=(b, n))].mean(axis=1)
        done += b
    if root:
        stats = np.sqrt(stats)
    lo_b, hi_b = _percentile(stats, confidence)
    return MetricValue(name, value, lo_b, hi_b, n, _bootstrap_label(resamples, seed))


def rmse(
    labels: npt.ArrayLike,
    predictions: npt.ArrayLike,
    *,
    confidence: float = 0.95,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> MetricValue:
    """Root mean squared error, in the label's unit."""
    y, p = _regression(labels, predictions)
    return _mean_metric("rmse", (y - p) ** 2, confidence, resamples, seed, root=True)


def mae(
    labels: npt.ArrayLike,
    predictions: npt.ArrayLike,
    *,
    confidence: float = 0.95,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> MetricValue:
    """Mean absolute error, in the label's unit."""
    y, p = _regression(labels, predictions)
    return _mean_metric("mae", np.abs(y - p), confidence, resamples, seed)


def mape(
    labels: npt.ArrayLike,
    predictions: npt.ArrayLike,
    *,
    confidence: float = 0.95,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> MetricValue:
    """Mean absolute percentage error as a share (0.1 = 10 %); undefined with a zero label."""
    y, p = _regression(labels, predictions)
    zeros = int(np.count_nonzero(y == 0))
    if zeros:
        return MetricValue(
            "mape",
            None,
            None,
            None,
            len(y),
            "bootstrap",
            f"{zeros} of {len(y)} labels are 0, where the percentage error is undefined; "
            "use mae or rmse for this target.",
        )
    return _mean_metric("mape", np.abs((y - p) / y), confidence, resamples, seed)


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


def regression_metrics(
    labels: npt.ArrayLike,
    predictions: npt.ArrayLike,
    *,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[MetricValue, ...]:
    """rmse, mae and mape of one window."""
    return (
        rmse(labels, predictions, confidence=confidence, seed=seed),
        mae(labels, predictions, confidence=confidence, seed=seed),
        mape(labels, predictions, confidence=confidence, seed=seed),
    )
