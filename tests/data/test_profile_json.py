"""Profiles round-trip through JSON files without loss."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from loopline.data import (
    load_profile,
    profile_from_json,
    profile_table,
    profile_to_json,
    save_profile,
)
from loopline.errors import InvalidInputError


def test_round_trip_is_lossless_on_real_data(breast_cancer: pa.Table, taxi: pa.Table) -> None:
    for table in (breast_cancer, taxi):
        p = profile_table(table)
        assert profile_from_json(profile_to_json(p)) == p


def test_round_trip_keeps_nan_empty_and_sketch_fields(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    table = pa.table(
        {
            "empty": pa.array([None, None], pa.float64()),
            "s": pa.array(["a", None]),
        }
    )
    p = profile_table(table)
    text = profile_to_json(p)
    assert profile_to_json(profile_from_json(text)) == text
    big = pa.table({"id": rng.integers(0, 5000, 20_000).astype(str)})
    sk = profile_table(big, max_exact=100, sketch_size=50)
    assert sk["id"].categorical is not None and sk["id"].categorical.hll is not None
    assert load_profile(save_profile(sk, tmp_path / "p.json")) == sk


def test_save_is_atomic_and_leaves_no_temporary_files(taxi: pa.Table, tmp_path: Path) -> None:
    target = tmp_path / "stats" / "train.json"
    save_profile(profile_table(taxi), target)
    assert [f.name for f in target.parent.iterdir()] == ["train.json"]
    assert json.loads(target.read_text())["format"] == "loopline.profile/v1"


def test_rejects_other_json_and_damaged_profiles(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="This is not a loopline.profile/v1 profile"):
        profile_from_json('{"format": "whylogs"}')
    with pytest.raises(InvalidInputError, match="The profile is not valid JSON"):
        profile_from_json("{")
    with pytest.raises(InvalidInputError, match="The profile JSON is damaged"):
        profile_from_json('{"format": "loopline.profile/v1", "num_rows": 1}')
    with pytest.raises(InvalidInputError, match="There is no profile file at"):
        load_profile(tmp_path / "missing.json")
    p = json.loads(profile_to_json(profile_table(pa.table({"x": [1.0, 2.0]}))))
    p["features"][0]["numeric"]["bucket_counts"].append(3)
    with pytest.raises(InvalidInputError, match="histogram arrays of the wrong length"):
        profile_from_json(json.dumps(p))
