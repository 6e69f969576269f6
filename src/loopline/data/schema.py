"""Schema: what a feature must look like, and how far it may drift. Inferred from a profile.

Inference follows TFDV (``tensorflow_data_validation.infer_schema``):

* type from the profile (int, float, string, bool);
* ``min_fraction = 1.0`` only when nothing was missing (nulls, and NaN for floats), else 0.0;
* a string feature with at most ``max_domain_size`` (100) distinct values gets a domain of
  exactly the observed values; bools have the implicit domain {"false", "true"};
* no numeric range unless asked (``infer_ranges=True`` takes the observed [min, max]);
  a curated schema usually sets ranges by hand;
* ``min_domain_mass`` 0.999 (TFDV uses 1.0): unseen values up to 0.1 % of the rows are a
  warning (new category), more is an error (out of domain);
* drift and skew thresholds: :data:`DEFAULT_THRESHOLDS` per kind of feature.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field

from loopline.data.profile import DType, FeatureProfile, Profile
from loopline.errors import InvalidInputError


class Metric(enum.StrEnum):
    """A drift/skew distance; each has one fixed unit (see :mod:`loopline.data.distances`)."""

    JENSEN_SHANNON = "jensen_shannon"
    L_INFINITY = "l_infinity"
    NORMALIZED_WASSERSTEIN = "normalized_wasserstein"
    PSI = "psi"
    NEW_VALUE_EXCESS = "new_value_excess"

    @property
    def unit(self) -> str:
        return _UNITS[self]


_UNITS = {
    Metric.JENSEN_SHANNON: "js_distance_base2",
    Metric.L_INFINITY: "share",
    Metric.NORMALIZED_WASSERSTEIN: "reference_std",
    Metric.PSI: "nats",
    Metric.NEW_VALUE_EXCESS: "share",
}

# Accepted foreign units, converted to the metric's own unit: Evidently's natural-log JS.
_CONVERSIONS = {(Metric.JENSEN_SHANNON, "js_distance_ln"): 1.0 / math.sqrt(math.log(2.0))}

DEFAULT_THRESHOLDS: dict[Metric, float] = {
    Metric.NORMALIZED_WASSERSTEIN: 0.1,  # Evidently's default for numeric columns
    Metric.JENSEN_SHANNON: 0.12,  # = Evidently's 0.1 natural-log distance (0.1 / √ln2)
    Metric.PSI: 0.1,  # Evidently's default; 0.25 is the usual "significant" band
    Metric.L_INFINITY: 0.01,  # TFDV's documented example; fires on a 1 pp move
    Metric.NEW_VALUE_EXCESS: 0.01,  # 1 pp of unseen values above the Good–Turing estimate
}


@dataclass(frozen=True, slots=True)
class Threshold:
    """Alarm when ``metric`` >= ``value`` (in the metric's unit)."""

    metric: Metric
    value: float

    @classmethod
    def of(cls, metric: str, value: float | None = None, unit: str | None = None) -> Threshold:
        """Build from user text, converting a known foreign unit (``js_distance_ln``).

        Raises:
            InvalidInputError: unknown metric, unit that does not fit it, or a negative value.
        """
        try:
            m = Metric(metric)
        except ValueError:
            known = ", ".join(x.value for x in Metric)
            raise InvalidInputError(
                f"Unknown drift metric {metric!r}; use one of: {known}."
            ) from None
        v = DEFAULT_THRESHOLDS[m] if value is None else float(value)
        if unit is not None and unit != m.unit:
            factor = _CONVERSIONS.get((m, unit))
            if factor is None:
                raise InvalidInputError(
                    f"Threshold for {m.value!r} is given in unit {unit!r}, but it is measured "
                    f"in {m.unit!r}; write the value in {m.unit!r} or leave the unit out."
                )
            v *= factor
        if not v >= 0.0:
            raise InvalidInputError(f"Threshold {v!r} for {m.value!r} must be a number >= 0.")
        return cls(m, v)


NUMERIC_DEFAULT = (Threshold(Metric.NORMALIZED_WASSERSTEIN, 0.1),)
CATEGORICAL_DEFAULT = (
    Threshold(Metric.JENSEN_SHANNON, 0.12),
    Threshold(Metric.NEW_VALUE_EXCESS, 0.01),
)
NUMERIC_METRICS = frozenset({Metric.NORMALIZED_WASSERSTEIN, Metric.JENSEN_SHANNON, Metric.PSI})
CATEGORICAL_METRICS = frozenset(
    {Metric.JENSEN_SHANNON, Metric.L_INFINITY, Metric.PSI, Metric.NEW_VALUE_EXCESS}
)


@dataclass(frozen=True, slots=True)
class FeatureSchema:
    """The expectations for one feature."""

    name: str
    dtype: DType
    min_fraction: float = 0.0
    domain: tuple[str, ...] | None = None
    min_domain_mass: float = 0.999
    range_min: float | None = None
    range_max: float | None = None
    drift: tuple[Threshold, ...] = ()
    skew: tuple[Threshold, ...] = ()

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_fraction <= 1.0:
            raise InvalidInputError(
                f"Feature {self.name!r}: min_fraction {self.min_fraction!r} must be in [0, 1]."
            )
        if not 0.0 <= self.min_domain_mass <= 1.0:
            raise InvalidInputError(
                f"Feature {self.name!r}: min_domain_mass {self.min_domain_mass!r} must be in "
                "[0, 1]."
            )
        if self.domain is not None and self.dtype is not DType.STRING:
            raise InvalidInputError(
                f"Feature {self.name!r} is {self.dtype.value}; only string features take a "
                "domain (bools always have {false, true}); use a range for numbers."
            )
        if (self.range_min is not None or self.range_max is not None) and (
            not self.dtype.is_numeric
        ):
            raise InvalidInputError(
                f"Feature {self.name!r} is {self.dtype.value}; only int and float features "
                "take a range; use a domain for strings."
            )
        if (
            self.range_min is not None
            and self.range_max is not None
            and self.range_min > self.range_max
        ):
            raise InvalidInputError(
                f"Feature {self.name!r}: range [{self.range_min}, {self.range_max}] is empty."
            )
        allowed = NUMERIC_METRICS if self.dtype.is_numeric else CATEGORICAL_METRICS
        for t in (*self.drift, *self.skew):
            if t.metric not in allowed:
                raise InvalidInputError(
                    f"Feature {self.name!r} is {self.dtype.value}; metric {t.metric.value!r} "
                    f"does not apply to it. Use one of {sorted(m.value for m in allowed)}."
                )


@dataclass(frozen=True, slots=True)
class Schema:
    """Feature expectations, in column order."""

    features: tuple[FeatureSchema, ...] = field(default=())

    def __post_init__(self) -> None:
        names = [f.name for f in self.features]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise InvalidInputError(f"The schema lists features {dup} more than once.")

    def get(self, name: str) -> FeatureSchema | None:
        for f in self.features:
            if f.name == name:
                return f
        return None


def infer_schema(
    profile: Profile,
    *,
    max_domain_size: int = 100,
    infer_ranges: bool = False,
    min_domain_mass: float = 0.999,
) -> Schema:
    """Infer a schema from a (training) profile with TFDV's rules (module docstring)."""
    return Schema(
        tuple(
            _infer_feature(f, max_domain_size, infer_ranges, min_domain_mass)
            for f in profile.features
        )
    )


def _infer_feature(
    f: FeatureProfile, max_domain_size: int, infer_ranges: bool, min_domain_mass: float
) -> FeatureSchema:
    domain = None
    cat = f.categorical
    if f.dtype is DType.STRING and cat is not None and cat.exact and cat.count > 0:
        if cat.distinct <= max_domain_size:
            domain = tuple(sorted(cat.values))
    lo = hi = None
    if infer_ranges and f.numeric is not None and f.numeric.count > 0:
        lo, hi = f.numeric.min, f.numeric.max
    defaults = NUMERIC_DEFAULT if f.dtype.is_numeric else CATEGORICAL_DEFAULT
    return FeatureSchema(
        name=f.name,
        dtype=f.dtype,
        min_fraction=1.0 if f.missing == 0 and f.num_rows > 0 else 0.0,
        domain=domain,
        min_domain_mass=min_domain_mass,
        range_min=lo,
        range_max=hi,
        drift=defaults,
        skew=defaults,
    )


def merge_schema(inferred: Schema, curated: Schema) -> Schema:
    """``inferred`` with every feature that ``curated`` names replaced by the curated one.

    Features only in ``curated`` are appended. For field-by-field overrides from a YAML file,
    use ``load_schema(path, base=inferred)`` instead.
    """
    by_name = {f.name: f for f in curated.features}
    kept = [by_name.pop(f.name, f) for f in inferred.features]
    return Schema((*kept, *(f for f in curated.features if f.name in by_name)))
