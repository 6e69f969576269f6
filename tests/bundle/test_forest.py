"""ForestPredictor answers exactly as scikit-learn's forests, and load_model uses it safely."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    GradientBoostingClassifier,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from loopline.bundle import Signature, TensorSpec, infer_signature, load_model, save_model
from loopline.bundle import load as load_module
from loopline.bundle.forest import ForestPredictor, fast_methods


def identical(a: Any, b: Any) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def probes(x: np.ndarray, seed: int = 0) -> list[np.ndarray]:
    """Training rows, single rows, and random rows far outside the training range."""
    rng = np.random.default_rng(seed)
    scale = x.std(axis=0) + 1e-9
    wild = x.mean(axis=0) + rng.normal(size=(257, x.shape[1])) * scale * 5
    return [x[:1], x[:64], x, wild, wild[:1], np.float32(wild)]


@pytest.fixture(scope="module")
def cancer() -> tuple[np.ndarray, np.ndarray]:
    return load_breast_cancer(return_X_y=True)  # type: ignore[return-value]


@pytest.fixture(scope="module")
def diabetes() -> tuple[np.ndarray, np.ndarray]:
    return load_diabetes(return_X_y=True)  # type: ignore[return-value]


@pytest.mark.parametrize("cls", [RandomForestClassifier, ExtraTreesClassifier])
def test_classifier_predict_and_proba_are_bit_identical_to_sklearn(cls: Any, cancer: Any) -> None:
    x, y = cancer
    forest = cls(n_estimators=30, max_depth=8, random_state=0).fit(x, y)
    fast = ForestPredictor.of(forest)
    assert fast is not None
    for probe in probes(x):
        assert identical(fast.predict_proba(probe), forest.predict_proba(probe))
        assert identical(fast.predict(probe), forest.predict(probe))


@pytest.mark.parametrize("cls", [RandomForestRegressor, ExtraTreesRegressor])
def test_regressor_predict_is_bit_identical_to_sklearn(cls: Any, diabetes: Any) -> None:
    x, y = diabetes
    forest = cls(n_estimators=30, random_state=0).fit(x, y)
    fast = ForestPredictor.of(forest)
    assert fast is not None
    assert fast.method("predict_proba") is None
    for probe in probes(x):
        assert identical(fast.predict(probe), forest.predict(probe))


def test_string_classes_and_missing_values_are_answered_like_sklearn(cancer: Any) -> None:
    x, y = cancer
    x = x.copy()
    x[::7, 3] = np.nan  # trained with missing values: the trees learn where NaN goes
    labels = np.where(y == 1, "benign", "malignant").astype(object)
    forest = RandomForestClassifier(n_estimators=20, random_state=1).fit(x, labels)
    fast = ForestPredictor.of(forest)
    assert fast is not None
    probe = x[:50].copy()
    probe[::3, 0] = np.nan
    assert identical(fast.predict(probe), forest.predict(probe))
    assert identical(fast.predict_proba(probe), forest.predict_proba(probe))


def test_invalid_input_raises_the_same_errors_as_sklearn(cancer: Any) -> None:
    x, y = cancer
    forest = RandomForestClassifier(n_estimators=5, random_state=0).fit(x, y)
    fast = ForestPredictor.of(forest)
    assert fast is not None
    bad = x[:2].copy()
    bad[0, 0] = np.inf
    for call in (fast.predict, forest.predict):
        with pytest.raises(ValueError, match="infinity"):
            call(bad)
        with pytest.raises(ValueError, match="features"):
            call(x[:2, :5])


def test_a_pipeline_ending_in_a_forest_runs_its_transforms_first(cancer: Any) -> None:
    x, y = cancer
    pipe = make_pipeline(StandardScaler(), RandomForestClassifier(n_estimators=20, random_state=0))
    pipe.fit(x, y)
    calls = fast_methods(pipe, ["predict", "predict_proba", "decision_function"])
    assert sorted(calls) == ["predict", "predict_proba"]
    for probe in probes(x, seed=3):
        assert identical(calls["predict"](probe), pipe.predict(probe))
        assert identical(calls["predict_proba"](probe), pipe.predict_proba(probe))


def test_other_models_get_no_fast_methods(cancer: Any, diabetes: Any) -> None:
    x, y = cancer
    assert fast_methods(GradientBoostingClassifier(n_estimators=3).fit(x, y), ["predict"]) == {}
    two_outputs = RandomForestRegressor(n_estimators=3).fit(diabetes[0], np.c_[y[:442], y[:442]])
    assert fast_methods(two_outputs, ["predict"]) == {}
    assert fast_methods(RandomForestClassifier(), ["predict"]) == {}  # not fitted


def test_load_model_serves_forests_through_the_fast_path_with_the_same_outputs(
    tmp_path: Path, cancer: Any
) -> None:
    x, y = cancer
    forest = RandomForestClassifier(n_estimators=25, max_depth=6, random_state=0).fit(x, y)
    sig = Signature(
        inputs=(TensorSpec("x", "float64", (-1, 30)),),
        outputs=(
            TensorSpec("predict", "int64", (-1,)),
            TensorSpec("predict_proba", "float64", (-1, 2)),
        ),
    )
    path = save_model(
        forest,
        tmp_path / "m",
        signature=sig,
        methods=("predict", "predict_proba"),
        input_example=x[:3],
    )
    fast = load_model(path)
    plain = load_model(path, fast=False)
    assert sorted(fast.calls) == ["predict", "predict_proba"]
    assert plain.calls == {}
    for probe in probes(x, seed=5):
        got, want = fast.predict(probe), plain.predict(probe)
        assert all(identical(got[k], want[k]) for k in want)


def test_a_fast_method_that_differs_on_the_example_is_dropped_with_a_warning(
    tmp_path: Path, frame: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    df, y = frame
    pipe = make_pipeline(
        ColumnTransformer([("city", OneHotEncoder(), ["city"])], remainder="passthrough"),
        RandomForestClassifier(n_estimators=5, random_state=0),
    ).fit(df, y)
    path = save_model(pipe, tmp_path / "m", signature=infer_signature(df), input_example=df.head(4))
    assert sorted(load_model(path).calls) == ["predict"]  # frames work through the pipeline

    def wrong(estimator: Any, methods: Any) -> dict[str, Any]:
        return {"predict": lambda x: np.zeros(len(x), dtype=np.int64) + 7}

    monkeypatch.setattr(load_module, "fast_methods", wrong)
    with caplog.at_level(logging.WARNING, logger="loopline.bundle.load"):
        model = load_model(path)
    assert model.calls == {}
    assert "differs from the estimator's own" in caplog.text
    assert identical(model.predict(df.head(10))["predict"], pipe.predict(df.head(10)))


def test_frames_keep_their_dtypes_through_the_fast_path(tmp_path: Path, frame: Any) -> None:
    df, y = frame
    pipe = make_pipeline(
        ColumnTransformer([("city", OneHotEncoder(), ["city"])], remainder="passthrough"),
        RandomForestClassifier(n_estimators=5, random_state=0),
    ).fit(df, y)
    path = save_model(pipe, tmp_path / "m", signature=infer_signature(df), input_example=df.head(4))
    model = load_model(path)
    batch = {c: df[c].to_numpy() for c in df.columns}
    assert identical(model.predict(batch)["predict"], pipe.predict(pd.DataFrame(batch)))


def test_string_labels_pass_the_load_time_check(tmp_path: Path, cancer: Any) -> None:
    x, y = cancer
    labels = np.where(y == 1, "benign", "malignant").astype(object)
    forest = RandomForestClassifier(n_estimators=10, random_state=0).fit(x, labels)
    path = save_model(
        forest, tmp_path / "m", signature=infer_signature(x, labels), input_example=x[:3]
    )
    model = load_model(path)
    assert sorted(model.calls) == ["predict"]
    assert list(model.predict(x[:20])["predict"]) == list(forest.predict(x[:20]))
