"""StatisticsGen, SchemaGen and ExampleValidator on real and crafted data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon

from loopline.components import (
    ExampleGen,
    ExampleValidator,
    SchemaGen,
    StatisticsGen,
    previous_span_statistics,
)
from loopline.data import dump_schema, infer_schema, profile_table
from loopline.errors import NotFoundError
from loopline.metadata.entities import ExecutionState
from loopline.pipeline import RunStatus, Step
from tests.components.conftest import Harness, write_csv

PATTERN = "span-{SPAN}/data.csv"
CITIES = ["north", "south", "east", "west"]


def good(
    n: int = 300, seed: int = 0, shift: float = 0.0, weights: Any = None
) -> dict[str, list[Any]]:
    rng = np.random.default_rng(seed)
    return {
        "x": (rng.normal(10 + shift, 2, n)).round(3).tolist(),
        "k": rng.integers(0, 5, n).tolist(),
        "city": rng.choice(CITIES, n, p=weights).tolist(),
    }


def curated_schema(path: Path) -> Path:
    """The schema of good data, as a team would commit it."""
    import pyarrow as pa

    dump_schema(infer_schema(profile_table(pa.table(good()))), path)
    return path


def steps(root: Path, schema_file: Path | None = None, **validator: Any) -> list[Step]:
    gen = ExampleGen(input_dir=str(root), pattern=PATTERN, splits=validator.pop("splits", None))
    stats = StatisticsGen(examples=gen.outputs.examples)
    schema = SchemaGen(statistics=stats.outputs.statistics, curated_schema_file=schema_file)
    prev = previous_span_statistics(input_dir=str(root), pattern=PATTERN)
    check = ExampleValidator(
        statistics=stats.outputs.statistics,
        schema=schema.outputs.schema,
        examples=gen.outputs.examples,
        previous_statistics=prev.outputs.artifact,
        **validator,
    )
    return [gen, stats, schema, prev, check]


def test_iris_statistics_schema_and_validation_pass(harness: Harness, iris_dir: Path) -> None:
    gen = ExampleGen(input_dir=str(iris_dir), pattern="span-{SPAN}/*.csv")
    stats = StatisticsGen(examples=gen.outputs.examples)
    schema = SchemaGen(statistics=stats.outputs.statistics)
    check = ExampleValidator(statistics=stats.outputs.statistics, schema=schema.outputs.schema)
    result = harness.run("iris", [gen, stats, schema, check])
    assert result.ok
    st = harness.artifact(result, "StatisticsGen", "statistics")
    assert st.properties["splits"] == ["train", "eval"]
    profile = json.loads(harness.read(st, "train.json"))
    assert profile["num_rows"] == st.properties["rows"]["train"]  # type: ignore[index]
    text = harness.read(harness.artifact(result, "SchemaGen", "schema"), "schema.yaml")
    assert "species:" in text and "setosa" in text and "type: float" in text
    anomalies = harness.artifact(result, "ExampleValidator", "anomalies")
    assert anomalies.properties["passed"] == 1
    report = json.loads(harness.read(anomalies, "anomalies.json"))
    assert report["passed"] and report["drift_note"].startswith("no previous span")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"x": [1.0, 2.0, 3.0], "k": [1, 2, 3]}, "missing_column: Column 'city' is in the schema"),
        (
            {"x": ["a", "b", "c"], "k": [1, 2, 3], "city": ["north"] * 3},
            "type_change: Column 'x' is string, but the schema says float",
        ),
        (
            {"x": [1.0, 2.0, 3.0], "k": [1, 2, 3], "city": [None, None, None]},
            "unexpected_nulls: Column 'city' is missing all of its",
        ),
        (
            {"x": [1.0, 2.0, 3.0], "k": [1, 2, 3], "city": ["north", "mars", "mars"]},
            "out_of_domain: Column 'city' has 1 value(s) outside its domain: 'mars'",
        ),
    ],
    ids=["missing-column", "wrong-type", "all-null", "out-of-domain"],
)
def test_crafted_bad_data_blocks_at_the_gate(
    harness: Harness, tmp_path: Path, data: dict[str, list[Any]], expected: str
) -> None:
    root = tmp_path / "data"
    write_csv(root / "span-1" / "data.csv", data)
    result = harness.run("bad", steps(root, curated_schema(tmp_path / "schema.yaml")))
    step = result.steps["ExampleValidator"]
    assert result.status is RunStatus.BLOCKED
    assert step.gate and step.state is ExecutionState.FAILED
    execution = harness.metadata.get_execution(step.execution_id or 0)
    assert expected in str(execution.properties["error"])
    recorded = execution.properties["params"]
    assert isinstance(recorded, dict) and recorded["anomalies_blocking"] >= 1


def test_empty_split_is_an_anomaly(harness: Harness, tmp_path: Path) -> None:
    root = tmp_path / "data"
    write_csv(root / "span-1" / "data.csv", {"x": [1.0], "k": [1], "city": ["north"]})
    result = harness.run("tiny", steps(root, splits={"train": 1, "eval": 1}))
    assert result.status is RunStatus.BLOCKED
    assert "empty_split: The split has no rows" in harness.error(result, "ExampleValidator")


def test_override_lets_the_run_continue_and_is_recorded(harness: Harness, tmp_path: Path) -> None:
    root = tmp_path / "data"
    write_csv(root / "span-1" / "data.csv", {"x": [1.0, 2.0, 3.0], "k": [1, 2, 3]})
    result = harness.run(
        "override",
        steps(
            root,
            curated_schema(tmp_path / "schema.yaml"),
            allow_anomalies=True,
            override_reason="city is dropped on purpose (ticket 42)",
        ),
    )
    assert result.ok
    art = harness.artifact(result, "ExampleValidator", "anomalies")
    assert art.properties["passed"] == 0 and art.properties["overridden"] is True
    assert art.properties["override_reason"] == "city is dropped on purpose (ticket 42)"
    report = json.loads(harness.read(art, "anomalies.json"))
    assert report["overridden"] and "missing_column" in report["blocking"][0]


def test_drift_against_the_previous_span_matches_scipy(harness: Harness, tmp_path: Path) -> None:
    root = tmp_path / "data"
    write_csv(root / "span-1" / "data.csv", good(seed=1))
    first = harness.run("drift", steps(root))
    assert first.ok
    write_csv(root / "span-2" / "data.csv", good(seed=2, shift=3.0, weights=[0.7, 0.1, 0.1, 0.1]))
    second = harness.run("drift", steps(root))
    assert second.status is RunStatus.BLOCKED
    error = harness.error(second, "ExampleValidator")
    assert "feature 'x' drifted: normalized_wasserstein" in error and "reference_std" in error
    assert "feature 'city' drifted: jensen_shannon" in error and "js_distance_base2" in error
    params = harness.metadata.get_execution(second.steps["ExampleValidator"].execution_id or 0)
    drift = params.properties["params"]["drift"]["train"]  # type: ignore[index, call-overload]
    city = next(f for f in drift["features"] if f["feature"] == "city")
    # reference: span-1 train rows; current: span-2 train rows (both from the Examples)
    ref, cur = (
        harness.read_table(r, "ExampleGen", "examples", "train").column("city").to_pylist()
        for r in (first, second)
    )
    p = np.array([ref.count(c) for c in sorted(set(ref))], dtype=float)
    q = np.array([cur.count(c) for c in sorted(set(ref))], dtype=float)
    assert city["metrics"]["jensen_shannon"]["value"] == pytest.approx(
        jensenshannon(p, q, base=2), abs=1e-9
    )
    assert city["metrics"]["l_infinity"]["value"] == pytest.approx(
        np.max(np.abs(p / p.sum() - q / q.sum())), abs=1e-12
    )
    assert city["metrics"]["jensen_shannon"]["unit"] == "js_distance_base2"


def test_rerunning_the_same_span_skips_drift_and_stays_cached(
    harness: Harness, tmp_path: Path
) -> None:
    root = tmp_path / "data"
    write_csv(root / "span-1" / "data.csv", good(seed=1))
    harness.run("same", steps(root))
    again = harness.run("same", steps(root))
    assert again.ok and again.steps["ExampleValidator"].cached


def test_curated_schema_wins_over_the_inferred_one(harness: Harness, tmp_path: Path) -> None:
    root = tmp_path / "data"
    write_csv(root / "span-1" / "data.csv", good())
    curated = tmp_path / "curated.yaml"
    curated.write_text("features:\n  x:\n    range: [0, 5]\n")
    result = harness.run("curated", steps(root, curated))
    text = harness.read(harness.artifact(result, "SchemaGen", "schema"), "schema.yaml")
    assert "- 0.0\n    - 5.0" in text or "[0.0, 5.0]" in text
    assert result.status is RunStatus.BLOCKED
    assert "out_of_range: Column 'x'" in harness.error(result, "ExampleValidator")
    curated.write_text("features:\n  x:\n    type: text\n")
    bad = harness.run("curated", steps(root, curated))
    assert "curated.yaml" in harness.error(bad, "SchemaGen")
    with pytest.raises(NotFoundError, match="does not exist"):
        SchemaGen(statistics=None, curated_schema_file=tmp_path / "missing.yaml")
