"""``estimator.json`` of the xgboost/lightgbm flavors: whatever it holds, reading it either
gives a description or an InvalidInputError naming what is wrong — never another error."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import lightgbm as lgb
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_iris

from loopline.bundle import MANIFEST_NAME, infer_signature, load_model, save_model
from loopline.bundle.native import NativeSpec
from loopline.errors import InvalidInputError

_SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
_JSON = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
_FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "library": st.sampled_from(["xgboost", "lightgbm", "sklearn"]) | _JSON,
        "kind": st.sampled_from(["classifier", "regressor", "booster", "oracle"]) | _JSON,
        "classes": st.lists(_SCALARS, max_size=4) | _JSON,
        "classes_dtype": st.sampled_from(["int64", "string", "float64", "bool", "x"]) | _JSON,
        "columns": st.lists(st.text(max_size=4), max_size=3) | _JSON,
        "categorical": st.lists(st.text(max_size=4), max_size=3) | _JSON,
        "options": st.dictionaries(st.text(max_size=8), _JSON, max_size=3) | _JSON,
    },
)


@settings(max_examples=400, deadline=None)
@given(data=_FIELDS | _JSON)
def test_any_json_is_read_or_refused_with_invalid_input(data: Any) -> None:
    try:
        raw = json.dumps(data).encode()
    except ValueError:  # NaN/inf are not JSON
        return
    try:
        spec = NativeSpec.from_json(raw, source="'estimator.json'")
    except InvalidInputError as exc:
        assert "estimator.json" in str(exc)
        return
    assert spec.library in ("xgboost", "lightgbm")
    if spec.kind == "classifier":
        assert len(spec.labels()) == len(spec.classes) >= 2


@settings(max_examples=100, deadline=None)
@given(data=st.binary(max_size=64))
def test_any_bytes_are_read_or_refused_with_invalid_input(data: bytes) -> None:
    try:
        NativeSpec.from_json(data, source="'estimator.json'")
    except InvalidInputError:
        pass


def _rewrite_spec(path: Path, **changes: Any) -> None:
    spec = json.loads((path / "estimator.json").read_text())
    spec.update(changes)
    data = json.dumps(spec).encode()
    (path / "estimator.json").write_bytes(data)
    manifest = yaml.safe_load((path / MANIFEST_NAME).read_text())
    manifest["files"]["estimator.json"] = hashlib.sha256(data).hexdigest()
    (path / MANIFEST_NAME).write_text(yaml.safe_dump(manifest))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"classes": [0, 1, 2, 3]}, "predicts 3 classes but its estimator.json lists 4"),
        ({"classes": ["a", "b", "c"]}, r"classes \['a', 'b', 'c'\] are not int64 values"),
        ({"library": "xgboost"}, "describes a xgboost model but the bundle's flavor is"),
        ({"categorical": ["nope"]}, "categorical column 'nope' is not in columns"),
    ],
)
def test_a_description_that_contradicts_the_model_is_refused(
    tmp_path: Path, changes: dict[str, Any], message: str
) -> None:
    x, y = load_iris(return_X_y=True)
    clf = lgb.LGBMClassifier(n_estimators=3, verbose=-1, n_jobs=1).fit(x, y)
    path = save_model(clf, tmp_path / "m", signature=infer_signature(x, y),
                      methods=("predict", "predict_proba"))  # fmt: skip
    _rewrite_spec(path, **changes)
    with pytest.raises(InvalidInputError, match=message):
        load_model(path)
