from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest

from loopline.components import ExampleGen, split_table
from loopline.errors import InvalidInputError, NotFoundError
from loopline.metadata.entities import ExecutionState
from loopline.pipeline import RunStatus
from tests.components.conftest import Harness, write_csv


def read_split_rows(h: Harness, examples_id: int, split: str) -> pa.Table:
    art = h.metadata.get_artifact(examples_id)
    with h.artifacts.open_local(art.uri) as local:
        return pq.read_table(Path(local) / f"{split}.parquet")


def test_splits_iris_two_to_one_deterministically(harness: Harness, iris_dir: Path) -> None:
    gen = ExampleGen(input_dir=str(iris_dir), pattern="span-{SPAN}/*.csv")
    result = harness.run("iris", [gen])
    assert result.ok
    art = harness.artifact(result, "ExampleGen", "examples")
    props = art.properties
    assert props["span"] == 1 and props["splits"] == ["train", "eval"]
    rows = props["rows"]
    assert isinstance(rows, dict) and rows["train"] + rows["eval"] == 150
    assert 80 <= rows["train"] <= 120  # 2:1 by hash buckets
    again = split_table(read_split_rows(harness, art.id, "train"), {"train": 2, "eval": 1})
    assert again["eval"].num_rows == 0  # rows hash to the same buckets every time
    second = harness.run("iris", [gen])
    assert second.steps["ExampleGen"].cached


def test_partition_feature_keeps_an_entity_in_one_split() -> None:
    table = pa.table({"user": [f"u{i % 20}" for i in range(400)], "x": list(range(400))})
    parts = split_table(table, {"train": 2, "eval": 1}, partition_feature="user")
    users = [set(p.column("user").to_pylist()) for p in parts.values()]
    assert users[0].isdisjoint(users[1])
    assert sum(p.num_rows for p in parts.values()) == 400
    with pytest.raises(InvalidInputError, match="partition_feature 'nope' is not a column"):
        split_table(table, {"train": 1}, partition_feature="nope")
    with pytest.raises(InvalidInputError, match="weights are integers >= 1"):
        split_table(table, {"train": 0})


def test_reads_parquet_and_arrow_and_picks_the_latest_span(
    harness: Harness, tmp_path: Path
) -> None:
    root = tmp_path / "mixed"
    (root / "span-1").mkdir(parents=True)
    (root / "span-2").mkdir(parents=True)
    pq.write_table(pa.table({"a": [1, 2, 3]}), root / "span-1" / "part.parquet")
    feather.write_feather(pa.table({"a": [4, 5, 6, 7]}), str(root / "span-2" / "part.arrow"))
    result = harness.run("mixed", [ExampleGen(input_dir=str(root), pattern="span-{SPAN}/part.*")])
    props = harness.artifact(result, "ExampleGen", "examples").properties
    assert props["span"] == 2 and props["input_files"] == ["span-2/part.arrow"]
    assert sum(props["rows"].values()) == 4  # type: ignore[union-attr]
    both = ExampleGen(input_dir=str(root), pattern="span-{SPAN}/part.*", last_n_spans=2)
    props = harness.artifact(harness.run("mixed", [both]), "ExampleGen", "examples").properties
    assert props["spans"] == [1, 2] and sum(props["rows"].values()) == 7  # type: ignore[union-attr]


def test_a_new_span_invalidates_the_cache(harness: Harness, iris_dir: Path) -> None:
    first = harness.run("iris", [ExampleGen(input_dir=str(iris_dir), pattern="span-{SPAN}/*.csv")])
    write_csv(iris_dir / "span-2" / "iris.csv", {"sepal_length": [5.0], "species": ["setosa"]})
    second = harness.run("iris", [ExampleGen(input_dir=str(iris_dir), pattern="span-{SPAN}/*.csv")])
    assert not second.steps["ExampleGen"].cached
    assert harness.artifact(first, "ExampleGen", "examples").properties["span"] == 1
    assert harness.artifact(second, "ExampleGen", "examples").properties["span"] == 2


def test_a_file_that_is_not_csv_fails_the_step_naming_the_file(
    harness: Harness, tmp_path: Path
) -> None:
    root = tmp_path / "bad"
    (root / "span-1").mkdir(parents=True)
    pq.write_table(pa.table({"a": list(range(50))}), root / "span-1" / "data.csv")  # Parquet bytes
    result = harness.run("bad", [ExampleGen(input_dir=str(root), pattern="span-{SPAN}/*.csv")])
    step = result.steps["ExampleGen"]
    assert result.status is RunStatus.FAILED and step.state is ExecutionState.FAILED
    assert step.error is not None and "span-1/data.csv' is not valid CSV" in step.error


def test_unknown_file_format_and_mismatched_columns_are_clear_errors(
    harness: Harness, tmp_path: Path
) -> None:
    root = tmp_path / "odd"
    write_csv(root / "span-1" / "a.csv", {"x": [1], "y": [2]})
    write_csv(root / "span-1" / "b.csv", {"x": [1]})
    (root / "span-2").mkdir()
    (root / "span-2" / "notes.txt").write_text("hello")
    r = harness.run("odd", [ExampleGen(input_dir=str(root), pattern="span-{SPAN}/*", span=2)])
    assert "has no known format" in str(r.steps["ExampleGen"].error)
    r = harness.run("odd", [ExampleGen(input_dir=str(root), pattern="span-{SPAN}/*.csv", span=1)])
    assert "every file of a span must have the same columns" in str(r.steps["ExampleGen"].error)


def test_missing_input_is_reported_when_the_pipeline_is_defined(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="does not exist"):
        ExampleGen(input_dir=str(tmp_path / "nowhere"), pattern="*.csv")


def test_header_only_file_gives_empty_splits(harness: Harness, tmp_path: Path) -> None:
    root = tmp_path / "empty"
    (root / "span-1").mkdir(parents=True)
    (root / "span-1" / "a.csv").write_text("x,y\n")
    result = harness.run("empty", [ExampleGen(input_dir=str(root), pattern="span-{SPAN}/a.csv")])
    assert result.ok
    rows = harness.artifact(result, "ExampleGen", "examples").properties["rows"]
    assert json.dumps(rows) == '{"train": 0, "eval": 0}'
