"""Blessing: metric thresholds checked per slice, with TFMA's ``metrics_validator`` semantics.

For every slice and every threshold that applies to it (a threshold without ``slices``
applies to all):

* value threshold: pass iff ``lower <= v <= upper`` (missing bounds are ∓inf);
* change threshold (only with a baseline): ``diff = v − v_baseline``,
  ``ratio = diff / v_baseline`` (NaN when ``v_baseline`` is close to 0, and NaN fails every
  comparison, as in TFMA's code — not its docs, which say ``v/v_baseline``);
  ``higher_is_better``: pass iff ``diff >= absolute`` and ``ratio >= relative`` (defaults
  −inf); ``lower_is_better``: ``diff <= absolute`` and ``ratio <= relative`` (defaults +inf);
* a NaN metric fails; a threshold whose metric is absent fails ("metric not found").

Any failure means not blessed. Beyond TFMA: ``on_no_baseline`` (``value_only``: change
thresholds are skipped, TFX's behaviour; ``bless``; ``fail``), ``on_no_thresholds`` (``fail``
or ``bless``; TFX writes an empty blessing), a minimum number of examples per slice (smaller
slices are skipped, and an overall slice that small fails), and a readable reason for every
failed check ("auc on slice company=Flash Cab: 0.71 < baseline 0.74 − 0.01").
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from loopline.errors import InvalidInputError
from loopline.types import Json

OVERALL = "overall"
Direction = Literal["higher_is_better", "lower_is_better"]
NoBaseline = Literal["value_only", "bless", "fail"]
NoThresholds = Literal["fail", "bless"]
_KEYS = {"metric", "lower", "upper", "direction", "absolute", "relative", "slices"}


@dataclass(frozen=True, slots=True)
class MetricThreshold:
    """A value threshold (``lower``/``upper``) and/or a change threshold (``direction`` with
    ``absolute``/``relative``) on one metric, for ``slices`` (None: every slice).

    A slice selector is ``"overall"``, a feature name (every slice of that feature) or one
    slice ``"feature=value"``.
    """

    metric: str
    lower: float | None = None
    upper: float | None = None
    direction: Direction | None = None
    absolute: float | None = None
    relative: float | None = None
    slices: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if (self.absolute is not None or self.relative is not None) and self.direction is None:
            raise InvalidInputError(
                f"Change threshold on {self.metric!r} needs direction 'higher_is_better' or "
                "'lower_is_better'."
            )
        if not self.has_value and not self.has_change:
            raise InvalidInputError(
                f"Threshold on {self.metric!r} sets no bound; give lower/upper (a value "
                "threshold) or direction with absolute/relative (a change threshold)."
            )
        if self.direction not in (None, "higher_is_better", "lower_is_better"):
            raise InvalidInputError(
                f"Threshold on {self.metric!r} has direction {self.direction!r}; use "
                "'higher_is_better' or 'lower_is_better'."
            )

    @property
    def has_value(self) -> bool:
        return self.lower is not None or self.upper is not None

    @property
    def has_change(self) -> bool:
        return self.direction is not None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MetricThreshold:
        """Build from a JSON object; InvalidInputError names unknown keys and bad values."""
        if not isinstance(data, Mapping) or "metric" not in data:
            raise InvalidInputError(f"A threshold must be a mapping with 'metric', not {data!r}.")
        unknown = sorted(set(data) - _KEYS)
        if unknown:
            raise InvalidInputError(
                f"Threshold on {data['metric']!r} has unknown key(s) {unknown}; known: "
                f"{sorted(_KEYS)}."
            )
        nums: dict[str, float | None] = {}
        for k in ("lower", "upper", "absolute", "relative"):
            v = data.get(k)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int | float)):
                raise InvalidInputError(
                    f"Threshold on {data['metric']!r}: {k}={v!r} must be a number."
                )
            nums[k] = None if v is None else float(v)
        slices = data.get("slices")
        if slices is not None and (
            not isinstance(slices, list) or not all(isinstance(s, str) for s in slices)
        ):
            raise InvalidInputError(
                f"Threshold on {data['metric']!r}: slices must be a list of strings."
            )
        return cls(
            metric=str(data["metric"]),
            direction=data.get("direction"),
            slices=tuple(slices) if slices is not None else None,
            **nums,
        )

    def applies_to(self, slice_key: str) -> bool:
        if self.slices is None:
            return True
        feature = slice_key.split("=", 1)[0]
        return slice_key in self.slices or (slice_key != OVERALL and feature in self.slices)


@dataclass(frozen=True, slots=True)
class Check:
    """One threshold applied to one slice."""

    slice: str
    metric: str
    kind: Literal["value", "change", "examples"]
    passed: bool
    value: float | None
    baseline: float | None
    reason: str

    def to_json(self) -> dict[str, Json]:
        return {
            "slice": self.slice,
            "metric": self.metric,
            "kind": self.kind,
            "passed": self.passed,
            "value": _finite(self.value),
            "baseline": _finite(self.baseline),
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome: ``blessed``, every check, and notes on the policies applied."""

    blessed: bool
    checks: tuple[Check, ...]
    notes: tuple[str, ...]

    @property
    def failures(self) -> tuple[str, ...]:
        return tuple(c.reason for c in self.checks if not c.passed)

    def to_json(self) -> dict[str, Json]:
        return {
            "blessed": self.blessed,
            "failures": list(self.failures),
            "checks": [c.to_json() for c in self.checks],
            "notes": list(self.notes),
        }


