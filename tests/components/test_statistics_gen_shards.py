"""StatisticsGen with shards: the same statistics as one task, profiled in parallel processes."""

from __future__ import annotations

import json
from pathlib import Path

from loopline.components import ExampleGen, StatisticsGen
from tests.components.conftest import Harness


def counts(doc: dict[str, object]) -> object:
    """A profile's JSON without the float moments (summed in another order by shards)."""
    if isinstance(doc, dict):
        return {k: counts(v) for k, v in doc.items() if k not in {"mean", "m2", "bucket_sums"}}
    if isinstance(doc, list):
        return [counts(v) for v in doc]
    return doc


def test_sharded_statistics_equal_one_task_statistics(harness: Harness, taxi_csv: Path) -> None:
    gen = ExampleGen(
        input_dir=str(taxi_csv.parents[1]), pattern="span-{SPAN}/*.csv", batch_rows=1_000
    )
    one = StatisticsGen(examples=gen.outputs.examples, batch_rows=500).with_id("one")
    two = StatisticsGen(examples=gen.outputs.examples, shards=2, batch_rows=500).with_id("two")
    result = harness.run("taxi", [gen, one, two])
    assert result.ok
    single, sharded = (
        harness.artifact(result, "one", "statistics"),
        harness.artifact(result, "two", "statistics"),
    )
    assert sharded.properties["rows"] == single.properties["rows"]
    assert sharded.properties["splits"] == ["train", "eval"]  # the reference split first
    for split in ("train", "eval"):
        a = json.loads(harness.read(single, f"{split}.json"))
        b = json.loads(harness.read(sharded, f"{split}.json"))
        assert counts(b) == counts(a)


def test_shards_below_one_fail_the_step_naming_the_value(harness: Harness, taxi_csv: Path) -> None:
    gen = ExampleGen(input_dir=str(taxi_csv.parents[1]), pattern="span-{SPAN}/*.csv")
    stats = StatisticsGen(examples=gen.outputs.examples, shards=0)
    result = harness.run("taxi", [gen, stats])
    assert not result.ok
    assert "shards=0 must be an integer >= 1" in harness.error(result, "StatisticsGen")
