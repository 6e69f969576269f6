"""Calibration of a binary classifier's scores into probabilities, as CBPE needs them.

Isotonic regression (the same function as scikit-learn's ``IsotonicRegression(out_of_bounds=
"clip")``, fitted with SciPy's pool-adjacent-violators, so scikit-learn is not needed) is used
only when it lowers the expected calibration error on held-out data: NannyML's
``needs_calibration`` — ECE over ``ECE_BINS`` equal-count bins, pooled over ``ECE_SPLITS``
stratified 90/10 splits with a fixed seed; never when the reference AUC exceeds 0.999 or its
labels hold one class.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from loopline.errors import InvalidInputError
from loopline.monitor.intervals import sorted_aucs

ECE_BINS = 10
ECE_SPLITS = 10
ECE_TEST_SHARE = 0.1

Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]


def isotonic_fit(scores: Floats, positive: Bools) -> tuple[Floats, Floats]:
    """Knots of the increasing isotonic regression of ``positive`` on ``scores``.

    The same function as scikit-learn's ``IsotonicRegression(out_of_bounds="clip")``: equal
    scores are merged (their labels averaged, weighted by count), pool-adjacent-violators on
    the merged points, and only the end points of each constant block are kept; predictions
    interpolate linearly between knots and clip outside them (:func:`isotonic_apply`).
    """
    order = np.argsort(scores)
    return sorted_isotonic_fit(scores[order], positive[order])


def sorted_isotonic_fit(xs: Floats, positive: Bools) -> tuple[Floats, Floats]:
    """:func:`isotonic_fit` of scores already sorted ascending."""
    from scipy.optimize import isotonic_regression

    eps = np.finfo(np.float64).resolution
    new_block = np.r_[True, np.diff(xs) >= eps]
    block = np.cumsum(new_block) - 1
    counts = np.bincount(block).astype(np.float64)
    x_u = xs[new_block]
    y_u = np.bincount(block, weights=positive.astype(np.float64)) / counts
    fitted = np.asarray(isotonic_regression(y_u, weights=counts, increasing=True).x, np.float64)
    keep = np.ones(len(fitted), dtype=bool)
    if len(fitted) > 2:
        keep[1:-1] = (fitted[1:-1] != fitted[:-2]) | (fitted[1:-1] != fitted[2:])
    return x_u[keep], fitted[keep]


def isotonic_apply(knots_x: Floats, knots_y: Floats, scores: Floats) -> Floats:
    return np.asarray(np.interp(scores, knots_x, knots_y), np.float64)


def expected_calibration_error(
    probabilities: Floats, positive: Bools, bins: int = ECE_BINS
) -> float:
    """ECE over ``bins`` equal-count bins of the rows sorted by probability (NannyML's)."""
    n = len(probabilities)
    if n <= 2 * bins:
        bins = n // 2
        if bins < 2:
            raise InvalidInputError(
                f"The expected calibration error needs at least 4 rows; got {n}."
            )
    width = n // bins
    edges = np.arange(0, n + 1, width)
    edges[-1] = n
    order = np.argsort(probabilities)
    p, y = probabilities[order], positive[order].astype(np.float64)
    starts = edges[:-1]
    sizes = np.diff(edges)
    gap = np.abs(np.add.reduceat(p, starts) - np.add.reduceat(y, starts)) / sizes
    return float(np.sum(sizes / n * gap))


@dataclass(frozen=True, slots=True)
class Calibration:
    """The reference's calibration decision and, when ``used``, the isotonic knots."""

    used: bool
    reason: str
    ece_uncalibrated: float | None = None
    ece_calibrated: float | None = None
    knots_x: tuple[float, ...] = ()
    knots_y: tuple[float, ...] = ()

    def apply(self, scores: Floats) -> Floats:
        """Probabilities of the positive class for ``scores``."""
        if not self.used:
            return scores
        return isotonic_apply(np.asarray(self.knots_x), np.asarray(self.knots_y), scores)


def choose_calibration(scores: Floats, positive: Bools, seed: int = 42) -> Calibration:
    """Isotonic calibration if it lowers the ECE on held-out splits of the reference."""
    order = np.argsort(scores)
    return sorted_choose_calibration(scores[order], positive[order], seed)


def sorted_choose_calibration(xs: Floats, positive: Bools, seed: int = 42) -> Calibration:
    """:func:`choose_calibration` of scores already sorted ascending (labels in that order)."""
    m = int(np.count_nonzero(positive))
    if m in (0, len(positive)):
        return Calibration(False, "the reference labels hold one class only")
    if sorted_aucs(xs, positive, np.ones((1, len(xs))))[0] > 0.999:
        return Calibration(False, "the reference ROC AUC exceeds 0.999")
    rng = np.random.default_rng(seed)
    by_class = [np.flatnonzero(positive), np.flatnonzero(~positive)]
    tests, raw, calibrated = [], [], []
    for _ in range(ECE_SPLITS):
        test = np.zeros(len(xs), dtype=bool)
        for idx in by_class:
            take = max(1, round(ECE_TEST_SHARE * len(idx))) if len(idx) > 1 else 0
            test[rng.choice(idx, size=take, replace=False)] = True
        kx, ky = sorted_isotonic_fit(xs[~test], positive[~test])  # a subset stays sorted
        tests.append(positive[test])
        raw.append(xs[test])
        calibrated.append(isotonic_apply(kx, ky, xs[test]))
    y = np.concatenate(tests)
    before = expected_calibration_error(np.concatenate(raw), y)
    after = expected_calibration_error(np.concatenate(calibrated), y)
    if after >= before:
        return Calibration(
            False,
            f"isotonic calibration does not lower the ECE ({before:.4f} → {after:.4f})",
            before,
            after,
        )
    kx, ky = sorted_isotonic_fit(xs, positive)
    return Calibration(
        True,
        f"isotonic calibration lowers the ECE ({before:.4f} → {after:.4f})",
        before,
        after,
        tuple(kx.tolist()),
        tuple(ky.tolist()),
    )
