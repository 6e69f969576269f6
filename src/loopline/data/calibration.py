"""Drift thresholds calibrated on the reference, per feature and metric (NannyML-style).

A fixed threshold (W1/σ ≥ 0.1, JS ≥ 0.12) means different things for a 300-row window and a
300,000-row one, and for a binary column and a 5,000-level one. :func:`calibrate` asks the
reference itself what a window of ``window_rows`` rows reaches *without* drift:

1. draw ``chunks`` (30) chunks of ``window_rows`` rows from the reference — disjoint, without
   replacement, while the reference has at least ``chunks × window_rows`` rows, else a
   bootstrap (with replacement); :func:`calibrate_from_profile` draws the chunks' counts
   from the reference profile instead (for when the rows are gone; ``loopline.data.resample``);
2. profile each chunk on the reference's edges and measure every distance of
   :func:`~loopline.data.compare` against the reference profile. A chunk is part of the
   reference it is compared with, which makes it look closer than an independent window: the
   distances are scaled by the variance ratio, √((n+m)/(n−m)) for disjoint chunks and
   √(1 + m/n) for a bootstrap (PSI, a squared distance, by the ratio itself). The new-value
   excess is measured against the reference *minus* the chunk (a chunk of the reference never
   has new values), so it is not calibrated from a bootstrap;
3. the threshold is the (1 − ``false_alarm_rate``) quantile of those distances, estimated
   robustly: the larger of the empirical quantile and that of a scaled χ² matched to the mean
   and variance of the squared distances (for the new-value excess, which is about normal:
   mean + z·σ). It is never below the sampling-noise guard at the window's size, nor below
   1e-6 (a constant column: any change is drift).

A threshold the schema pins (any value other than the metric's built-in default) wins: it is
recorded as the threshold (``pinned``), and :func:`~loopline.data.compare` keeps it too. The
monitor calls :func:`calibrate` once per model version and ``compare(..., calibration=c)`` per
window. Thresholds hold for windows of about ``window_rows`` rows.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import polars as pl
import pyarrow as pa

from loopline.data.drift import (
    ALPHA,
    TOP_K,
    categorical_distances,
    numeric_distances,
    pinned,
)
from loopline.data.noise import null_noise
from loopline.data.profile import FeatureProfile, Profile
from loopline.data.profiler import profile_table
from loopline.data.resample import chunk_profile, leave_out_new_value_excess
from loopline.data.schema import Metric, Schema
from loopline.errors import InvalidInputError

FORMAT = "loopline.calibration/v1"
FLOOR = 1e-6
SQUARED = frozenset({Metric.PSI})  # already a squared distance: scaled by the ratio itself

Sampling = Literal["chunks", "bootstrap", "profile", "profile_bootstrap"]


@dataclass(frozen=True, slots=True)
class MetricCalibration:
    """One metric of one feature: the threshold and the chunk distances it came from."""

    threshold: float
    mean: float  # of the chunk distances, as measured (before the variance scaling)
    std: float
    chunks: int  # chunks in which the metric could be measured
    pinned: bool = False  # the schema's threshold, kept as it is


@dataclass(frozen=True, slots=True)
class FeatureCalibration:
    name: str
    metrics: dict[Metric, MetricCalibration]


@dataclass(frozen=True, slots=True)
class Calibration:
    """Thresholds per feature and metric for windows of ``window_rows`` rows."""

    window_rows: int
    false_alarm_rate: float
    chunks: int
    reference_rows: int
    sampling: Sampling
    features: tuple[FeatureCalibration, ...]

    def threshold(self, feature: str, metric: Metric) -> float | None:
        """The calibrated threshold, or None when this feature/metric was not calibrated."""
        for f in self.features:
            if f.name == feature:
                found = f.metrics.get(metric)
                return None if found is None else found.threshold
        return None

    def to_json(self) -> str:
        return json.dumps(
            {
                "format": FORMAT,
                "window_rows": self.window_rows,
                "false_alarm_rate": self.false_alarm_rate,
                "chunks": self.chunks,
                "reference_rows": self.reference_rows,
                "sampling": self.sampling,
                "features": {
                    f.name: {
                        m.value: {
                            "threshold": c.threshold,
                            "mean": c.mean,
                            "std": c.std,
                            "chunks": c.chunks,
                            "pinned": c.pinned,
                        }
                        for m, c in f.metrics.items()
                    }
                    for f in self.features
                },
            },
            allow_nan=False,
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> Calibration:
        """Read :meth:`to_json` output.

        Raises:
            InvalidInputError: not JSON, not a calibration, or a damaged one.
        """
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise InvalidInputError(f"The calibration is not valid JSON: {exc}.") from exc
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            got = data.get("format") if isinstance(data, dict) else type(data).__name__
            raise InvalidInputError(
                f"This is not a {FORMAT} calibration (format {got!r}); write it with to_json()."
            )
        try:
            feats = tuple(
                FeatureCalibration(
                    str(name),
                    {
                        Metric(m): MetricCalibration(
                            float(c["threshold"]),
                            float(c["mean"]),
                            float(c["std"]),
                            int(c["chunks"]),
                            bool(c["pinned"]),
                        )
                        for m, c in body.items()
                    },
                )
                for name, body in data["features"].items()
            )
            return cls(
                window_rows=int(data["window_rows"]),
                false_alarm_rate=float(data["false_alarm_rate"]),
                chunks=int(data["chunks"]),
                reference_rows=int(data["reference_rows"]),
                sampling=data["sampling"],
                features=feats,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InvalidInputError(f"The calibration JSON is damaged: {exc!r}.") from exc


def calibrate(
    reference: pl.DataFrame | pa.Table,
    profile: Profile,
    *,
    window_rows: int,
    false_alarm_rate: float = 0.01,
    chunks: int = 30,
    seed: int = 0,
    schema: Schema | None = None,
) -> Calibration:
    """Thresholds from ``chunks`` chunks of ``window_rows`` reference rows (module docstring).

    ``reference`` holds the reference rows (a Polars frame or an Arrow table); ``profile`` is
    its profile (``profile_table(reference)`` or the training statistics); chunks are
    profiled on its edges.

    Raises:
        InvalidInputError: a bad argument, an empty reference, or a profiled column that the
            reference frame lacks.
    """
    _check_args(window_rows, false_alarm_rate, chunks)
    if isinstance(reference, pa.Table):
        reference = pl.DataFrame(pl.from_arrow(reference))
    if not isinstance(reference, pl.DataFrame) or reference.height == 0:
        raise InvalidInputError(
            "calibrate needs the reference rows as a non-empty Polars DataFrame or Arrow table; "
            "with only the profile, use calibrate_from_profile."
        )
    missing = [n for n in profile.names if n not in reference.columns]
    if missing:
        raise InvalidInputError(
            f"The reference frame lacks the profiled columns {missing}; pass the rows the "
            "profile was made from."
        )
    n, m = reference.height, window_rows
    rng = np.random.default_rng(seed)
    disjoint = chunks * m <= n
    if disjoint:
        rows = rng.permutation(n)[: chunks * m].reshape(chunks, m)
    else:
        rows = rng.integers(0, n, size=(chunks, m))
    frame = reference.select(profile.names)
    samples = [profile_table(frame[r], reference=profile) for r in rows]
    factor = (n + m) / (n - m) if disjoint else 1.0 + m / n
    return _calibration(
        profile,
        samples,
        disjoint,
        factor,
        m,
        false_alarm_rate,
        chunks,
        schema,
        "chunks" if disjoint else "bootstrap",
    )


def calibrate_from_profile(
    profile: Profile,
    window_rows: int,
    *,
    false_alarm_rate: float = 0.01,
    chunks: int = 30,
    seed: int = 0,
    schema: Schema | None = None,
) -> Calibration:
    """The same as :func:`calibrate`, drawing each chunk's counts from ``profile`` alone.

    Chunks are drawn without replacement while ``window_rows`` is below the reference's row
    count, else with replacement (then the new-value excess is not calibrated).

    Raises:
        InvalidInputError: a bad argument or an empty profile.
    """
    _check_args(window_rows, false_alarm_rate, chunks)
    if profile.num_rows == 0:
        raise InvalidInputError("The reference profile has no rows; nothing to calibrate on.")
    rng = np.random.default_rng(seed)
    m = window_rows
    samples = []
    for _ in range(chunks):
        samples.append(chunk_profile(profile, m, rng, replace=m >= profile.num_rows))
    n = profile.num_rows
    without = m < n
    factor = (n + m) / (n - m) if without else 1.0 + m / n
    return _calibration(
        profile,
        samples,
        without,
        factor,
        m,
        false_alarm_rate,
        chunks,
        schema,
        "profile" if without else "profile_bootstrap",
    )


def _check_args(window_rows: int, false_alarm_rate: float, chunks: int) -> None:
    if not isinstance(window_rows, int) or window_rows < 2:
        raise InvalidInputError(
            f"window_rows={window_rows!r} must be an integer of at least 2: the rows of one "
            "monitoring window."
        )
    if not 0.0 < false_alarm_rate < 0.5:
        raise InvalidInputError(
            f"false_alarm_rate={false_alarm_rate!r} must be in (0, 0.5); 0.01 means one "
            "false alarm per feature in 100 windows without drift."
        )
    if not isinstance(chunks, int) or chunks < 5:
        raise InvalidInputError(
            f"chunks={chunks!r} must be an integer of at least 5 (30 is NannyML's usual)."
        )


def _calibration(
    profile: Profile,
    samples: list[Profile],
    leave_out: bool,
    factor: float,
    m: int,
    far: float,
    chunks: int,
    schema: Schema | None,
    sampling: Sampling,
) -> Calibration:
    feats = []
    for ref in profile.features:
        values: dict[Metric, list[float]] = {}
        for sample in samples:
            cur = sample.get(ref.name)
            for metric, value in _distances(ref, cur, leave_out).items():
                if not math.isnan(value):
                    values.setdefault(metric, []).append(value)
        fs = schema.get(ref.name) if schema is not None else None
        pins = {t.metric: t.value for t in (fs.drift if fs is not None else ()) if pinned(t)}
        guard = _guard(ref, m)
        metrics = {}
        for metric, xs in values.items():
            arr = np.asarray(xs, dtype=np.float64)
            mean, std = float(arr.mean()), float(arr.std(ddof=1)) if len(arr) > 1 else 0.0
            if metric in pins:
                metrics[metric] = MetricCalibration(pins[metric], mean, std, len(arr), True)
                continue
            threshold = max(_quantile(metric, arr, factor, far), guard.get(metric, 0.0), FLOOR)
            metrics[metric] = MetricCalibration(threshold, mean, std, len(arr))
        feats.append(FeatureCalibration(ref.name, metrics))
    return Calibration(m, far, chunks, profile.num_rows, sampling, tuple(feats))


def _distances(
    ref: FeatureProfile, cur: FeatureProfile | None, leave_out: bool
) -> dict[Metric, float]:
    if cur is None:
        return {}
    if ref.numeric is not None and cur.numeric is not None:
        if ref.numeric.count == 0 or cur.numeric.count == 0:
            return {}
        return numeric_distances(ref.name, ref.numeric, cur.numeric)[0]
    if ref.categorical is not None and cur.categorical is not None:
        if ref.categorical.count == 0 or cur.categorical.count == 0:
            return {}
        metrics = dict(categorical_distances(ref.categorical, cur.categorical, TOP_K)[0])
        metrics.pop(Metric.NEW_VALUE_EXCESS, None)
        if leave_out and ref.categorical.exact and cur.categorical.exact:
            metrics[Metric.NEW_VALUE_EXCESS] = leave_out_new_value_excess(
                ref.categorical, cur.categorical
            )
        return metrics
    return {}


def _quantile(metric: Metric, d: np.ndarray, factor: float, far: float) -> float:
    """The robust (1 − far) quantile of the distances ``d`` (module docstring, step 3)."""
    from scipy.stats import chi2, norm  # lazy: SciPy takes ~0.5 s to import

    if metric is Metric.NEW_VALUE_EXCESS:
        sd = float(d.std(ddof=1)) if len(d) > 1 else 0.0
        return max(float(d.mean()) + float(norm.isf(far)) * sd, float(np.quantile(d, 1 - far)))
    scaled = d * factor if metric in SQUARED else d * math.sqrt(factor)
    empirical = float(np.quantile(scaled, 1.0 - far))
    squares = scaled if metric in SQUARED else scaled * scaled
    mean, var = float(squares.mean()), float(squares.var(ddof=1)) if len(d) > 1 else 0.0
    if mean <= 0.0 or var <= 0.0:
        fitted = mean
    else:
        fitted = var / (2.0 * mean) * float(chi2.ppf(1.0 - far, 2.0 * mean * mean / var))
    fitted = fitted if metric in SQUARED else math.sqrt(max(fitted, 0.0))
    return max(empirical, fitted)


def _guard(ref: FeatureProfile, m: int) -> dict[Metric, float]:
    """The sampling-noise guard for a window of ``m`` rows distributed like the reference."""
    if ref.numeric is not None and ref.numeric.count > 0:
        p = np.asarray(ref.numeric.bucket_counts, dtype=np.float64)
    elif ref.categorical is not None and ref.categorical.count > 0:
        c = ref.categorical
        p = np.asarray([*c.counts, c.count - sum(c.counts)], dtype=np.float64)
    else:
        return {}
    p = p[p > 0]
    q = np.rint(p * m / p.sum())
    if q.sum() <= 0:
        return {}
    return null_noise(p, q, ALPHA)
