"""validate(profile, schema): the anomalies of one split against its schema.

Kinds mirror TFDV's anomaly families (its code in brackets):

=================  ========  =============================================================
kind               severity  when
=================  ========  =============================================================
empty_split        error     the split has no rows [DATASET_LOW_NUM_EXAMPLES]
missing_column     error     a schema feature is absent (warning when min_fraction is 0)
                             [SCHEMA_MISSING_COLUMN]
new_column         warning   a column the schema does not know [SCHEMA_NEW_COLUMN]
type_change        error     the column's type differs from the schema's [*_TYPE_*]
unexpected_nulls   error     min_fraction is 1.0 and values are missing
low_presence       error     present fraction below min_fraction
                             [FEATURE_TYPE_LOW_FRACTION_PRESENT]
out_of_domain      error     values outside the domain exceed 1 − min_domain_mass
                             [ENUM_TYPE_UNEXPECTED_STRING_VALUES]
new_category       warning   values outside the domain, within that tolerance
out_of_range       error     min or max outside [range_min, range_max]
                             [FLOAT_TYPE_SMALL_FLOAT / _BIG_FLOAT, INT_TYPE_SMALL_INT…]
=================  ========  =============================================================

Out-of-domain values are counted exactly while the profile's counts are exact; a sketched
profile (more than ``max_exact`` distinct values) checks its heavy hitters only.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from loopline.data.profile import DType, FeatureProfile, Profile
from loopline.data.schema import FeatureSchema, Schema


class AnomalyKind(enum.StrEnum):
    EMPTY_SPLIT = "empty_split"
    MISSING_COLUMN = "missing_column"
    NEW_COLUMN = "new_column"
    TYPE_CHANGE = "type_change"
    UNEXPECTED_NULLS = "unexpected_nulls"
    LOW_PRESENCE = "low_presence"
    OUT_OF_DOMAIN = "out_of_domain"
    NEW_CATEGORY = "new_category"
    OUT_OF_RANGE = "out_of_range"


class Severity(enum.StrEnum):
    ERROR = "error"  # blocks the pipeline (ExampleValidator gate)
    WARNING = "warning"  # recorded, does not block


@dataclass(frozen=True, slots=True)
class Anomaly:
    """One problem found; ``feature`` is None for split-level anomalies."""

    feature: str | None
    kind: AnomalyKind
    severity: Severity
    description: str


_SHOW = 5  # values named in a description


def validate(profile: Profile, schema: Schema) -> tuple[Anomaly, ...]:
    """Every anomaly of ``profile`` against ``schema``, in schema order, then new columns."""
    if profile.num_rows == 0:
        return (
            Anomaly(
                None,
                AnomalyKind.EMPTY_SPLIT,
                Severity.ERROR,
                "The split has no rows; check the input data span or the split ratio.",
            ),
        )
    out: list[Anomaly] = []
    for fs in schema.features:
        fp = profile.get(fs.name)
        if fp is None:
            sev = Severity.ERROR if fs.min_fraction > 0 else Severity.WARNING
            out.append(
                Anomaly(
                    fs.name,
                    AnomalyKind.MISSING_COLUMN,
                    sev,
                    f"Column {fs.name!r} is in the schema but not in the data.",
                )
            )
            continue
        out.extend(_feature(fp, fs))
    for fp in profile.features:
        if schema.get(fp.name) is None:
            out.append(
                Anomaly(
                    fp.name,
                    AnomalyKind.NEW_COLUMN,
                    Severity.WARNING,
                    f"Column {fp.name!r} ({fp.dtype.value}) is not in the schema; "
                    "add it to the schema or drop it from the data.",
                )
            )
    return tuple(out)


def _feature(fp: FeatureProfile, fs: FeatureSchema) -> list[Anomaly]:
    out: list[Anomaly] = []
    name = fs.name
    has_values = fp.num_rows > fp.null_count
    if has_values and fp.dtype is not fs.dtype and not _widening(fs.dtype, fp.dtype):
        out.append(
            Anomaly(
                name,
                AnomalyKind.TYPE_CHANGE,
                Severity.ERROR,
                f"Column {name!r} is {fp.dtype.value}, but the schema says {fs.dtype.value}.",
            )
        )
        return out  # the value checks below would compare apples with oranges
    frac = fp.present_fraction
    if fs.min_fraction >= 1.0 and fp.missing > 0:
        what = "all of its" if fp.missing == fp.num_rows else f"{fp.missing} of its"
        out.append(
            Anomaly(
                name,
                AnomalyKind.UNEXPECTED_NULLS,
                Severity.ERROR,
                f"Column {name!r} is missing {what} {fp.num_rows} values "
                f"(null or NaN), but the schema requires every value.",
            )
        )
    elif frac < fs.min_fraction:
        out.append(
            Anomaly(
                name,
                AnomalyKind.LOW_PRESENCE,
                Severity.ERROR,
                f"Column {name!r} is present in {frac:.2%} of rows, below the "
                f"schema's min_fraction {fs.min_fraction:.2%}.",
            )
        )
    if fp.categorical is not None and fp.categorical.count > 0:
        domain = fs.domain if fs.dtype is DType.STRING else ("false", "true")
        if fs.dtype is DType.STRING or fs.dtype is DType.BOOL:
            out.extend(_domain(fp, fs, domain))
    num = fp.numeric
    if num is not None and num.count > 0:
        low = fs.range_min is not None and num.min < fs.range_min
        high = fs.range_max is not None and num.max > fs.range_max
        if low or high:
            out.append(
                Anomaly(
                    name,
                    AnomalyKind.OUT_OF_RANGE,
                    Severity.ERROR,
                    f"Column {name!r} has values in [{num.min:g}, {num.max:g}], "
                    f"outside the schema range [{_g(fs.range_min)}, "
                    f"{_g(fs.range_max)}].",
                )
            )
    return out


def _widening(schema: DType, data: DType) -> bool:
    """Ints where floats are expected are fine (a float column without fractions)."""
    return schema is DType.FLOAT and data is DType.INT


def _g(x: float | None) -> str:
    return "-inf" if x is None else f"{x:g}"


def _domain(fp: FeatureProfile, fs: FeatureSchema, domain: tuple[str, ...] | None) -> list[Anomaly]:
    cat = fp.categorical
    if domain is None or cat is None:
        return []
    allowed = set(domain)
    unseen = [(v, c) for v, c in zip(cat.values, cat.counts, strict=True) if v not in allowed]
    if not unseen:
        return []
    mass = sum(c for _, c in unseen) / cat.count
    shown = ", ".join(f"{v!r} ({c})" for v, c in unseen[:_SHOW])
    more = f" and {len(unseen) - _SHOW} more" if len(unseen) > _SHOW else ""
    body = (
        f"Column {fp.name!r} has {len(unseen)} value(s) outside its domain: {shown}{more}; "
        f"{mass:.3%} of its values."
    )
    if mass > 1.0 - fs.min_domain_mass:
        return [
            Anomaly(
                fp.name,
                AnomalyKind.OUT_OF_DOMAIN,
                Severity.ERROR,
                f"{body} That is above the allowed {1.0 - fs.min_domain_mass:.3%}; fix "
                "the data or add the values to the schema domain.",
            )
        ]
    return [
        Anomaly(
            fp.name,
            AnomalyKind.NEW_CATEGORY,
            Severity.WARNING,
            f"{body} That is within the allowed {1.0 - fs.min_domain_mass:.3%}.",
        )
    ]
