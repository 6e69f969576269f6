"""LinearPredictor answers exactly as scikit-learn's logistic regressions, and load_model uses
it only where it may."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_iris
from sklearn.linear_model import LogisticRegression, RidgeClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from loopline.bundle import infer_signature, load_model, save_model
from loopline.bundle.linear import LinearPredictor, fast_methods


def identical(a: Any, b: Any) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def probes(x: np.ndarray, seed: int = 0) -> list[np.ndarray]:
    """Training rows, single rows, and random rows far outside the training range."""
    rng = np.random.default_rng(seed)
    scale = x.std(axis=0) + 1e-9
    wild = x.mean(axis=0) + rng.normal(size=(257, x.shape[1])) * scale * 5
    return [x[:1], x[:64], x, wild, wild[:1], np.asfortranarray(wild), wild[::2]]


@pytest.fixture(scope="module")
def cancer() -> tuple[np.ndarray, np.ndarray]:
    return load_breast_cancer(return_X_y=True)  # type: ignore[return-value]


@pytest.fixture(scope="module")
def iris() -> tuple[np.ndarray, np.ndarray]:
    x, y = load_iris(return_X_y=True)
    return x, np.array(["setosa", "versicolor", "virginica"])[y]


@pytest.mark.parametrize(
    "make",
    [
        lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)),
        lambda: LogisticRegression(max_iter=5000),
        lambda: make_pipeline(
            StandardScaler(), StandardScaler(with_mean=False), LogisticRegression(C=0.1)
        ),
    ],
    ids=["scaled", "bare", "two-scalers"],
)
def test_binary_and_multiclass_predictions_are_bit_identical_to_sklearn(
    make: Any, cancer: Any, iris: Any
) -> None:
    for x, y in (cancer, iris):
        model = make().fit(x, y)
        fast = LinearPredictor.of(model)
        assert fast is not None
        for probe in probes(x):
            assert identical(fast.predict(probe), model.predict(probe))


def test_input_that_is_not_a_plain_finite_float64_matrix_goes_to_sklearn(cancer: Any) -> None:
    x, y = cancer
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(x, y)
    fast = LinearPredictor.of(model)
    assert fast is not None
    assert identical(fast.predict(x[:5].tolist()), model.predict(x[:5].tolist()))
    assert identical(fast.predict(np.float32(x[:5])), model.predict(np.float32(x[:5])))
    bad = x[:3].copy()
    bad[1, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        fast.predict(bad)
    with pytest.raises(ValueError, match="features"):
        fast.predict(x[:3, :5])


def test_other_models_and_models_fitted_on_named_columns_get_no_fast_path(cancer: Any) -> None:
    x, y = cancer
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(x.shape[1])])
    named = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(frame, y)
    assert LinearPredictor.of(named) is None
    assert LinearPredictor.of(RidgeClassifier().fit(x, y)) is None
    minmax = make_pipeline(MinMaxScaler(), LogisticRegression(max_iter=1000)).fit(x, y)
    assert LinearPredictor.of(minmax) is None
    assert fast_methods(minmax, ["predict"]) == {}
    scaled = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(x, y)
    assert set(fast_methods(scaled, ["predict", "predict_proba"])) == {"predict"}


def test_a_loaded_logistic_regression_bundle_predicts_through_the_fast_path(
    cancer: Any, tmp_path: Path
) -> None:
    x, y = cancer
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(x, y)
    save_model(model, tmp_path / "lr", signature=infer_signature(x, y), input_example=x[:2])
    loaded = load_model(tmp_path / "lr")
    assert set(loaded.calls) == {"predict"}
    name = next(iter(loaded.example_batch()))
    assert identical(loaded.predict({name: x})["predict"], model.predict(x))
    slow = load_model(tmp_path / "lr", fast=False)
    assert slow.calls == {}
    assert identical(slow.predict({name: x})["predict"], model.predict(x))
