"""compare(reference, current): drift (or training/serving skew) between two profiles.

Every distance is computed from the profiles alone, never from raw rows:

* numeric: ``normalized_wasserstein`` is W1 divided by the reference's population std
  (Evidently's ``wasserstein_distance(ref, cur) / max(std(ref), 0.001)``). When both profiles
  keep every distinct value (atoms, :mod:`loopline.data.atoms`) W1 is computed from them and is
  exact (``method="exact_values"``); otherwise from the histograms on the reference's quantile
  edges (``method="histogram"``): each bucket is a uniform piece centred on its exact mean, as
  wide as the bucket allows. ``jensen_shannon`` and ``psi`` use the bucket shares.
* categorical: while both profiles hold exact counts, every category of either side is its own
  cell (``method="all_categories"``; values only one side has included), so the distances equal
  scipy's on the full count vectors. When either side is a sketch, the reference's ``top_k``
  (50) values plus one TAIL cell for everything else (``method="top_k_tail"``).
  ``jensen_shannon``, ``l_infinity`` and ``psi`` use these shares. ``new_value_excess`` is the
  share of current rows whose value the reference never saw, minus the Good–Turing estimate of
  that share under no drift (reference singletons / reference count); it needs exact reference
  counts.

A feature drifts when any of its thresholds (schema ``drift`` or ``skew`` list, else
:data:`~loopline.data.schema.NUMERIC_DEFAULT` / ``CATEGORICAL_DEFAULT``) is reached *and* the
value is beyond sampling noise: "significant AND ≥ δ". JS distance and PSI must exceed their
critical value at α = 0.01 for the two sample sizes and cells (:mod:`loopline.data.noise`: χ²
for well-filled cells, exact per-cell moments for sparse ones), and the
new-value excess 2.33 standard errors. On a 2,000-row window over a 5,000-level column the
guards are what stops false alarms.

With a :class:`~loopline.data.calibration.Calibration` (``calibration=``), each threshold that
the schema does not pin (a value other than the metric's built-in default counts as pinned) is
replaced by the one calibrated on reference chunks of the window's size; such checks say
``calibrated=True``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
import polars as pl

from loopline.data.distances import (
    jensen_shannon_distance,
    l_infinity,
    psi,
    wasserstein_atoms,
    wasserstein_pieces,
)
from loopline.data.noise import null_noise
from loopline.data.profile import CategoricalStats, FeatureProfile, NumericStats, Profile
from loopline.data.schema import (
    CATEGORICAL_DEFAULT,
    DEFAULT_THRESHOLDS,
    NUMERIC_DEFAULT,
    Metric,
    Schema,
    Threshold,
)
from loopline.errors import InvalidInputError

if TYPE_CHECKING:
    from loopline.data.calibration import Calibration

TOP_K = 50
STD_FLOOR = 1e-3  # as Evidently: a constant reference column does not divide by zero
ALPHA = 0.01  # false-alarm rate of the sampling-noise guard

Method = Literal["exact_values", "histogram", "all_categories", "top_k_tail"]


@dataclass(frozen=True, slots=True)
class DriftCheck:
    """One threshold applied.

    ``drifted`` when ``value >= threshold`` *and* ``value > noise`` (when ``noise`` is set):
    ``noise`` is the value that sampling alone exceeds with probability 0.01 at these sample
    sizes, so small windows and long tails do not raise false alarms. ``calibrated`` when
    ``threshold`` came from a :class:`~loopline.data.calibration.Calibration`.
    """

    metric: Metric
    unit: str
    value: float
    threshold: float
    noise: float | None
    drifted: bool
    calibrated: bool = False


@dataclass(frozen=True, slots=True)
class FeatureDrift:
    """The distances of one feature, and the verdict from its thresholds.

    ``metrics`` holds every distance that applies (informational ones too); ``checks`` the ones
    with thresholds. ``reason`` says why a feature could not be compared (then no checks).
    ``method`` says how the distributions were represented: ``exact_values`` (numeric W1 from
    every distinct value), ``histogram`` (numeric W1 from the reference-edge buckets),
    ``all_categories`` (every category its own cell) or ``top_k_tail`` (a sketched side: the
    reference's top-K values plus one TAIL cell). JS and PSI of numeric columns always use the
    buckets.
    """

    feature: str
    kind: Literal["numeric", "categorical"]
    metrics: dict[Metric, float]
    checks: tuple[DriftCheck, ...]
    reason: str | None = None
    method: Method | None = None

    @property
    def drifted(self) -> bool:
        return any(c.drifted for c in self.checks)


@dataclass(frozen=True, slots=True)
class DriftReport:
    """Per-feature drift; ``dataset_drift`` when the drifted share reaches ``drift_share``."""

    mode: Literal["drift", "skew"]
    features: tuple[FeatureDrift, ...]
    drift_share: float = 0.5

    @property
    def drifted_features(self) -> tuple[str, ...]:
        return tuple(f.feature for f in self.features if f.drifted)

    @property
    def share(self) -> float:
        compared = [f for f in self.features if f.reason is None]
        return len([f for f in compared if f.drifted]) / len(compared) if compared else 0.0

    @property
    def dataset_drift(self) -> bool:
        return self.share >= self.drift_share

    def __getitem__(self, feature: str) -> FeatureDrift:
        for f in self.features:
            if f.feature == feature:
                return f
        raise KeyError(feature)


def compare(
    reference: Profile,
    current: Profile,
    schema: Schema | None = None,
    *,
    mode: Literal["drift", "skew"] = "drift",
    top_k: int = TOP_K,
    drift_share: float = 0.5,
    calibration: Calibration | None = None,
) -> DriftReport:
    """Distances and verdicts for every feature of ``reference`` that ``current`` also has.

    ``current`` must be profiled with ``reference=reference`` so numeric columns share edges.
    ``calibration`` (from :func:`~loopline.data.calibrate`) replaces every threshold the
    schema does not pin with the one calibrated for that feature and metric.

    Raises:
        InvalidInputError: a numeric column was bucketed on other edges than the reference's.
    """
    if mode not in ("drift", "skew"):
        raise InvalidInputError(f"mode={mode!r} is not known; use 'drift' or 'skew'.")
    out = []
    for ref in reference.features:
        cur = current.get(ref.name)
        fs = schema.get(ref.name) if schema is not None else None
        thresholds: tuple[Threshold, ...] | None = None
        if fs is not None:
            thresholds = fs.drift if mode == "drift" else fs.skew
        out.append(_feature(ref, cur, thresholds, top_k, calibration))
    return DriftReport(mode=mode, features=tuple(out), drift_share=drift_share)


def _feature(
    ref: FeatureProfile,
    cur: FeatureProfile | None,
    thresholds: tuple[Threshold, ...] | None,
    top_k: int,
    calibration: Calibration | None = None,
) -> FeatureDrift:
    kind: Literal["numeric", "categorical"] = "numeric" if ref.numeric else "categorical"
    reason = None
    metrics: dict[Metric, float] = {}
    noise: dict[Metric, float] = {}
    method: Method | None = None
    if cur is None:
        reason = "the current data has no such column"
    elif (ref.numeric is None) != (cur.numeric is None):
        reason = f"its type changed from {ref.dtype.value} to {cur.dtype.value}"
    elif ref.numeric is not None and cur.numeric is not None:
        if ref.numeric.count == 0 or cur.numeric.count == 0:
            reason = "one side has no finite values"
        else:
            metrics, noise, method = numeric_distances(ref.name, ref.numeric, cur.numeric)
    elif ref.categorical is not None and cur.categorical is not None:
        if ref.categorical.count == 0 or cur.categorical.count == 0:
            reason = "one side has no values"
        else:
            metrics, noise, method = categorical_distances(ref.categorical, cur.categorical, top_k)
    if reason is not None:
        return FeatureDrift(ref.name, kind, {}, (), reason)
    if thresholds is None:
        thresholds = NUMERIC_DEFAULT if kind == "numeric" else CATEGORICAL_DEFAULT
    checks = tuple(
        _check(t, metrics[t.metric], noise.get(t.metric), calibration, ref.name)
        for t in thresholds
        if not math.isnan(metrics.get(t.metric, math.nan))
    )
    return FeatureDrift(ref.name, kind, metrics, checks, method=method)


def pinned(t: Threshold) -> bool:
    """Whether a schema threshold is pinned: its value is not the metric's built-in default."""
    return t.value != DEFAULT_THRESHOLDS[t.metric]


def _check(
    t: Threshold,
    value: float,
    noise: float | None,
    calibration: Calibration | None,
    feature: str,
) -> DriftCheck:
    limit, calibrated = t.value, False
    if calibration is not None and not pinned(t):
        found = calibration.threshold(feature, t.metric)
        if found is not None:
            limit, calibrated = found, True
    drifted = value >= limit and (noise is None or value > noise)
    return DriftCheck(t.metric, t.metric.unit, value, limit, noise, drifted, calibrated)


def numeric_distances(
    name: str, ref: NumericStats, cur: NumericStats
) -> tuple[dict[Metric, float], dict[Metric, float], Method]:
    if ref.edges != cur.edges:
        raise InvalidInputError(
            f"Column {name!r} of the current profile is bucketed on other edges than the "
            "reference's; profile the current data with reference=<reference profile>."
        )
    pr = np.asarray(ref.bucket_counts, dtype=np.float64)
    pc = np.asarray(cur.bucket_counts, dtype=np.float64)
    method: Method = "histogram"
    if ref.atoms and cur.atoms and ref.atom_counts and cur.atom_counts:
        w1 = wasserstein_atoms(ref.atoms, ref.atom_counts, cur.atoms, cur.atom_counts)
        method = "exact_values"
    else:
        w1 = wasserstein_pieces(*_pieces(ref), *_pieces(cur))
    metrics = {
        Metric.NORMALIZED_WASSERSTEIN: w1 / max(ref.std, STD_FLOOR),
        Metric.JENSEN_SHANNON: jensen_shannon_distance(pr, pc),
        Metric.PSI: psi(pr, pc),
    }
    cells = (pr + pc) > 0
    return metrics, null_noise(pr[cells], pc[cells], ALPHA), method


def _pieces(s: NumericStats) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    counts = np.asarray(s.bucket_counts, dtype=np.float64)
    sums = np.asarray(s.bucket_sums, dtype=np.float64)
    keep = counts > 0
    lows = np.asarray((s.min, *s.edges), dtype=np.float64)
    highs = np.asarray((*s.edges, s.max), dtype=np.float64)
    mean = np.clip(sums[keep] / counts[keep], s.min, s.max)
    lo = np.clip(lows[keep], s.min, s.max)
    hi = np.clip(highs[keep], s.min, s.max)
    half = np.clip(np.minimum(mean - lo, hi - mean), 0.0, None)
    return mean - half, mean + half, counts[keep]


def category_cells(
    ref: CategoricalStats, cur: CategoricalStats, top_k: int
) -> tuple[np.ndarray, np.ndarray, Method]:
    """Reference and current counts on common cells (module docstring), empty cells dropped."""
    if ref.exact and cur.exact:
        joined = pl.DataFrame(
            {"value": list(ref.values), "p": list(ref.counts)},
            schema={"value": pl.String, "p": pl.Int64},
        ).join(
            pl.DataFrame(
                {"value": list(cur.values), "q": list(cur.counts)},
                schema={"value": pl.String, "q": pl.Int64},
            ),
            on="value",
            how="full",
            coalesce=True,
        )
        p = joined["p"].fill_null(0).to_numpy().astype(np.float64)
        q = joined["q"].fill_null(0).to_numpy().astype(np.float64)
        method: Method = "all_categories"
    else:
        values, ref_counts, ref_tail = ref.top_k(top_k)
        lookup = dict(zip(cur.values, cur.counts, strict=True))
        cur_counts = [lookup.get(v, 0) for v in values]
        p = np.asarray([*ref_counts, ref_tail], dtype=np.float64)
        q = np.asarray([*cur_counts, cur.count - sum(cur_counts)], dtype=np.float64)
        method = "top_k_tail"
    keep = (p + q) > 0
    return p[keep], q[keep], method


def categorical_distances(
    ref: CategoricalStats, cur: CategoricalStats, top_k: int
) -> tuple[dict[Metric, float], dict[Metric, float], Method]:
    p, q, method = category_cells(ref, cur, top_k)
    metrics = {
        Metric.JENSEN_SHANNON: jensen_shannon_distance(p, q),
        Metric.L_INFINITY: l_infinity(p, q),
        Metric.PSI: psi(p, q),
    }
    noise = null_noise(p, q, ALPHA)
    if ref.exact:
        known = set(ref.values)
        new = sum(c for v, c in zip(cur.values, cur.counts, strict=True) if v not in known)
        rate, expected = new / cur.count, ref.singletons / ref.count
        metrics[Metric.NEW_VALUE_EXCESS] = rate - expected
        se = math.sqrt(rate * (1 - rate) / cur.count + expected * (1 - expected) / ref.count)
        from scipy.stats import norm  # lazy: SciPy takes ~0.5 s to import

        noise[Metric.NEW_VALUE_EXCESS] = float(norm.isf(ALPHA)) * se
    return metrics, noise, method
