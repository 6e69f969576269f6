"""The sampling-noise guard: what JS distance and PSI reach by chance between samples of one law.

A drift check fires only when its value also exceeds the value that sampling alone exceeds
with probability ``alpha`` (0.01) at these sample sizes and on these cells.

* Cells with many rows behave as the χ² homogeneity statistic: per cell (one degree of
  freedom) JSD in nats ≈ χ²₁ / (8n) and PSI ≈ χ²₁ / n, with n = 1/(1/n_ref + 1/n_cur) (one
  degree of freedom less in all, for the shares summing to 1).
* Sparse cells (at most :data:`SPARSE` rows on both sides together, e.g. the long tail of a
  20,000-level column compared on every category) do not: a value seen once on one side
  only adds 0.35/N to the JSD where χ² would say 0.25/N, and there are thousands of them. For
  these, the cell's null mean and variance are computed exactly: given the cell's total t,
  the reference's part is Binomial(t, n_ref / (n_ref + n_cur)).
* The sum over cells is matched by its first two moments to a scaled χ² (Satterthwaite),
  whose 1 − ``alpha`` quantile is the guard. With only dense cells this is exactly
  ``scale × chi2.ppf(1 − alpha, cells − 1)``.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from loopline.data.distances import PSI_EPS
from loopline.data.schema import Metric

SPARSE = 64
Floats = npt.NDArray[np.float64]


def sampling_noise(cells: int, n_ref: int, n_cur: int, alpha: float = 0.01) -> dict[Metric, float]:
    """Critical JS distance and PSI for ``cells`` well-filled cells (the χ² approximation)."""
    from scipy.stats import chi2  # lazy: SciPy takes ~0.5 s to import

    crit = float(chi2.ppf(1.0 - alpha, max(cells - 1, 1))) * (1.0 / n_ref + 1.0 / n_cur)
    return {Metric.PSI: crit, Metric.JENSEN_SHANNON: math.sqrt(crit / (8.0 * math.log(2.0)))}


def null_noise(p: Floats, q: Floats, alpha: float = 0.01) -> dict[Metric, float]:
    """Critical JS distance (base 2) and PSI for reference counts ``p`` and current ``q``.

    Both are count vectors over the same cells (cells empty on both sides dropped).
    """
    from scipy.stats import binom  # lazy: SciPy takes ~0.5 s to import

    na, nb = float(p.sum()), float(q.sum())
    t = np.rint(p + q).astype(np.int64)
    share = na / (na + nb)
    sparse = t <= SPARSE
    moments = {Metric.JENSEN_SHANNON: [0.0, 0.0], Metric.PSI: [0.0, 0.0]}
    tt, reps = np.unique(t[sparse], return_counts=True)
    for total, k in zip(tt.tolist(), reps.tolist(), strict=True):
        a = np.arange(total + 1, dtype=np.float64)
        w = binom.pmf(a, total, share)
        for metric, cell in ((Metric.JENSEN_SHANNON, _js_cell), (Metric.PSI, _psi_cell)):
            c = cell(a, total - a, na, nb)
            mean = float(np.sum(w * c))
            moments[metric][0] += k * mean
            moments[metric][1] += k * max(float(np.sum(w * c * c)) - mean * mean, 0.0)
    dense = int(np.count_nonzero(~sparse))
    df = max(dense - 1, 0) if dense < len(t) else max(dense - 1, 1)
    inv = 1.0 / na + 1.0 / nb
    for metric, scale in ((Metric.JENSEN_SHANNON, inv / 8.0), (Metric.PSI, inv)):
        moments[metric][0] += df * scale
        moments[metric][1] += 2.0 * df * scale * scale
    crit = {m: _scaled_chi2_quantile(mean, var, alpha) for m, (mean, var) in moments.items()}
    js = math.sqrt(max(crit[Metric.JENSEN_SHANNON], 0.0) / math.log(2.0))
    return {Metric.JENSEN_SHANNON: min(js, 1.0), Metric.PSI: crit[Metric.PSI]}


def _scaled_chi2_quantile(mean: float, var: float, alpha: float) -> float:
    from scipy.stats import chi2  # lazy: SciPy takes ~0.5 s to import

    if mean <= 0.0 or var <= 0.0:
        return max(mean, 0.0)
    g = var / (2.0 * mean)
    nu = 2.0 * mean * mean / var
    return g * float(chi2.ppf(1.0 - alpha, nu))


def _js_cell(a: Floats, b: Floats, na: float, nb: float) -> Floats:
    """One cell's share of the JS divergence (nats), for counts ``a`` and ``b``."""
    pa, pb = a / na, b / nb
    m = (pa + pb) / 2.0
    with np.errstate(divide="ignore", invalid="ignore"):
        ta = np.where(pa > 0, pa * np.log(pa / m), 0.0)
        tb = np.where(pb > 0, pb * np.log(pb / m), 0.0)
    return np.asarray((ta + tb) / 2.0, dtype=np.float64)


def _psi_cell(a: Floats, b: Floats, na: float, nb: float) -> Floats:
    """One cell's share of the PSI (nats), shares below ``PSI_EPS`` raised to it."""
    pa = np.clip(a / na, PSI_EPS, None)
    pb = np.clip(b / nb, PSI_EPS, None)
    return np.asarray((pb - pa) * np.log(pb / pa), dtype=np.float64)