def _finite(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


def _g(x: float) -> str:
    return f"{x:.4g}"


def _value_check(slice_key: str, t: MetricThreshold, v: float) -> Check:
    lower = -math.inf if t.lower is None else t.lower
    upper = math.inf if t.upper is None else t.upper
    name = f"{t.metric} on slice {slice_key}"
    if math.isnan(v):
        return Check(slice_key, t.metric, "value", False, v, None, f"{name}: value is NaN")
    if v < lower:
        reason = f"{name}: {_g(v)} < lower bound {_g(lower)}"
    elif v > upper:
        reason = f"{name}: {_g(v)} > upper bound {_g(upper)}"
    else:
        return Check(slice_key, t.metric, "value", True, v, None, f"{name}: {_g(v)} within bounds")
    return Check(slice_key, t.metric, "value", False, v, None, reason)


def _change_check(slice_key: str, t: MetricThreshold, v: float, vb: float) -> Check:
    name = f"{t.metric} on slice {slice_key}"
    higher = t.direction == "higher_is_better"
    default = -math.inf if higher else math.inf
    absolute = default if t.absolute is None else t.absolute
    relative = default if t.relative is None else t.relative
    diff = v - vb
    ratio = math.nan if bool(np.isclose(vb, 0.0)) else diff / vb
    if math.isnan(v) or math.isnan(vb):
        return Check(slice_key, t.metric, "change", False, v, vb, f"{name}: value is NaN")
    ok_abs = diff >= absolute if higher else diff <= absolute
    ok_rel = ratio >= relative if higher else ratio <= relative  # NaN fails, as in TFMA
    if ok_abs and ok_rel:
        return Check(
            slice_key, t.metric, "change", True, v, vb, f"{name}: {_g(v)} vs baseline {_g(vb)}"
        )
    cmp = "<" if higher else ">"
    if not ok_abs:
        sign = "−" if absolute < 0 else "+"
        reason = f"{name}: {_g(v)} {cmp} baseline {_g(vb)} {sign} {_g(abs(absolute))}"
    elif math.isnan(ratio):
        reason = (
            f"{name}: relative change undefined because the baseline is {_g(vb)} (≈ 0); "
            "TFMA fails it"
        )
    else:
        bound = vb * (1 + relative)
        sign = "−" if relative < 0 else "+"
        reason = (
            f"{name}: {_g(v)} {cmp} baseline {_g(vb)} × (1 {sign} {_g(abs(relative))}) "
            f"= {_g(bound)}"
        )
    return Check(slice_key, t.metric, "change", False, v, vb, reason)


def validate_metrics(
    candidate: Mapping[str, Mapping[str, float]],
    baseline: Mapping[str, Mapping[str, float]] | None,
    thresholds: Sequence[MetricThreshold],
    *,
    on_no_baseline: NoBaseline = "value_only",
    on_no_thresholds: NoThresholds = "fail",
    min_examples: int = 1,
) -> Verdict:
    """Check ``candidate`` metrics (slice → metric → value) against ``thresholds``."""
    if on_no_baseline not in ("value_only", "bless", "fail"):
        raise InvalidInputError(
            f"on_no_baseline={on_no_baseline!r}; use 'value_only', 'bless' or 'fail'."
        )
    if on_no_thresholds not in ("fail", "bless"):
        raise InvalidInputError(f"on_no_thresholds={on_no_thresholds!r}; use 'fail' or 'bless'.")
    if not thresholds:
        if on_no_thresholds == "bless":
            return Verdict(True, (), ("no thresholds configured; blessed by on_no_thresholds",))
        reason = (
            "no thresholds configured; set thresholds, or on_no_thresholds='bless' to bless "
            "without checks"
        )
        return Verdict(False, (Check(OVERALL, "", "value", False, None, None, reason),), ())
    notes: list[str] = []
    if baseline is None:
        if on_no_baseline == "bless":
            return Verdict(True, (), ("no baseline model; blessed by on_no_baseline='bless'",))
        if on_no_baseline == "fail":
            reason = "no baseline model to compare with, and on_no_baseline is 'fail'"
            return Verdict(False, (Check(OVERALL, "", "change", False, None, None, reason),), ())
        if any(t.has_change for t in thresholds):
            notes.append("no baseline model; change thresholds skipped (on_no_baseline)")
    checks: list[Check] = []
    for slice_key, metrics in candidate.items():
        count = metrics.get("example_count", math.nan)
        applicable = [t for t in thresholds if t.applies_to(slice_key)]
        if not applicable:
            continue
        if not count >= min_examples:
            if slice_key == OVERALL:
                reason = (
                    f"slice {OVERALL} has {count:g} examples, fewer than min_examples "
                    f"{min_examples}; cannot judge the model"
                )
                checks.append(
                    Check(slice_key, "example_count", "examples", False, count, None, reason)
                )
            else:
                notes.append(
                    f"slice {slice_key} skipped: {count:g} examples < min_examples {min_examples}"
                )
            continue
        base = baseline.get(slice_key) if baseline is not None else None
        for t in applicable:
            v = metrics.get(t.metric)
            if t.has_value:
                if v is None:
                    checks.append(_missing(slice_key, t.metric, "value", "metric not found"))
                else:
                    checks.append(_value_check(slice_key, t, v))
            if t.has_change and baseline is not None:
                vb = base.get(t.metric) if base is not None else None
                if v is None:
                    checks.append(_missing(slice_key, t.metric, "change", "metric not found"))
                elif vb is None:
                    checks.append(
                        _missing(slice_key, t.metric, "change", "metric not found for the baseline")
                    )
                else:
                    checks.append(_change_check(slice_key, t, v, vb))
    blessed = all(c.passed for c in checks)
    return Verdict(blessed, tuple(checks), tuple(notes))


def _missing(slice_key: str, metric: str, kind: Literal["value", "change"], what: str) -> Check:
    return Check(
        slice_key, metric, kind, False, None, None, f"{metric} on slice {slice_key}: {what}"
    )
