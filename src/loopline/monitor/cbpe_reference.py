"""What a labelled reference tells CBPE about each metric it estimates.

Per metric: σ_ref, the standard deviation of one observation's contribution (NannyML's
components: 1[y = ŷ] for accuracy; Bernoulli of the reference's precision, recall or
specificity over the rows each is a ratio of; F1's corrected indicator; for ROC AUC DeLong's
placement values of both classes), and ``share``, the part of the rows the metric is a ratio
over, so that a window of n rows has sampling error σ_ref / √(n · share). And the alert band:
the mean ± ``SIGMA_BAND`` standard deviations (population) of the metric *realised* on the
reference's chunks of ``chunk_size`` consecutive rows (the last may be shorter); a side beyond
[0, 1] has no threshold.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from loopline.monitor.intervals import sorted_delong

METRICS = ("accuracy", "precision", "recall", "f1", "specificity", "auc")
SIGMA_BAND = 3.0  # the estimate's band and the reference alert band, in standard deviations

Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class MetricReference:
    """What the reference says about one metric: the per-observation σ and share for the
    sampling error, and the 3σ alert band of the metric realised on its chunks."""

    name: str
    sigma: float | None
    share: float
    alert_lower: float | None
    alert_upper: float | None
    chunk_mean: float | None
    chunk_std: float | None

    def sampling_error(self, n: int) -> float | None:
        if self.sigma is None or self.share <= 0 or n <= 0:
            return None
        return self.sigma / math.sqrt(n * self.share)


def _ratio(num: float, den: float) -> float | None:
    return num / den if den > 0 else None


def confusion_metrics(tp: Floats, fp: Floats, fn: Floats, tn: Floats) -> dict[str, Floats]:
    """Metrics of stacks of (expected or realised) confusion counts; NaN where undefined."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return {
            "accuracy": (tp + tn) / (tp + fp + fn + tn),
            "precision": np.where(tp + fp > 0, tp / (tp + fp), np.nan),
            "recall": np.where(tp + fn > 0, tp / (tp + fn), np.nan),
            "f1": np.where(tp + fp + fn > 0, tp / (tp + 0.5 * (fp + fn)), np.nan),
            "specificity": np.where(tn + fp > 0, tn / (tn + fp), np.nan),
        }


def chunk_ids(n: int, chunk_size: int) -> tuple[npt.NDArray[np.int64], int]:
    ids = np.arange(n, dtype=np.int64) // chunk_size
    return ids, int(ids[-1]) + 1


def _chunk_aucs(
    scores: Floats,
    positive: Bools,
    ids: npt.NDArray[np.int64],
    k: int,
    order: npt.NDArray[np.intp],
) -> Floats:
    """ROC AUC of each chunk (NaN with one class), from one sort: rows by chunk, then score."""
    o = order[np.argsort(ids[order], kind="stable")]
    x, pos, c = scores[o], positive[o], ids[o]
    new = np.r_[True, (x[1:] != x[:-1]) | (c[1:] != c[:-1])]
    group = np.cumsum(new) - 1
    chunk = c[new]
    wp = np.bincount(group, weights=pos.astype(np.float64))
    wn = np.bincount(group, weights=(~pos).astype(np.float64))
    negatives = np.bincount(chunk, weights=wn, minlength=k)
    positives = np.bincount(chunk, weights=wp, minlength=k)
    below = np.cumsum(wn) - wn - (np.cumsum(negatives) - negatives)[chunk]
    num = np.bincount(chunk, weights=wp * (below + 0.5 * wn), minlength=k)
    den = positives * negatives
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(np.where(den > 0, num / den, np.nan), np.float64)


def reference_metrics(
    scores: Floats,
    predicted: Bools,
    positive: Bools,
    chunk_size: int,
    order: npt.NDArray[np.intp],
) -> tuple[MetricReference, ...]:
    n = len(scores)
    tp_r, fp_r = predicted & positive, predicted & ~positive
    fn_r, tn_r = ~predicted & positive, ~predicted & ~positive
    TP, FP, FN, TN = (float(np.count_nonzero(a)) for a in (tp_r, fp_r, fn_r, tn_r))

    def bern(q: float | None) -> float | None:
        return None if q is None else math.sqrt(q * (1.0 - q))

    f1_rows = TP + FP + FN
    f1_sigma = None
    if f1_rows > 0:
        corr = f1_rows / (TP + 0.5 * (FP + FN))
        f1_sigma = corr * math.sqrt(TP / f1_rows * (1 - TP / f1_rows))
    pi = (TP + FN) / n
    auc_sigma = None
    if 0 < TP + FN < n:
        _, v10, v01 = sorted_delong(scores[order], positive[order])
        var10 = float(np.var(v10, ddof=1)) if len(v10) > 1 else 0.0
        var01 = float(np.var(v01, ddof=1)) if len(v01) > 1 else 0.0
        auc_sigma = math.sqrt(var10 / pi + var01 / (1 - pi))
    sigma_share: dict[str, tuple[float | None, float]] = {
        "accuracy": (bern((TP + TN) / n), 1.0),
        "precision": (bern(_ratio(TP, TP + FP)), (TP + FP) / n),
        "recall": (bern(_ratio(TP, TP + FN)), pi),
        "f1": (f1_sigma, f1_rows / n),
        "specificity": (bern(_ratio(TN, TN + FP)), (TN + FP) / n),
        "auc": (auc_sigma, 1.0),
    }
    ids, k = chunk_ids(n, chunk_size)

    def per_chunk(mask: Bools) -> Floats:
        return np.bincount(ids, weights=mask.astype(np.float64), minlength=k).astype(np.float64)

    realised = confusion_metrics(per_chunk(tp_r), per_chunk(fp_r), per_chunk(fn_r), per_chunk(tn_r))
    realised["auc"] = _chunk_aucs(scores, positive, ids, k, order)
    out = []
    for name in METRICS:
        values = realised[name]
        sigma, share = sigma_share[name]
        lo = hi = mean = std = None
        if np.isfinite(values).sum() >= 2:
            mean = float(np.nanmean(values))
            std = float(np.nanstd(values))
            lo_v, hi_v = mean - SIGMA_BAND * std, mean + SIGMA_BAND * std
            lo = lo_v if lo_v > 0.0 else None
            hi = hi_v if hi_v < 1.0 else None
        out.append(MetricReference(name, sigma, share, lo, hi, mean, std))
    return tuple(out)
