"""WindowResult: everything one closed window measured, as a frozen, JSON-round-tripping value.

The report, the CLI and the control plane read these; the alert rules consume them. Units are
``loopline.data``'s (JS distance base 2, W1 / reference σ, PSI in nats, new-value excess as a
share). Each feature keeps the histogram needed to plot it: the reference's bucket edges (or
category names) and the reference and current shares on them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from loopline.types import Json, JsonDict


@dataclass(frozen=True, slots=True)
class Check:
    """One threshold applied to one distance: ``drifted`` when ``value >= threshold`` and
    ``value`` is beyond sampling noise; ``calibrated`` when the threshold came from the
    reference's chunks rather than a default or the schema."""

    metric: str
    value: float
    threshold: float
    drifted: bool
    calibrated: bool = False


@dataclass(frozen=True, slots=True)
class Histogram:
    """Shares per bucket, to plot. Numeric: ``edges`` (buckets: ``< edges[0]``, between edges,
    ``>= edges[-1]``). Categorical: ``categories`` (the reference's top values, then
    ``__other__``)."""

    reference: tuple[float, ...]
    current: tuple[float, ...]
    edges: tuple[float, ...] | None = None
    categories: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class FeatureResult:
    """The drift of one feature (or of the prediction) in one window."""

    name: str
    kind: str  # "numeric" | "categorical"
    drifted: bool
    metrics: dict[str, float] = field(default_factory=dict)
    checks: tuple[Check, ...] = ()
    reason: str | None = None  # why it could not be compared
    histogram: Histogram | None = None
    missing_share: float = 0.0

    @property
    def primary(self) -> Check | None:
        """The check that decides first: the drifted one with the largest value/threshold."""
        if not self.checks:
            return None
        return max(self.checks, key=lambda c: (c.drifted, c.value / max(c.threshold, 1e-12)))


@dataclass(frozen=True, slots=True)
class Violation:
    """A schema anomaly of the window (``loopline.data.validate``'s kinds and severities)."""

    feature: str | None
    kind: str
    severity: str
    description: str


@dataclass(frozen=True, slots=True)
class PerformanceValue:
    """A performance metric with its interval: realised from labels, or estimated (CBPE)."""

    name: str
    value: float | None
    lower: float | None
    upper: float | None
    n: int
    method: str
    reason: str | None = None  # why ``value`` is None
    alert_lower: float | None = None  # CBPE: the reference's 3σ band
    alert_upper: float | None = None


@dataclass(frozen=True, slots=True)
class WindowResult:
    """One closed window of one model version."""

    monitor: str
    model: str
    version: str
    index: int  # 0, 1, … per model version
    start_ts: float  # epoch seconds of the first and last row
    end_ts: float
    rows: int
    features: tuple[FeatureResult, ...] = ()
    prediction: FeatureResult | None = None
    violations: tuple[Violation, ...] = ()
    skewed: tuple[str, ...] = ()  # features beyond their schema skew thresholds
    performance: tuple[PerformanceValue, ...] = ()
    estimated: tuple[PerformanceValue, ...] = ()
    labelled_rows: int = 0

    @property
    def drifted_features(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features if f.drifted)

    @property
    def drift_share(self) -> float:
        compared = [f for f in self.features if f.reason is None]
        return len([f for f in compared if f.drifted]) / len(compared) if compared else 0.0

    @property
    def errors(self) -> int:
        """Schema violations of severity error."""
        return sum(1 for v in self.violations if v.severity == "error")

    def feature(self, name: str) -> FeatureResult | None:
        for f in self.features:
            if f.name == name:
                return f
        return None

    def metric(self, name: str, *, estimated: bool = False) -> PerformanceValue | None:
        for p in self.estimated if estimated else self.performance:
            if p.name == name:
                return p
        return None

    def to_dict(self) -> JsonDict:
        return {
            "monitor": self.monitor,
            "model": self.model,
            "version": self.version,
            "index": self.index,
            "start_ts": self.start_ts,
            "end_ts": self.end_ts,
            "rows": self.rows,
            "features": [_feature_doc(f) for f in self.features],
            "prediction": None if self.prediction is None else _feature_doc(self.prediction),
            "violations": [
                {
                    "feature": v.feature,
                    "kind": v.kind,
                    "severity": v.severity,
                    "description": v.description,
                }
                for v in self.violations
            ],
            "skewed": list[Json](self.skewed),
            "performance": [_perf_doc(p) for p in self.performance],
            "estimated": [_perf_doc(p) for p in self.estimated],
            "labelled_rows": self.labelled_rows,
            "drift_share": self.drift_share,
        }

    @classmethod
    def from_dict(cls, d: Any) -> WindowResult:
        pred = d.get("prediction")
        return cls(
            monitor=d["monitor"],
            model=d["model"],
            version=d["version"],
            index=d["index"],
            start_ts=d["start_ts"],
            end_ts=d["end_ts"],
            rows=d["rows"],
            features=tuple(_feature_of(f) for f in d["features"]),
            prediction=None if pred is None else _feature_of(pred),
            violations=tuple(
                Violation(v["feature"], v["kind"], v["severity"], v["description"])
                for v in d["violations"]
            ),
            skewed=tuple(d["skewed"]),
            performance=tuple(_perf_of(p) for p in d["performance"]),
            estimated=tuple(_perf_of(p) for p in d["estimated"]),
            labelled_rows=d["labelled_rows"],
        )


