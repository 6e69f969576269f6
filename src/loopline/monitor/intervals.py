"""Confidence intervals: Wilson for proportions, DeLong for ROC AUC, percentile bootstrap.

Bootstrap weights are drawn in blocks of at most ``BLOCK_CELLS`` cells so memory stays bounded
whatever the window size; every draw comes from a seeded generator, so an interval is
reproducible.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from loopline.errors import InvalidInputError

BLOCK_CELLS = 4_000_000  # bootstrap weights are drawn in blocks of at most this many cells

Floats = npt.NDArray[np.float64]


def z_value(confidence: float) -> float:
    if not 0.0 < confidence < 1.0:
        raise InvalidInputError(
            f"confidence must be between 0 and 1 (exclusive), e.g. 0.95; got {confidence!r}."
        )
    from scipy.special import ndtri

    return float(ndtri(0.5 + confidence / 2.0))


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion ``successes / n`` (n ≥ 1)."""
    z = z_value(confidence)
    if n <= 0:
        raise InvalidInputError(f"A proportion needs n ≥ 1 observations; got n={n}.")
    phat = successes / n
    z2 = z * z
    denom = 1.0 + z2 / n
    centre = (phat + z2 / (2 * n)) / denom
    half = z / denom * math.sqrt(phat * (1 - phat) / n + z2 / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def percentile_interval(stats: Floats, confidence: float) -> tuple[float | None, float | None]:
    finite = stats[np.isfinite(stats)]
    if finite.size == 0:
        return None, None
    alpha = 1.0 - confidence
    lo, hi = np.quantile(finite, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


def bootstrap_label(resamples: int, seed: int, what: str = "rows") -> str:
    return f"bootstrap percentile, {resamples} resamples of the {what}, seed {seed}"


def check_resamples(resamples: int) -> None:
    if resamples < 10:
        raise InvalidInputError(f"resamples must be at least 10; got {resamples}.")


def bootstrap_weights(rng: np.random.Generator, b: int, n: int) -> Floats:
    """Multiplicities of ``b`` row resamples of ``n`` rows, shape (b, n)."""
    idx = rng.integers(0, n, size=(b, n)) + (np.arange(b) * n)[:, None]
    return np.bincount(idx.ravel(), minlength=b * n).reshape(b, n).astype(np.float64)


def auc_score(positive: npt.NDArray[np.bool_], scores: Floats) -> float:
    """ROC AUC (Mann–Whitney, ties count one half) of ``scores`` for the rows ``positive``.

    Both classes must be present; callers check.
    """
    order = np.argsort(scores)
    return float(sorted_aucs(scores[order], positive[order], np.ones((1, len(scores))))[0])


def delong_components(
    positive: npt.NDArray[np.bool_], scores: Floats
) -> tuple[float, Floats, Floats]:
    """AUC and its DeLong placement values V10 (per positive) and V01 (per negative).

    V10 of a positive is the share of negatives scored below it (ties count one half), V01 of
    a negative the share of positives scored above it; AUC = mean V10 and Var(AUC) ≈
    var(V10)/m + var(V01)/n. One sort, O(N log N).
    """
    order = np.argsort(scores)
    return sorted_delong(scores[order], positive[order])


def sorted_delong(xs: Floats, pos: npt.NDArray[np.bool_]) -> tuple[float, Floats, Floats]:
    """:func:`delong_components` of scores already sorted ascending."""
    group = np.cumsum(np.r_[True, xs[1:] != xs[:-1]]) - 1
    wp = np.bincount(group, weights=pos.astype(np.float64))
    wn = np.bincount(group, weights=(~pos).astype(np.float64))
    m, n = float(wp.sum()), float(wn.sum())
    neg_below = np.cumsum(wn) - wn
    pos_above = m - np.cumsum(wp)
    v10 = (neg_below + 0.5 * wn)[group[pos]] / n
    v01 = (pos_above + 0.5 * wp)[group[~pos]] / m
    return float(v10.mean()), v10, v01


def weighted_aucs(positive: npt.NDArray[np.bool_], scores: Floats, weights: Floats) -> Floats:
    """AUC of each row of ``weights`` (resample multiplicities); ties count one half."""
    order = np.argsort(scores)
    return sorted_aucs(scores[order], positive[order], weights[:, order])


def sorted_aucs(xs: Floats, pos: npt.NDArray[np.bool_], weights: Floats) -> Floats:
    """:func:`weighted_aucs` of scores already sorted ascending (weights in the same order);
    NaN for a row of weights that leaves one class empty."""
    starts = np.flatnonzero(np.r_[True, xs[1:] != xs[:-1]])
    wp = np.add.reduceat(weights * pos, starts, axis=1)
    wn = np.add.reduceat(weights * ~pos, starts, axis=1)
    below = np.cumsum(wn, axis=1) - wn
    num = np.sum(wp * (below + 0.5 * wn), axis=1)
    den = wp.sum(axis=1) * wn.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(np.where(den > 0, num / den, np.nan), np.float64)
