"""profile_table / profile_batches / profile_parquet on real and crafted data."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from loopline.data import DType, profile_batches, profile_parquet, profile_table
from loopline.errors import InvalidInputError


def test_numeric_statistics_match_numpy_on_breast_cancer(breast_cancer: pa.Table) -> None:
    profile = profile_table(breast_cancer)
    assert profile.num_rows == 569
    for name in ("mean radius", "worst area", "mean concavity"):
        x = breast_cancer[name].to_numpy()
        s = profile[name].numeric
        assert s is not None
        assert s.count == len(x)
        assert s.mean == pytest.approx(x.mean(), rel=1e-12)
        assert s.std == pytest.approx(x.std(), rel=1e-9)
        assert (s.min, s.max) == (x.min(), x.max())
        assert s.zeros == int(np.sum(x == 0))
        assert sum(s.bucket_counts) == len(x)
        assert sum(s.bucket_sums) == pytest.approx(x.sum(), rel=1e-12)
    assert profile["mean concavity"].numeric.zeros == 13  # type: ignore[union-attr]


def test_histogram_buckets_hold_the_values_between_their_edges(diabetes: pa.Table) -> None:
    profile = profile_table(diabetes, bins=10)
    x = diabetes["bmi"].to_numpy()
    s = profile["bmi"].numeric
    assert s is not None
    edges = np.asarray(s.edges)
    assert 1 < len(edges) <= 9
    expected = np.bincount(np.searchsorted(edges, x, side="right"), minlength=len(edges) + 1)
    assert list(s.bucket_counts) == expected.tolist()
    # Equal-mass buckets: no bucket holds more than twice its share.
    assert max(s.bucket_counts) <= 2 * len(x) / 10
    assert s.quantile(0.0) == x.min() and s.quantile(1.0) == x.max()
    assert s.quantile(0.5) == pytest.approx(np.median(x), abs=(x.max() - x.min()) / 10)


def test_categorical_statistics_on_iris_species(iris: pa.Table) -> None:
    c = profile_table(iris)["species"].categorical
    assert c is not None and c.exact
    assert c.distinct == 3
    assert dict(zip(c.values, c.counts, strict=True)) == {
        "setosa": 50,
        "versicolor": 50,
        "virginica": 50,
    }
    assert c.values == ("setosa", "versicolor", "virginica")  # ties ordered by value
    assert c.avg_length == pytest.approx((6 + 10 + 9) / 3)


def test_taxi_types_and_top_values_match_pandas(taxi: pa.Table) -> None:
    profile = profile_table(taxi)
    dtypes = {f.name: f.dtype for f in profile.features}
    assert dtypes == {
        "tip": DType.STRING,
        "distance": DType.FLOAT,
        "company": DType.STRING,
        "local": DType.STRING,
        "dow": DType.STRING,
        "month": DType.STRING,
        "hour": DType.INT,
    }
    expected = taxi["company"].to_pandas().value_counts()
    c = profile["company"].categorical
    assert c is not None
    vals, counts, tail = c.top_k(3)
    assert list(counts) == expected.iloc[:3].tolist()
    assert list(vals) == expected.index[:3].tolist()
    assert tail == 10_000 - sum(counts)


def test_nulls_nan_and_infinities_are_counted_apart() -> None:
    table = pa.table(
        {
            "x": pa.array([1.0, None, float("nan"), float("inf"), -float("inf"), 0.0, 3.0]),
            "n": pa.array([1, None, 3, None, 5, 0, 7], pa.int64()),
            "s": pa.array(["a", None, "b", "a", None, "a", "c"]),
        }
    )
    p = profile_table(table)
    x = p["x"]
    assert (x.num_rows, x.null_count, x.missing) == (7, 1, 2)
    assert x.numeric is not None
    assert (x.numeric.nan_count, x.numeric.inf_count, x.numeric.count) == (1, 2, 3)
    assert (x.numeric.zeros, x.numeric.min, x.numeric.max) == (1, 0.0, 3.0)
    assert x.numeric.mean == pytest.approx(4.0 / 3.0)
    assert p["n"].null_count == 2 and p["n"].numeric.count == 5  # type: ignore[union-attr]
    s = p["s"].categorical
    assert s is not None
    assert (p["s"].null_count, s.count, s.values, s.counts) == (2, 5, ("a", "b", "c"), (3, 1, 1))
    assert s.singletons == 2


def test_all_null_column_takes_its_type_from_the_reference() -> None:
    ref = profile_table(pa.table({"x": [1.0, 2.0, 3.0]}))
    nulls = pa.table({"x": pa.nulls(4)})
    alone = profile_table(nulls)
    assert alone["x"].dtype is DType.STRING and alone["x"].null_count == 4
    against = profile_table(nulls, reference=ref)
    assert against["x"].dtype is DType.FLOAT
    assert against["x"].missing == 4 and against["x"].present_fraction == 0.0
    assert against["x"].numeric is not None and against["x"].numeric.count == 0


def test_empty_table_profiles_to_zero_counts() -> None:
    p = profile_table(pa.table({"x": pa.array([], pa.float64()), "s": pa.array([], pa.string())}))
    assert p.num_rows == 0
    assert p["x"].numeric is not None and p["x"].numeric.count == 0
    assert math.isnan(p["x"].numeric.mean) and math.isnan(p["x"].numeric.quantile(0.5))
    assert p["s"].categorical is not None and p["s"].categorical.count == 0


def test_bool_and_dictionary_columns_are_categorical() -> None:
    table = pa.table(
        {
            "flag": pa.array([True, False, True, None]),
            "city": pa.array(["a", "b", "a", "a"]).dictionary_encode(),
        }
    )
    p = profile_table(table)
    assert p["flag"].dtype is DType.BOOL
    assert p["flag"].categorical is not None
    assert p["flag"].categorical.values == ("true", "false")
    assert p["flag"].categorical.counts == (2, 1)
    assert p["city"].dtype is DType.STRING
    assert p["city"].categorical is not None and p["city"].categorical.counts == (3, 1)


def test_polars_frames_profile_like_arrow_tables(taxi: pa.Table) -> None:
    assert profile_table(pl.from_arrow(taxi)) == profile_table(taxi)  # type: ignore[arg-type]


def test_rejects_a_column_type_it_cannot_profile() -> None:
    table = pa.table({"when": pa.array([1, 2], pa.timestamp("s"))})
    with pytest.raises(InvalidInputError, match=r"Column 'when' has Arrow type timestamp\[s\]"):
        profile_table(table)


def test_rejects_something_that_is_not_a_table() -> None:
    with pytest.raises(InvalidInputError, match="Cannot profile a dict"):
        profile_table({"x": [1]})  # type: ignore[arg-type]


def test_parquet_streaming_equals_profiling_the_whole_table(taxi: pa.Table, tmp_path: Path) -> None:
    path = tmp_path / "taxi.parquet"
    pq.write_table(taxi, path, row_group_size=1000)
    ref = profile_table(taxi)
    streamed = profile_parquet(path, reference=ref, batch_rows=1500)
    assert streamed.num_rows == ref.num_rows
    for a, b in zip(streamed.features, ref.features, strict=True):
        if a.numeric is not None and b.numeric is not None:
            assert a.numeric.bucket_counts == b.numeric.bucket_counts
            assert a.numeric.mean == pytest.approx(b.numeric.mean, rel=1e-12)
        else:
            assert a.categorical == b.categorical


def test_profile_parquet_names_a_missing_or_broken_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="There is no Parquet file at"):
        profile_parquet(tmp_path / "nope.parquet")
    bad = tmp_path / "bad.parquet"
    bad.write_text("not parquet")
    with pytest.raises(InvalidInputError, match="is not a readable Parquet file"):
        profile_parquet(bad)


def test_profile_batches_rejects_no_batches_and_changing_columns() -> None:
    with pytest.raises(InvalidInputError, match="There were no batches to profile"):
        profile_batches([])
    a = pa.record_batch({"x": [1.0, 2.0]})
    b = pa.record_batch({"y": [1.0, 2.0]})
    with pytest.raises(InvalidInputError, match=r"A batch has columns \['y'\]"):
        profile_batches([a, b])


def test_high_cardinality_switches_to_sketches_with_bounded_error() -> None:
    rng = np.random.default_rng(3)
    ids = rng.zipf(1.3, 200_000) % 50_000
    table = pa.table({"id": ids.astype(str)})
    exact = profile_table(table)["id"].categorical
    sketched = profile_table(table, max_exact=1_000, sketch_size=200)["id"].categorical
    assert exact is not None and sketched is not None
    assert exact.exact and not sketched.exact
    assert sketched.distinct == pytest.approx(exact.distinct, rel=0.05)
    assert len(sketched.values) <= 200
    truth = dict(zip(exact.values, exact.counts, strict=True))
    for v, c in zip(sketched.values, sketched.counts, strict=True):
        assert truth[v] - sketched.count_error <= c <= truth[v]
    assert sketched.count_error <= 200_000 / 201
    assert sketched.values[:5] == exact.values[:5]


def test_rejects_too_few_bins() -> None:
    with pytest.raises(InvalidInputError, match="bins=1 is too small"):
        profile_table(pa.table({"x": [1.0]}), bins=1)


def test_splits_are_counted_on_the_reference_split_edges(taxi: pa.Table) -> None:
    from loopline.data import profile_splits

    splits = {"train": taxi.slice(0, 7000), "eval": taxi.slice(7000)}
    profiles = profile_splits(splits)
    assert profiles["eval"].edges() == profiles["train"].edges()
    assert profiles["eval"].num_rows == 3000
    with pytest.raises(InvalidInputError, match="Reference split 'training' is not among"):
        profile_splits(splits, reference_split="training")


@pytest.mark.parametrize("bins", [20, 100])
def test_histogram_of_many_blocks_equals_searchsorted(bins: int) -> None:
    x = np.random.default_rng(9).standard_t(3, 100_003)
    s = profile_table(pa.table({"x": x}), bins=bins)["x"].numeric
    assert s is not None and len(s.edges) == bins - 1
    idx = np.searchsorted(np.asarray(s.edges), x, side="right")
    assert list(s.bucket_counts) == np.bincount(idx, minlength=bins).tolist()
    sums = np.bincount(idx, weights=x, minlength=bins)
    assert s.bucket_sums == pytest.approx(sums.tolist(), rel=1e-9, abs=1e-6)
