"""save_model / load_model: round trips, digests, the type allow-list, atomicity."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from loopline.bundle import (
    MANIFEST_NAME,
    Signature,
    TensorSpec,
    infer_signature,
    load_model,
    save_model,
    tree_digest,
)
from loopline.errors import AlreadyExistsError, InvalidInputError, NotFoundError


def test_forest_round_trips_with_predict_and_proba(tmp_path: Path, xy: Any) -> None:
    x, y = xy
    forest = RandomForestClassifier(n_estimators=5, max_depth=3, random_state=0).fit(x, y)
    path = save_model(
        forest,
        tmp_path / "m",
        signature=infer_signature(x, y),
        methods=("predict", "predict_proba"),
        input_example=x[:2],
    )
    model = load_model(path, expected_digest=tree_digest(path))
    out = model.predict(x[:7])
    np.testing.assert_array_equal(out["predict"], forest.predict(x[:7]))
    np.testing.assert_allclose(out["predict_proba"], forest.predict_proba(x[:7]))
    assert [s.to_dict() for s in model.signature.outputs] == [
        {"name": "predict", "dtype": "int64", "shape": [-1]},
        {"name": "predict_proba", "dtype": "float64", "shape": [-1, 2]},
    ]
    assert model.predict(x[:3], outputs=["predict_proba"]).keys() == {"predict_proba"}


def test_manifest_records_format_environment_and_file_digests(tmp_path: Path, xy: Any) -> None:
    x, y = xy
    lr = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(x, y)
    path = save_model(lr, tmp_path / "m", signature=infer_signature(x, y), metadata={"run": "r1"})
    manifest = yaml.safe_load((path / MANIFEST_NAME).read_text())
    assert manifest["format_version"] == 1 and manifest["flavor"] == "sklearn"
    assert manifest["methods"] == ["predict"]
    assert {"python", "scikit-learn", "numpy"} <= set(manifest["environment"])
    assert set(manifest["files"]) == {"model.skops"} and len(manifest["files"]["model.skops"]) == 64
    assert manifest["metadata"] == {"run": "r1"}
    assert not list(path.glob("*.pkl")) and not list(tmp_path.glob(".m.*"))


def test_column_transformer_pipeline_takes_named_columns_in_signature_order(
    tmp_path: Path, frame: Any
) -> None:
    df, y = frame
    pipe = make_pipeline(
        ColumnTransformer(
            [
                ("num", StandardScaler(), ["age", "fare"]),
                ("cat", OneHotEncoder(), ["city"]),
                ("flag", "passthrough", ["member"]),
            ]
        ),
        LogisticRegression(),
    ).fit(df, y)
    sig = infer_signature(df, y)
    assert [(s.name, s.dtype) for s in sig.inputs] == [
        ("age", "int64"),
        ("fare", "float64"),
        ("city", "string"),
        ("member", "bool"),
    ]
    model = load_model(save_model(pipe, tmp_path / "p", signature=sig, input_example=df.head(3)))
    assert model.manifest.input_kind == "frame"
    cols = {c: df[c].to_numpy() for c in reversed(df.columns)}  # order of the mapping is irrelevant
    np.testing.assert_array_equal(model.predict(cols)["predict"], pipe.predict(df))
    np.testing.assert_array_equal(
        model.predict(model.example_batch())["predict"], pipe.predict(df.head(3))
    )


def test_expected_digest_mismatch_refuses_to_load(tmp_path: Path, xy: Any) -> None:
    x, y = xy
    path = save_model(LinearRegression().fit(x, y), tmp_path / "m", signature=infer_signature(x, y))
    with pytest.raises(InvalidInputError, match="the registry recorded sha256:00"):
        load_model(path, expected_digest="sha256:" + "0" * 64)


def test_tampered_model_file_refuses_to_load(tmp_path: Path, xy: Any) -> None:
    x, y = xy
    path = save_model(LinearRegression().fit(x, y), tmp_path / "m", signature=infer_signature(x, y))
    with open(path / "model.skops", "ab") as f:
        f.write(b"evil")
    with pytest.raises(InvalidInputError, match="'model.skops' has sha256 .* the manifest records"):
        load_model(path)


class Sneaky(ClassifierMixin, BaseEstimator):
    """An estimator from outside the allow-list (this test module)."""

    def fit(self, x: Any, y: Any) -> Sneaky:
        self.classes_ = np.unique(y)
        return self

    def predict(self, x: Any) -> Any:
        return np.zeros(len(x), dtype=np.int64)


def test_types_outside_the_allow_list_are_refused_by_name(tmp_path: Path, xy: Any) -> None:
    x, y = xy
    path = save_model(Sneaky().fit(x, y), tmp_path / "m", signature=infer_signature(x, y))
    with pytest.raises(InvalidInputError, match=r"type '.*test_save_load\.Sneaky', which is not"):
        load_model(path)


def test_manifest_listing_a_path_outside_the_bundle_is_refused(tmp_path: Path, xy: Any) -> None:
    x, y = xy
    path = save_model(LinearRegression().fit(x, y), tmp_path / "m", signature=infer_signature(x, y))
    manifest = yaml.safe_load((path / MANIFEST_NAME).read_text())
    manifest["files"]["../../etc/passwd"] = "0" * 64
    (path / MANIFEST_NAME).write_text(yaml.safe_dump(manifest))
    with pytest.raises(InvalidInputError, match="points outside the bundle"):
        load_model(path)


def test_saving_over_an_existing_bundle_is_refused(tmp_path: Path, xy: Any) -> None:
    x, y = xy
    lr = LinearRegression().fit(x, y)
    save_model(lr, tmp_path / "m", signature=infer_signature(x, y))
    with pytest.raises(AlreadyExistsError, match="already exists"):
        save_model(lr, tmp_path / "m", signature=infer_signature(x, y))


def test_failed_save_leaves_nothing_behind(tmp_path: Path, xy: Any) -> None:
    x, y = xy
    with pytest.raises(InvalidInputError, match="has no method 'predict_proba'"):
        save_model(
            LinearRegression().fit(x, y),
            tmp_path / "m",
            signature=infer_signature(x, y),
            methods=("predict", "predict_proba"),
        )
    sig = Signature(
        inputs=(TensorSpec("input", "float64", (-1, 30)),),
        outputs=(TensorSpec("score", "float64", (-1,)),),
    )
    with pytest.raises(InvalidInputError, match="output 'score' is not a served method"):
        save_model(LinearRegression().fit(x, y), tmp_path / "m", signature=sig)
    with pytest.raises(InvalidInputError, match="Input 'input' has shape"):
        save_model(
            LinearRegression().fit(x, y),
            tmp_path / "m",
            signature=infer_signature(x, y),
            input_example=np.zeros((2, 3)),
        )
    assert list(tmp_path.iterdir()) == []


def test_loading_something_that_is_not_a_bundle_says_so(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="is not a model bundle"):
        load_model(tmp_path)
    with pytest.raises(NotFoundError, match="not a directory"):
        load_model(tmp_path / "nope")
    (tmp_path / MANIFEST_NAME).write_text("format_version: 99\n")
    with pytest.raises(InvalidInputError, match="format_version 99"):
        load_model(tmp_path)
