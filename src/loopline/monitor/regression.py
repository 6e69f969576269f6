"""Regression performance from labels: RMSE, MAE and MAPE, each with a confidence interval.

The interval is a percentile bootstrap of the rows (``resamples`` resamples, fixed ``seed``)
up to ``BOOTSTRAP_MAX_ROWS`` rows; above that the bootstrap of a mean is indistinguishable
from the normal approximation, which is used instead (RMSE through the interval of the mean
squared error) and named in ``method``. MAPE is a share (0.1 = 10 %) and undefined (``value``
None, with a reason) when a label is 0.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from loopline.monitor.intervals import (
    bootstrap_label,
    check_resamples,
    percentile_interval,
    z_value,
)
from loopline.monitor.label_arrays import numbers, same_length, vector
from loopline.monitor.performance import DEFAULT_RESAMPLES, MetricValue

BOOTSTRAP_MAX_ROWS = 20_000  # above this many rows the normal approximation is used
BLOCK_CELLS = 4_000_000  # resampled row indices are drawn in blocks of at most this many

Floats = npt.NDArray[np.float64]


def _regression(labels: npt.ArrayLike, predictions: npt.ArrayLike) -> tuple[Floats, Floats]:
    y = numbers(vector(labels, "labels"), "labels")
    p = numbers(vector(predictions, "predictions"), "predictions")
    same_length(y, p, "labels", "predictions")
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
    z = z_value(confidence)
    check_resamples(resamples)
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
    block = max(1, BLOCK_CELLS // n)
    stats = np.empty(resamples)
    done = 0
    while done < resamples:
        b = min(block, resamples - done)
        stats[done : done + b] = losses[rng.integers(0, n, size=(b, n))].mean(axis=1)
        done += b
    if root:
        stats = np.sqrt(stats)
    lo_b, hi_b = percentile_interval(stats, confidence)
    return MetricValue(name, value, lo_b, hi_b, n, bootstrap_label(resamples, seed))


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
