"""Schemas as human-editable YAML; a curated file overrides the inferred schema."""

from __future__ import annotations

import math
from pathlib import Path

import pyarrow as pa
import pytest

from loopline.data import Metric, dump_schema, infer_schema, load_schema, profile_table
from loopline.errors import InvalidInputError


def test_a_curated_type_change_drops_the_inferred_type_specific_expectations(
    tmp_path: Path,
) -> None:
    inferred = infer_schema(profile_table(pa.table({"code": ["1", "2", "2", None] * 25})))
    assert inferred.get("code").domain is not None  # type: ignore[union-attr]
    path = tmp_path / "curated.yaml"
    path.write_text("features:\n  code:\n    type: float\n    range: [0, 10]\n")
    code = load_schema(path, base=inferred).get("code")
    assert code is not None
    assert (code.dtype.value, code.domain, code.range_max) == ("float", None, 10.0)
    assert code.min_fraction == inferred.get("code").min_fraction  # type: ignore[union-attr]


def test_dump_then_load_gives_the_same_schema(taxi: pa.Table, tmp_path: Path) -> None:
    schema = infer_schema(profile_table(taxi), infer_ranges=True)
    path = tmp_path / "schema.yaml"
    text = dump_schema(schema, path)
    assert "company:" in text and "unit: reference_std" in text
    assert load_schema(path) == schema


def test_a_partial_curated_file_overrides_only_what_it_states(
    taxi: pa.Table, tmp_path: Path
) -> None:
    inferred = infer_schema(profile_table(taxi))
    path = tmp_path / "curated.yaml"
    path.write_text(
        "features:\n"
        "  distance:\n"
        "    range: [0, 200]\n"
        "    drift: [{metric: psi, threshold: 0.25}]\n"
        "  company:\n"
        "    drift: [{metric: jensen_shannon, threshold: 0.1, unit: js_distance_ln}]\n"
        "  pickup_zone:\n"
        "    type: string\n"
    )
    schema = load_schema(path, base=inferred)
    distance = schema.get("distance")
    assert distance is not None
    assert (distance.range_min, distance.range_max) == (0.0, 200.0)
    assert [(t.metric, t.value) for t in distance.drift] == [(Metric.PSI, 0.25)]
    assert distance.skew == inferred.get("distance").skew  # type: ignore[union-attr]
    company = schema.get("company")
    assert company is not None and company.domain == inferred.get("company").domain  # type: ignore[union-attr]
    assert company.drift[0].value == pytest.approx(0.1 / math.sqrt(math.log(2)))
    assert schema.get("pickup_zone") is not None
    assert schema.get("hour") == inferred.get("hour")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "features:\n  x: {type: float, colour: red}\n",
            r"feature 'x' has unknown keys \['colour'\]",
        ),
        ("features:\n  x: {min_fraction: 1}\n", "feature 'x' needs a 'type'"),
        ("features:\n  x: {type: decimal}\n", "feature 'x' has a malformed value"),
        ("features:\n  x: {type: float, domain: [a]}\n", "only string features take a domain"),
        (
            "features:\n  x: {type: float, drift: [{metric: psi, threshold: 0.1, unit: bits}]}\n",
            "feature 'x': Threshold for 'psi' is given in unit 'bits'",
        ),
        ("[1, 2]\n", "needs a 'features' mapping"),
        ("format: other/v9\nfeatures: {}\n", "has format 'other/v9'"),
        ("features: {x: [\n", "is not valid YAML"),
    ],
)
def test_rejects_bad_schema_files_with_a_message_naming_the_problem(
    tmp_path: Path, body: str, message: str
) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(body)
    with pytest.raises(InvalidInputError, match=message):
        load_schema(path)


def test_missing_schema_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="There is no schema file at"):
        load_schema(tmp_path / "none.yaml")
