"""validate(profile, schema) on clean and crafted bad data."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from loopline.data import (
    AnomalyKind,
    DType,
    FeatureSchema,
    Schema,
    Severity,
    infer_schema,
    profile_table,
    validate,
)


@pytest.fixture(scope="module")
def taxi_schema(taxi: pa.Table) -> Schema:
    return infer_schema(profile_table(taxi.slice(0, 8000)))


def kinds(anomalies: tuple) -> dict[str | None, AnomalyKind]:  # type: ignore[type-arg]
    return {a.feature: a.kind for a in anomalies}


def test_a_clean_split_of_the_same_data_has_no_anomalies(
    taxi: pa.Table, taxi_schema: Schema
) -> None:
    assert validate(profile_table(taxi.slice(8000)), taxi_schema) == ()


def test_missing_and_new_columns(taxi: pa.Table, taxi_schema: Schema) -> None:
    table = taxi.drop_columns(["company"]).append_column("surge", pa.array([1.0] * len(taxi)))
    found = validate(profile_table(table), taxi_schema)
    assert kinds(found) == {"company": AnomalyKind.MISSING_COLUMN, "surge": AnomalyKind.NEW_COLUMN}
    missing = found[0]
    assert missing.severity is Severity.ERROR
    assert missing.description == "Column 'company' is in the schema but not in the data."


def test_wrong_type_is_a_type_change(taxi: pa.Table, taxi_schema: Schema) -> None:
    bad = taxi.set_column(1, "distance", pa.array(["far"] * len(taxi)))
    (a,) = validate(profile_table(bad), taxi_schema)
    assert (a.feature, a.kind, a.severity) == ("distance", AnomalyKind.TYPE_CHANGE, Severity.ERROR)
    assert a.description == "Column 'distance' is string, but the schema says float."


def test_ints_are_accepted_where_floats_are_expected() -> None:
    schema = Schema((FeatureSchema("x", DType.FLOAT, min_fraction=1.0),))
    assert validate(profile_table(pa.table({"x": [1, 2, 3]})), schema) == ()


def test_all_null_column_is_unexpected_nulls(taxi: pa.Table, taxi_schema: Schema) -> None:
    bad = taxi.set_column(1, "distance", pa.nulls(len(taxi)))
    (a,) = validate(profile_table(bad), taxi_schema)
    assert a.kind is AnomalyKind.UNEXPECTED_NULLS
    assert "is missing all of its 10000 values" in a.description


def test_low_presence_against_a_minimum_fraction() -> None:
    schema = Schema((FeatureSchema("x", DType.FLOAT, min_fraction=0.9),))
    x = pa.array([1.0] * 8 + [None, None])
    (a,) = validate(profile_table(pa.table({"x": x})), schema)
    assert a.kind is AnomalyKind.LOW_PRESENCE
    assert a.description == (
        "Column 'x' is present in 80.00% of rows, below the schema's min_fraction 90.00%."
    )


def test_empty_split_is_one_error() -> None:
    schema = Schema((FeatureSchema("x", DType.FLOAT, min_fraction=1.0),))
    (a,) = validate(profile_table(pa.table({"x": pa.array([], pa.float64())})), schema)
    assert (a.feature, a.kind, a.severity) == (None, AnomalyKind.EMPTY_SPLIT, Severity.ERROR)


def test_unseen_values_are_out_of_domain_or_new_categories() -> None:
    schema = Schema((FeatureSchema("c", DType.STRING, domain=("a", "b"), min_domain_mass=0.99),))
    few = ["a"] * 995 + ["b"] * 4 + ["zz"]
    (a,) = validate(profile_table(pa.table({"c": few})), schema)
    assert (a.kind, a.severity) == (AnomalyKind.NEW_CATEGORY, Severity.WARNING)
    assert "1 value(s) outside its domain: 'zz' (1)" in a.description
    many = ["a"] * 90 + [f"v{i % 7}" for i in range(10)]
    (b,) = validate(profile_table(pa.table({"c": many})), schema)
    assert (b.kind, b.severity) == (AnomalyKind.OUT_OF_DOMAIN, Severity.ERROR)
    assert "7 value(s) outside its domain: 'v0' (2), 'v1' (2), 'v2' (2)" in b.description
    assert "and 2 more; 10.000% of its values" in b.description


def test_numbers_outside_the_range_are_named() -> None:
    schema = Schema((FeatureSchema("age", DType.INT, range_min=0, range_max=120),))
    (a,) = validate(profile_table(pa.table({"age": [3, 40, 130]})), schema)
    assert a.kind is AnomalyKind.OUT_OF_RANGE
    assert (
        a.description == "Column 'age' has values in [3, 130], outside the schema range [0, 120]."
    )


def test_bool_columns_only_hold_true_and_false() -> None:
    schema = Schema((FeatureSchema("flag", DType.BOOL, min_fraction=1.0),))
    assert validate(profile_table(pa.table({"flag": np.array([True, False])})), schema) == ()


def test_several_problems_are_all_reported(breast_cancer: pa.Table) -> None:
    schema = infer_schema(profile_table(breast_cancer), infer_ranges=True)
    x = breast_cancer["mean radius"].to_numpy().copy()
    x[0] = np.nan
    x[1] = 1e6
    bad = breast_cancer.set_column(0, "mean radius", pa.array(x)).drop_columns(["target"])
    found = validate(profile_table(bad), schema)
    assert sorted(a.kind.value for a in found) == [
        "missing_column",
        "out_of_range",
        "unexpected_nulls",
    ]
