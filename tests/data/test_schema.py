"""infer_schema follows TFDV's rules; curated schemas win."""

from __future__ import annotations

import math

import pyarrow as pa
import pytest

from loopline.data import (
    DType,
    FeatureSchema,
    Metric,
    Schema,
    Threshold,
    infer_schema,
    merge_schema,
    profile_table,
)
from loopline.errors import InvalidInputError


def test_infers_types_presence_and_domains_on_taxi(taxi: pa.Table) -> None:
    schema = infer_schema(profile_table(taxi))
    company = schema.get("company")
    assert company is not None and company.dtype is DType.STRING
    assert company.domain == tuple(sorted(set(taxi["company"].to_pylist())))
    assert company.min_fraction == 1.0
    hour = schema.get("hour")
    assert hour is not None and hour.dtype is DType.INT and hour.domain is None
    assert (hour.range_min, hour.range_max) == (None, None)  # TFDV infers no ranges
    assert hour.drift == (Threshold(Metric.NORMALIZED_WASSERSTEIN, 0.1),)
    assert {t.metric for t in company.drift} == {Metric.JENSEN_SHANNON, Metric.NEW_VALUE_EXCESS}


def test_presence_is_required_only_without_missing_values() -> None:
    table = pa.table({"full": [1.0, 2.0], "nan": [1.0, math.nan], "null": pa.array([1, None])})
    schema = infer_schema(profile_table(table))
    assert [f.min_fraction for f in schema.features] == [1.0, 0.0, 0.0]


def test_no_domain_beyond_max_domain_size_and_optional_ranges() -> None:
    table = pa.table({"id": [str(i) for i in range(150)], "x": [float(i) for i in range(150)]})
    schema = infer_schema(profile_table(table), infer_ranges=True)
    assert schema.get("id").domain is None  # type: ignore[union-attr]
    assert infer_schema(profile_table(table), max_domain_size=200).get("id").domain is not None  # type: ignore[union-attr]
    x = schema.get("x")
    assert x is not None and (x.range_min, x.range_max) == (0.0, 149.0)


def test_curated_features_replace_inferred_ones(iris: pa.Table) -> None:
    inferred = infer_schema(profile_table(iris))
    curated = Schema(
        (
            FeatureSchema("species", DType.STRING, min_fraction=1.0, domain=("setosa",)),
            FeatureSchema("extra", DType.FLOAT),
        )
    )
    merged = merge_schema(inferred, curated)
    assert merged.get("species").domain == ("setosa",)  # type: ignore[union-attr]
    assert merged.get("sepal length (cm)") == inferred.get("sepal length (cm)")
    assert [f.name for f in merged.features][-1] == "extra"


def test_feature_schema_rejects_contradictions() -> None:
    with pytest.raises(InvalidInputError, match="Feature 'x' is float; only string features"):
        FeatureSchema("x", DType.FLOAT, domain=("a",))
    with pytest.raises(InvalidInputError, match="Feature 's' is string; only int and float"):
        FeatureSchema("s", DType.STRING, range_min=0.0)
    with pytest.raises(InvalidInputError, match=r"range \[2.0, 1.0\] is empty"):
        FeatureSchema("x", DType.FLOAT, range_min=2.0, range_max=1.0)
    with pytest.raises(InvalidInputError, match="min_fraction 1.5 must be in"):
        FeatureSchema("x", DType.FLOAT, min_fraction=1.5)
    with pytest.raises(InvalidInputError, match="metric 'new_value_excess' does not apply"):
        FeatureSchema("x", DType.FLOAT, drift=(Threshold(Metric.NEW_VALUE_EXCESS, 0.1),))
    with pytest.raises(InvalidInputError, match=r"lists features \['x'\] more than once"):
        Schema((FeatureSchema("x", DType.FLOAT), FeatureSchema("x", DType.INT)))


def test_threshold_units_are_checked_and_evidently_js_is_converted() -> None:
    t = Threshold.of("jensen_shannon", 0.1, unit="js_distance_ln")
    assert t.value == pytest.approx(0.1 / math.sqrt(math.log(2)))
    assert Threshold.of("psi").value == 0.1
    with pytest.raises(InvalidInputError, match="given in unit 'nats', but it is measured"):
        Threshold.of("jensen_shannon", 0.1, unit="nats")
    with pytest.raises(InvalidInputError, match="Unknown drift metric 'kl'"):
        Threshold.of("kl", 0.1)
    with pytest.raises(InvalidInputError, match="must be a number >= 0"):
        Threshold.of("psi", -1)
