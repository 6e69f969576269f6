"""merge(a, b) equals the profile of the concatenation."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from loopline.data import Profile, merge, profile_batches, profile_table
from loopline.data.sketch import hll_estimate
from loopline.errors import InvalidInputError


def assert_same(a: Profile, b: Profile) -> None:
    """Equal, with float sums compared to rounding."""
    assert a.names == b.names and a.num_rows == b.num_rows
    for fa, fb in zip(a.features, b.features, strict=True):
        assert (fa.dtype, fa.num_rows, fa.null_count) == (fb.dtype, fb.num_rows, fb.null_count)
        if fa.numeric is not None and fb.numeric is not None:
            x, y = fa.numeric, fb.numeric
            assert (x.count, x.nan_count, x.inf_count, x.zeros) == (
                y.count,
                y.nan_count,
                y.inf_count,
                y.zeros,
            )
            assert (x.min, x.max, x.edges, x.bucket_counts) == (
                y.min,
                y.max,
                y.edges,
                y.bucket_counts,
            )
            assert x.mean == pytest.approx(y.mean, rel=1e-12, abs=1e-12)
            assert x.m2 == pytest.approx(y.m2, rel=1e-9)
            assert x.bucket_sums == pytest.approx(y.bucket_sums, rel=1e-12, abs=1e-9)
        else:
            assert fa.categorical == fb.categorical


@pytest.mark.parametrize("split", [1, 2_500, 5_000, 9_999])
def test_merge_of_two_halves_equals_the_profile_of_the_whole(taxi: pa.Table, split: int) -> None:
    whole = profile_table(taxi)
    a = profile_table(taxi.slice(0, split), reference=whole)
    b = profile_table(taxi.slice(split), reference=whole)
    assert_same(merge(a, b), whole)
    assert_same(merge(b, a), whole)


def test_merge_keeps_nan_and_null_counts(breast_cancer: pa.Table) -> None:
    x = breast_cancer["mean radius"].to_numpy().copy()
    x[::7] = np.nan
    table = pa.table(
        {"x": pa.array(x), "s": pa.array([None if i % 5 else "a" for i in range(len(x))])}
    )
    whole = profile_table(table)
    merged = merge(
        profile_table(table.slice(0, 100), reference=whole),
        profile_table(table.slice(100), reference=whole),
    )
    assert_same(merged, whole)


def test_profile_batches_equals_profile_table_on_the_first_batch_edges(diabetes: pa.Table) -> None:
    batches = diabetes.to_batches(max_chunksize=50)
    streamed = profile_batches(batches)
    whole = profile_table(diabetes, reference=profile_table(pa.Table.from_batches(batches[:1])))
    assert_same(streamed, whole)


def test_merging_with_an_empty_split_changes_nothing(iris: pa.Table) -> None:
    whole = profile_table(iris)
    empty = profile_table(iris.slice(0, 0), reference=whole)
    assert_same(merge(whole, empty), whole)
    assert_same(merge(empty, whole), whole)


def test_refuses_profiles_on_different_edges() -> None:
    a = profile_table(pa.table({"x": np.arange(100.0)}))
    b = profile_table(pa.table({"x": np.arange(100.0) * 2}))
    with pytest.raises(InvalidInputError, match="Column 'x' was bucketed on different histogram"):
        merge(a, b)


def test_refuses_different_columns_or_types() -> None:
    a = profile_table(pa.table({"x": [1.0]}))
    with pytest.raises(InvalidInputError, match="different columns"):
        merge(a, profile_table(pa.table({"y": [1.0]})))
    with pytest.raises(InvalidInputError, match="Column 'x' is float in one profile and string"):
        merge(a, profile_table(pa.table({"x": ["a"]})))


def test_sketch_merge_equals_sketch_of_concatenation_for_distinct_counts() -> None:
    rng = np.random.default_rng(5)
    ids = rng.integers(0, 30_000, 120_000).astype(str)
    table = pa.table({"id": ids})
    opts = {"max_exact": 5_000, "sketch_size": 500}
    whole = profile_table(table, **opts)["id"].categorical
    parts = [profile_table(table.slice(i, 30_000), **opts) for i in range(0, 120_000, 30_000)]
    merged = parts[0]
    for p in parts[1:]:
        merged = merge(merged, p, **opts)
    m = merged["id"].categorical
    assert whole is not None and m is not None and not m.exact
    assert m.hll == whole.hll  # registers merge exactly
    assert m.distinct == hll_estimate(m.hll)  # type: ignore[arg-type]
    assert m.distinct == pytest.approx(len(set(ids.tolist())), rel=0.05)
    assert m.count == 120_000
    truth = dict(zip(*np.unique(ids, return_counts=True), strict=True))
    for v, c in zip(m.values, m.counts, strict=True):
        assert truth[v] - m.count_error <= c <= truth[v]


def test_exact_counts_turn_into_a_sketch_when_the_union_grows_too_large() -> None:
    a = profile_table(pa.table({"s": [f"a{i}" for i in range(60)]}))
    b = profile_table(pa.table({"s": [f"b{i}" for i in range(60)]}))
    assert a["s"].categorical.exact  # type: ignore[union-attr]
    merged = merge(a, b, max_exact=100, sketch_size=50)["s"].categorical
    assert merged is not None and not merged.exact
    assert merged.distinct == pytest.approx(120, abs=3)
    assert merged.count == 120
