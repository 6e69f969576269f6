"""ExampleGen streams a span: the same rows, in the same order, as the in-memory path."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest

from loopline.components import ExampleGen, split_table
from loopline.components.example_gen import stream_splits
from loopline.components.tables import read_files
from loopline.errors import InvalidInputError
from loopline.metadata.entities import ArtifactState
from loopline.pipeline import RunStatus
from tests.components.conftest import Harness, write_csv

SPLITS = {"train": 2, "eval": 1}


@pytest.fixture
def mixed_span(tmp_path: Path, taxi_csv: Path) -> tuple[Path, list[str]]:
    """The taxi example data as four files of four formats, one with ``hour`` as double."""
    root = tmp_path / "span"
    root.mkdir()
    shutil.copy(taxi_csv, root / "a.csv")
    with taxi_csv.open("rb") as src, gzip.open(root / "b.csv.gz", "wb") as dst:
        dst.write(src.read())
    table = pacsv.read_csv(taxi_csv)
    hour = table.schema.get_field_index("hour")
    doubled = table.set_column(hour, "hour", table.column("hour").cast(pa.float64()))
    pq.write_table(doubled.slice(0, 3000), root / "c.parquet", row_group_size=700)
    feather.write_feather(table.slice(3000), str(root / "d.arrow"), chunksize=500)
    return root, ["a.csv", "b.csv.gz", "c.parquet", "d.arrow"]


def in_memory(root: Path, files: list[str], partition: str | None = None) -> dict[str, pa.Table]:
    return split_table(read_files(root, files), SPLITS, partition)


@pytest.mark.parametrize("partition", [None, "company"])
def test_streaming_writes_the_rows_of_the_in_memory_path_in_order(
    mixed_span: tuple[Path, list[str]], tmp_path: Path, partition: str | None
) -> None:
    root, files = mixed_span
    out = tmp_path / "out"
    out.mkdir()
    written = stream_splits(root, files, out, SPLITS, partition, batch_rows=1000)
    expected = in_memory(root, files, partition)
    for split, table in expected.items():
        got = pq.read_table(out / f"{split}.parquet")
        assert got.schema == table.schema  # hour promoted to double, as concat_tables does
        assert got.equals(table)
        assert written.rows[split] == table.num_rows
    assert sum(written.rows.values()) == 3 * 6822  # a.csv, b.csv.gz, and c + d split it
    # bounded memory: rows went out a row group of at most batch_rows at a time
    assert written.row_groups["train"] > 1 and written.row_groups["eval"] > 1
    meta = pq.ParquetFile(out / "train.parquet").metadata
    assert meta.num_row_groups == written.row_groups["train"]
    assert max(meta.row_group(i).num_rows for i in range(meta.num_row_groups)) <= 1000


def test_a_span_with_only_headers_writes_empty_splits_with_the_columns(tmp_path: Path) -> None:
    root = tmp_path / "span"
    root.mkdir()
    (root / "empty.csv").write_text("a,b\n")
    out = tmp_path / "out"
    out.mkdir()
    written = stream_splits(root, ["empty.csv"], out, SPLITS)
    assert written.rows == {"train": 0, "eval": 0}
    for split, table in in_memory(root, ["empty.csv"]).items():
        assert pq.read_table(out / f"{split}.parquet").equals(table)


def test_a_column_of_another_type_in_a_later_file_fails_naming_the_file_and_column(
    tmp_path: Path,
) -> None:
    root = tmp_path / "span"
    write_csv(root / "one.csv", {"fare": [1.5, 2.5], "company": ["a", "b"]})
    write_csv(root / "two.csv", {"fare": ["cheap", "dear"], "company": ["a", "b"]})
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(
        InvalidInputError,
        match=r"Input file 'two.csv' does not match the span's schema: column 'fare' is string "
        r"in 'two.csv' but double in the files before it",
    ):
        stream_splits(root, ["one.csv", "two.csv"], out, SPLITS)


def test_files_with_other_columns_fail_naming_both_files(tmp_path: Path) -> None:
    root = tmp_path / "span"
    write_csv(root / "one.csv", {"fare": [1.5], "company": ["a"]})
    write_csv(root / "two.csv", {"fare": [2.5], "tip": ["yes"]})
    with pytest.raises(InvalidInputError, match=r"Input file 'two.csv' has columns"):
        stream_splits(root, ["one.csv", "two.csv"], tmp_path, SPLITS)


def test_a_csv_value_past_the_inferred_block_fails_naming_the_file_and_column(
    tmp_path: Path,
) -> None:
    root = tmp_path / "span"
    root.mkdir()
    lines = ["id,fare"] + [f"{i},{i}" for i in range(2000)] + ["2000,not-a-number"]
    (root / "late.csv").write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(
        InvalidInputError,
        match=r"Input file 'late.csv': column 'fare': .*Streaming infers CSV column types from "
        r"the first 4096 bytes",
    ):
        stream_splits(root, ["late.csv"], out, SPLITS, csv_block_bytes=4096)


def test_batch_rows_below_one_is_refused(
    mixed_span: tuple[Path, list[str]], tmp_path: Path
) -> None:
    root, files = mixed_span
    with pytest.raises(InvalidInputError, match="batch_rows=0 must be at least 1"):
        stream_splits(root, files, tmp_path, SPLITS, batch_rows=0)


def test_the_step_streams_with_a_small_batch_and_keeps_its_cache(
    harness: Harness, mixed_span: tuple[Path, list[str]]
) -> None:
    root, files = mixed_span
    gen = ExampleGen(input_dir=str(root), pattern="*.*", batch_rows=2000)
    result = harness.run("taxi", [gen])
    assert result.ok
    art = harness.artifact(result, "ExampleGen", "examples")
    expected = in_memory(root, sorted(files))
    assert art.properties["rows"] == {s: t.num_rows for s, t in expected.items()}
    assert art.properties["columns"] == expected["train"].column_names
    assert harness.read_table(result, "ExampleGen", "examples", "eval").equals(expected["eval"])
    assert harness.run("taxi", [gen]).steps["ExampleGen"].cached


def test_a_span_failing_half_way_publishes_no_examples(harness: Harness, tmp_path: Path) -> None:
    root = tmp_path / "span"
    root.mkdir()
    (root / "a.csv").write_text("id,fare\n" + "".join(f"{i},{i * 3}\n" for i in range(3000)))
    rows = "id,fare\n" + "".join(f"{i},{i * 3}\n" for i in range(1_500_000))  # 4 MiB blocks
    packed = gzip.compress(rows.encode(), compresslevel=1)
    (root / "b.csv.gz").write_bytes(packed[: len(packed) * 3 // 4])  # cut off: fails late
    gen = ExampleGen(input_dir=str(root), pattern="*.csv*", batch_rows=500)
    result = harness.run("cut", [gen])
    assert result.status is RunStatus.FAILED
    assert "Input file 'b.csv.gz' is not valid CSV" in harness.error(result, "ExampleGen")
    examples = harness.metadata.list_artifacts(type_name="Examples")
    assert all(a.state is not ArtifactState.LIVE for a in examples)  # a.csv's rows never shown
    assert not harness.run("cut", [gen]).ok  # and nothing was cached
