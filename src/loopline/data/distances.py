"""Distances between two distributions, each with a named unit. Pure NumPy, no profiles.

============================  =========================================================
function                      value and unit
============================  =========================================================
``jensen_shannon_distance``   √JSD with log base 2, in [0, 1] (= scipy ``jensenshannon(
                              p, q, base=2)``). Evidently's natural-log distance is this
                              × √ln2 ≈ 0.833; TFDV's divergence is its square.
``l_infinity``                max |p_i − q_i| of the two normalised distributions, in
                              [0, 1] (TFDV ``infinity_norm``).
``psi``                       Σ (q_i − p_i)·ln(q_i/p_i), in nats, with shares below
                              ``eps`` = 1e-4 raised to ``eps`` so empty bins stay finite.
``wasserstein_pieces``        Wasserstein-1 (earth mover's) distance in the data's own
                              unit between two mixtures of uniform pieces; with point
                              pieces it equals ``scipy.stats.wasserstein_distance``.
``wasserstein_atoms``         Wasserstein-1 between two weighted sets of points (atoms),
                              exact: = ``scipy.stats.wasserstein_distance(u, v, wu, wv)``.
============================  =========================================================
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from loopline.errors import InvalidInputError

PSI_EPS = 1e-4
Vector = npt.ArrayLike


def _pair(p: Vector, q: Vector) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    a = np.asarray(p, dtype=np.float64)
    b = np.asarray(q, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise InvalidInputError(
            f"The two distributions need the same 1-d shape; got {a.shape} and {b.shape}."
        )
    if np.any(a < 0) or np.any(b < 0) or a.sum() <= 0 or b.sum() <= 0:
        raise InvalidInputError(
            "Counts or shares must be non-negative with a positive total on both sides."
        )
    return a / a.sum(), b / b.sum()


def jensen_shannon_distance(p: Vector, q: Vector) -> float:
    """Jensen–Shannon distance, base 2, in [0, 1]; inputs are counts or shares."""
    a, b = _pair(p, q)
    m = (a + b) / 2.0
    with np.errstate(divide="ignore", invalid="ignore"):
        ka = np.where(a > 0, a * np.log2(a / m), 0.0)
        kb = np.where(b > 0, b * np.log2(b / m), 0.0)
    jsd = float(np.sum(ka) + np.sum(kb)) / 2.0
    return float(np.sqrt(min(max(jsd, 0.0), 1.0)))


def l_infinity(p: Vector, q: Vector) -> float:
    """Largest absolute difference between the two normalised distributions, in [0, 1]."""
    a, b = _pair(p, q)
    return float(np.max(np.abs(a - b)))


def psi(p: Vector, q: Vector, eps: float = PSI_EPS) -> float:
    """Population stability index of ``q`` (current) against ``p`` (reference), in nats."""
    a, b = _pair(p, q)
    a = np.clip(a, eps, None)
    b = np.clip(b, eps, None)
    return float(np.sum((b - a) * np.log(b / a)))


def wasserstein_pieces(
    lo_a: Vector, hi_a: Vector, w_a: Vector, lo_b: Vector, hi_b: Vector, w_b: Vector
) -> float:
    """Exact W1 between two mixtures of uniform distributions on ``[lo_i, hi_i]``.

    A piece with ``lo == hi`` is a point mass. Weights are normalised per side. The CDFs are
    piecewise linear between the pieces' end points, so ∫|F_a − F_b| dx is summed exactly
    segment by segment (including segments where the two CDFs cross).
    """
    la, ha, wa = (np.asarray(v, dtype=np.float64) for v in (lo_a, hi_a, w_a))
    lb, hb, wb = (np.asarray(v, dtype=np.float64) for v in (lo_b, hi_b, w_b))
    if not (la.shape == ha.shape == wa.shape) or not (lb.shape == hb.shape == wb.shape):
        raise InvalidInputError("Each side needs lo, hi and weight arrays of one length.")
    if np.any(ha < la) or np.any(hb < lb):
        raise InvalidInputError("Every piece needs lo <= hi.")
    if np.any(wa < 0) or np.any(wb < 0) or wa.sum() <= 0 or wb.sum() <= 0:
        raise InvalidInputError("Weights must be non-negative with a positive total on both sides.")
    wa, wb = wa / wa.sum(), wb / wb.sum()
    knots = np.unique(np.concatenate([la, ha, lb, hb]))
    if len(knots) < 2:
        return 0.0
    right_a, left_a = _cdf(knots, la, ha, wa)
    right_b, left_b = _cdf(knots, lb, hb, wb)
    d0 = (right_a - right_b)[:-1]  # just right of each knot
    d1 = (left_a - left_b)[1:]  # just left of the next knot
    h = np.diff(knots)
    same = d0 * d1 >= 0
    a0, a1 = np.abs(d0), np.abs(d1)
    with np.errstate(divide="ignore", invalid="ignore"):
        crossing = np.where(a0 + a1 > 0, (d0 * d0 + d1 * d1) / (2.0 * (a0 + a1)), 0.0)
    area = np.where(same, (a0 + a1) / 2.0, crossing) * h
    return float(np.sum(area))


def wasserstein_atoms(values_a: Vector, w_a: Vector, values_b: Vector, w_b: Vector) -> float:
    """Exact W1 between two discrete distributions: ∑ |F_a − F_b| × gap over the union."""
    va, wa = np.asarray(values_a, dtype=np.float64), np.asarray(w_a, dtype=np.float64)
    vb, wb = np.asarray(values_b, dtype=np.float64), np.asarray(w_b, dtype=np.float64)
    if va.shape != wa.shape or vb.shape != wb.shape or va.ndim != 1 or vb.ndim != 1:
        raise InvalidInputError("Each side needs value and weight arrays of one length.")
    if np.any(wa < 0) or np.any(wb < 0) or wa.sum() <= 0 or wb.sum() <= 0:
        raise InvalidInputError("Weights must be non-negative with a positive total on both sides.")
    knots = np.unique(np.concatenate([va, vb]))
    if len(knots) < 2:
        return 0.0
    fa = np.cumsum(np.bincount(np.searchsorted(knots, va), weights=wa, minlength=len(knots)))
    fb = np.cumsum(np.bincount(np.searchsorted(knots, vb), weights=wb, minlength=len(knots)))
    diff = np.abs(fa / fa[-1] - fb / fb[-1])[:-1]
    return float(np.sum(diff * np.diff(knots)))


def _cdf(
    x: npt.NDArray[np.float64],
    lo: npt.NDArray[np.float64],
    hi: npt.NDArray[np.float64],
    w: npt.NDArray[np.float64],
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Right- and left-continuous CDF values of the mixture at ``x``."""
    width = hi - lo
    point = width == 0
    safe = np.where(point, 1.0, width)
    ramp = np.clip((x[:, None] - lo[None, :]) / safe[None, :], 0.0, 1.0)
    right = np.where(point[None, :], (x[:, None] >= lo[None, :]).astype(np.float64), ramp)
    left = np.where(point[None, :], (x[:, None] > lo[None, :]).astype(np.float64), ramp)
    return right @ w, left @ w
