"""Confidence-based performance estimation (CBPE): a binary classifier's accuracy, precision,
recall, F1, specificity and ROC AUC in a window whose labels have not arrived yet.

The method is NannyML's (0.13, ``performance_estimation/confidence_based``), in NumPy:

1. **Calibration.** On the reference (scores, predictions, labels of the positive class),
   isotonic regression maps scores to probabilities; it is used only when it lowers the
   expected calibration error (ECE over 10 equal-count bins, pooled over 10 stratified 90/10
   splits, seed fixed) — and never when the reference AUC exceeds 0.999 or has one class.
2. **Expected confusion matrix.** With calibrated probabilities p and predictions ŷ of a
   window: E[TP] = Σ_{ŷ=1} p, E[FP] = Σ_{ŷ=1} (1−p), E[FN] = Σ_{ŷ=0} p, E[TN] = Σ_{ŷ=0} (1−p);
   the metrics follow from it. ROC AUC is the area under the expected ROC curve (rows sorted by
   the raw score, expected true/false positives accumulated).
3. **Sampling error** σ = σ_ref / √(n · share): σ_ref is the standard deviation of one
   observation's contribution on the reference (e.g. 1[y = ŷ] for accuracy) and ``share`` the
   part of the rows the metric is a ratio over (predicted positives for precision, …). The
   band is the estimate ± 3σ, clipped to [0, 1]. For ROC AUC σ_ref comes from DeLong's
   placement values (both classes; NannyML uses the positives' only, a narrower band).
4. **Alert thresholds**: the mean ± 3 standard deviations of the metric *realised* on the
   reference's chunks of ``chunk_size`` rows (the last may be shorter, as NannyML's
   ``SizeBasedChunker``); a side beyond [0, 1] has no threshold (None).

It assumes the calibration holds in production and there is no concept shift (P(y | x) fixed):
a covariate shift changes the estimate, a changed relation between inputs and labels does not.
Binary only. A fitted :class:`CBPE` is a frozen value that round-trips through
:meth:`CBPE.to_json` / :meth:`CBPE.from_json`, so the monitor stores one per model version.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from loopline.errors import InvalidInputError
from loopline.monitor.calibration import Calibration, sorted_choose_calibration
from loopline.monitor.cbpe_reference import (
    METRICS,
    SIGMA_BAND,
    MetricReference,
    chunk_ids,
    confusion_metrics,
    reference_metrics,
)
from loopline.monitor.label_arrays import Scalar, class_membership, probabilities

FORMAT = 1

Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]


# --------------------------------------------------------------------------- metrics


@dataclass(frozen=True, slots=True)
class EstimatedMetric:
    """One estimated metric of one window: ``value`` ± 3 ``sampling_error`` as ``[lower,
    upper]``; ``alert`` when the value leaves the reference band ``[alert_lower,
    alert_upper]``. Field names and order match :class:`~loopline.monitor.MetricValue`."""

    name: str
    value: float | None
    lower: float | None
    upper: float | None
    n: int
    method: str
    reason: str | None = None
    sampling_error: float | None = None
    alert_lower: float | None = None
    alert_upper: float | None = None
    alert: bool = False


@dataclass(frozen=True, slots=True)
class CBPEEstimate:
    """The estimated metrics of rows ``[start, start + n)`` of what was passed."""

    start: int
    n: int
    metrics: tuple[EstimatedMetric, ...]

    def metric(self, name: str) -> EstimatedMetric:
        for m in self.metrics:
            if m.name == name:
                return m
        raise InvalidInputError(f"CBPE estimates no metric {name!r}; it estimates {METRICS}.")

    @property
    def alerts(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.metrics if m.alert)


_UNDEFINED = {
    "precision": "No row of the window is predicted as the positive class.",
    "recall": "The window's expected positives are 0 (every calibrated probability is 0).",
    "f1": "The window has no expected or predicted positive.",
    "specificity": "The window's expected negatives are 0 (every calibrated probability is 1).",
    "auc": "The window's expected ROC curve is degenerate (one class expected only).",
}


def expected_auc(probabilities: Floats) -> float | None:
    """Area under the expected ROC curve: rows by descending score, expected TP/FP summed.

    The calibrated probability is a non-decreasing function of the raw score, so ordering by
    the raw score (as NannyML does) orders the probabilities descending, and rows tied on the
    probability add collinear points: sorting the probabilities gives the same curve.
    """
    value = float(_expected_aucs(np.asarray(probabilities, np.float64)[None, :])[0])
    return value if math.isfinite(value) else None


def _expected_aucs(p: Floats) -> Floats:
    """:func:`expected_auc` of each row of ``p``; NaN where one class is expected only."""
    desc = -np.sort(-p, axis=1)
    zero = np.zeros((p.shape[0], 1))
    tps = np.concatenate([zero, np.cumsum(desc, axis=1)], axis=1)
    fps = np.concatenate([zero, np.cumsum(1.0 - desc, axis=1)], axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        tpr = tps / tps[:, -1:]
        fpr = fps / fps[:, -1:]
        area = np.sum(np.diff(fpr, axis=1) * (tpr[:, 1:] + tpr[:, :-1]) / 2.0, axis=1)
    ok = (tps[:, -1] > 0) & (fps[:, -1] > 0)
    return np.asarray(np.where(ok, area, np.nan), np.float64)


# --------------------------------------------------------------------------- the estimator


@dataclass(frozen=True, slots=True)
class CBPE:
    """A CBPE estimator fitted on one model version's reference; build it with :meth:`fit`."""

    positive_class: Scalar
    chunk_size: int
    calibration: Calibration
    metrics: tuple[MetricReference, ...]
    reference_rows: int
    reference_chunks: int

    @classmethod
    def fit(
        cls,
        reference_scores: npt.ArrayLike,
        reference_predictions: npt.ArrayLike,
        reference_labels: npt.ArrayLike,
        *,
        positive_class: Scalar,
        chunk_size: int,
        seed: int = 42,
    ) -> CBPE:
        """Fit on labelled reference rows (in their time order): the positive class's scores,
        the predicted classes and the true classes. ``chunk_size`` is the window size the
        alert thresholds are calibrated for (at least two reference chunks are needed)."""
        if isinstance(positive_class, np.generic):
            positive_class = positive_class.item()
        if not isinstance(positive_class, str | int | float | bool):
            raise InvalidInputError(
                f"positive_class must be a string or a number; got {positive_class!r}."
            )
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
            raise InvalidInputError(f"chunk_size must be a positive integer; got {chunk_size!r}.")
        scores = probabilities(reference_scores, "reference_scores")
        n = len(scores)
        predicted = class_membership(
            reference_predictions, positive_class, "reference_predictions", n
        )
        positive = class_membership(reference_labels, positive_class, "reference_labels", n)
        if not positive.any():
            raise InvalidInputError(
                f"positive_class {positive_class!r} never appears in reference_labels; name the "
                "class the scores are the probability of."
            )
        if n <= chunk_size:
            raise InvalidInputError(
                f"The reference has {n} rows, not more than chunk_size {chunk_size}: the alert "
                "thresholds need at least two reference chunks. Use a smaller chunk_size or a "
                "larger reference."
            )
        order = np.argsort(scores)
        return cls(
            positive_class=positive_class,
            chunk_size=chunk_size,
            calibration=sorted_choose_calibration(scores[order], positive[order], seed),
            metrics=reference_metrics(scores, predicted, positive, chunk_size, order),
            reference_rows=n,
            reference_chunks=chunk_ids(n, chunk_size)[1],
        )

    def reference(self, name: str) -> MetricReference:
        for m in self.metrics:
            if m.name == name:
                return m
        raise InvalidInputError(f"CBPE estimates no metric {name!r}; it estimates {METRICS}.")

    def estimate(self, scores: npt.ArrayLike, predictions: npt.ArrayLike) -> CBPEEstimate:
        """Estimated metrics of one window (every row passed), with bands and alerts."""
        raw = probabilities(scores, "scores")
        predicted = class_membership(predictions, self.positive_class, "predictions", len(raw))
        p = self.calibration.apply(raw)
        return self._estimate_rows(p[None, :], predicted[None, :], [0])[0]

    def estimate_chunks(
        self, scores: npt.ArrayLike, predictions: npt.ArrayLike
    ) -> tuple[CBPEEstimate, ...]:
        """Estimates per chunk of ``chunk_size`` consecutive rows (the last may be shorter)."""
        raw = probabilities(scores, "scores")
        predicted = class_membership(predictions, self.positive_class, "predictions", len(raw))
        p = self.calibration.apply(raw)
        size = self.chunk_size
        full = len(p) // size * size
        out = self._estimate_rows(
            p[:full].reshape(-1, size),
            predicted[:full].reshape(-1, size),
            list(range(0, full, size)),
        )
        if full < len(p):
            out += self._estimate_rows(p[None, full:], predicted[None, full:], [full])
        return tuple(out)

    def _estimate_rows(self, p: Floats, predicted: Bools, starts: list[int]) -> list[CBPEEstimate]:
        """Estimates of equal-sized chunks, one per row of ``p`` (calibrated) / ``predicted``."""
        n = p.shape[1]
        tp = np.sum(p * predicted, axis=1)
        fp = np.count_nonzero(predicted, axis=1) - tp
        fn = np.sum(p, axis=1) - tp
        tn = n - tp - fp - fn
        values = confusion_metrics(tp, fp, fn, tn)
        values["auc"] = _expected_aucs(p)
        calib = "isotonic-calibrated" if self.calibration.used else "uncalibrated"
        band = f"band ±{SIGMA_BAND:g}σ, σ = σ_ref/√(n·share)"
        out = []
        for row, start in enumerate(starts):
            metrics = []
            for ref in self.metrics:
                value = float(values[ref.name][row])
                what = "expected ROC curve" if ref.name == "auc" else "expected confusion matrix"
                method = f"CBPE: {what} of {calib} scores; {band}"
                if not math.isfinite(value):
                    metrics.append(
                        EstimatedMetric(ref.name, None, None, None, n, method, _UNDEFINED[ref.name])
                    )
                    continue
                se = ref.sampling_error(n)
                lower = upper = None
                if se is not None:
                    lower = max(0.0, value - SIGMA_BAND * se)
                    upper = min(1.0, value + SIGMA_BAND * se)
                alert = (ref.alert_lower is not None and value < ref.alert_lower) or (
                    ref.alert_upper is not None and value > ref.alert_upper
                )
                metrics.append(
                    EstimatedMetric(
                        ref.name,
                        value,
                        lower,
                        upper,
                        n,
                        method,
                        None,
                        se,
                        ref.alert_lower,
                        ref.alert_upper,
                        alert,
                    )
                )
            out.append(CBPEEstimate(start, n, tuple(metrics)))
        return out

    # ----------------------------------------------------------------------- JSON

    def to_json(self) -> str:
        c = self.calibration
        doc = {
            "format": FORMAT,
            "kind": "CBPE",
            "positive_class": self.positive_class,
            "chunk_size": self.chunk_size,
            "reference_rows": self.reference_rows,
            "reference_chunks": self.reference_chunks,
            "calibration": {
                "used": c.used,
                "reason": c.reason,
                "ece_uncalibrated": c.ece_uncalibrated,
                "ece_calibrated": c.ece_calibrated,
                "knots_x": list(c.knots_x),
                "knots_y": list(c.knots_y),
            },
            "metrics": [
                {
                    "name": m.name,
                    "sigma": m.sigma,
                    "share": m.share,
                    "alert_lower": m.alert_lower,
                    "alert_upper": m.alert_upper,
                    "chunk_mean": m.chunk_mean,
                    "chunk_std": m.chunk_std,
                }
                for m in self.metrics
            ],
        }
        return json.dumps(doc, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> CBPE:
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidInputError(f"The CBPE document is not JSON: {exc}.") from exc
        if not isinstance(doc, dict) or doc.get("kind") != "CBPE":
            raise InvalidInputError("The document is not a CBPE estimator (kind must be 'CBPE').")
        if doc.get("format") != FORMAT:
            raise InvalidInputError(
                f"CBPE format {doc.get('format')!r} is not supported (this loopline reads "
                f"{FORMAT}); refit the estimator on the reference."
            )
        try:
            c = doc["calibration"]
            calibration = Calibration(
                bool(c["used"]),
                str(c["reason"]),
                _opt(c["ece_uncalibrated"]),
                _opt(c["ece_calibrated"]),
                tuple(float(v) for v in c["knots_x"]),
                tuple(float(v) for v in c["knots_y"]),
            )
            metrics = tuple(
                MetricReference(
                    str(m["name"]),
                    _opt(m["sigma"]),
                    float(m["share"]),
                    _opt(m["alert_lower"]),
                    _opt(m["alert_upper"]),
                    _opt(m["chunk_mean"]),
                    _opt(m["chunk_std"]),
                )
                for m in doc["metrics"]
            )
            positive_class = doc["positive_class"]
            chunk_size = int(doc["chunk_size"])
            rows, chunks = int(doc["reference_rows"]), int(doc["reference_chunks"])
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInputError(
                f"The CBPE document misses or mistypes field {exc}; refit the estimator."
            ) from exc
        if tuple(m.name for m in metrics) != METRICS:
            raise InvalidInputError(
                f"The CBPE document's metrics are {[m.name for m in metrics]}, expected "
                f"{list(METRICS)}; refit the estimator."
            )
        if calibration.used and len(calibration.knots_x) != len(calibration.knots_y):
            raise InvalidInputError(
                "The CBPE document's calibration knots_x and knots_y differ "
                "in length; refit the estimator."
            )
        return cls(positive_class, chunk_size, calibration, metrics, rows, chunks)


def _opt(value: Any) -> float | None:
    return None if value is None else float(value)