def _num(x: float | None) -> float | None:
    """JSON has no NaN/inf: they travel as None."""
    return None if x is None or not math.isfinite(x) else x


def _back(x: Any) -> float:
    return math.nan if x is None else float(x)


def _feature_doc(f: FeatureResult) -> JsonDict:
    h = f.histogram
    hist: Json = None
    if h is not None:
        hist = {
            "reference": list[Json](h.reference),
            "current": list[Json](h.current),
            "edges": None if h.edges is None else list[Json](h.edges),
            "categories": None if h.categories is None else list[Json](h.categories),
        }
    return {
        "name": f.name,
        "kind": f.kind,
        "drifted": f.drifted,
        "metrics": {k: _num(v) for k, v in f.metrics.items()},
        "checks": [
            {
                "metric": c.metric,
                "value": _num(c.value),
                "threshold": _num(c.threshold),
                "drifted": c.drifted,
                "calibrated": c.calibrated,
            }
            for c in f.checks
        ],
        "reason": f.reason,
        "histogram": hist,
        "missing_share": f.missing_share,
    }


def _feature_of(d: Any) -> FeatureResult:
    h = d.get("histogram")
    hist = None
    if h is not None:
        hist = Histogram(
            tuple(h["reference"]),
            tuple(h["current"]),
            None if h["edges"] is None else tuple(h["edges"]),
            None if h["categories"] is None else tuple(h["categories"]),
        )
    return FeatureResult(
        name=d["name"],
        kind=d["kind"],
        drifted=d["drifted"],
        metrics={k: _back(v) for k, v in d["metrics"].items()},
        checks=tuple(
            Check(
                c["metric"], _back(c["value"]), _back(c["threshold"]), c["drifted"], c["calibrated"]
            )
            for c in d["checks"]
        ),
        reason=d["reason"],
        histogram=hist,
        missing_share=d["missing_share"],
    )


def _perf_doc(p: PerformanceValue) -> JsonDict:
    return {
        "name": p.name,
        "value": _num(p.value),
        "lower": _num(p.lower),
        "upper": _num(p.upper),
        "n": p.n,
        "method": p.method,
        "reason": p.reason,
        "alert_lower": _num(p.alert_lower),
        "alert_upper": _num(p.alert_upper),
    }


def _perf_of(d: Any) -> PerformanceValue:
    return PerformanceValue(
        d["name"],
        d["value"],
        d["lower"],
        d["upper"],
        d["n"],
        d["method"],
        d["reason"],
        d["alert_lower"],
        d["alert_upper"],
    )
