"""The Trainer saves XGBoost and LightGBM models returned by train_fn in their own format."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
import xgboost as xgb

from loopline.bundle import load_model
from loopline.components import Trainer
from tests.components.conftest import Harness
from tests.components.test_training import data_steps, preprocess, transform_step


def train_lightgbm_on_categories(x: Any, y: Any, hp: dict[str, Any]) -> lgb.LGBMClassifier:
    """The raw frame: the string column becomes a pandas categorical, labels stay strings."""
    return lgb.LGBMClassifier(n_estimators=20, verbose=-1, n_jobs=1).fit(
        x.astype({"size": "category"}), y
    )


def train_xgboost(x: Any, y: Any, hp: dict[str, Any]) -> xgb.XGBClassifier:
    """The transformed matrix (XGBoost takes labels 0..n-1)."""
    return xgb.XGBClassifier(n_estimators=20, max_depth=3, n_jobs=1).fit(x, y)


@pytest.fixture
def coded_cancer_dir(cancer_dir: Path) -> Path:
    """The breast-cancer span with its label coded 1 = benign, 0 = malignant."""
    for csv in cancer_dir.rglob("*.csv"):
        frame = pd.read_csv(csv)
        frame["label"] = (frame["label"] == "benign").astype(int)
        frame.to_csv(csv, index=False)
    return cancer_dir


def test_a_lightgbm_model_on_raw_columns_is_saved_as_lightgbm_and_served_from_strings(
    harness: Harness, cancer_dir: Path
) -> None:
    steps = data_steps(cancer_dir)
    trainer = Trainer(examples=steps[0].outputs.examples, train_fn=train_lightgbm_on_categories,
                      label="label")  # fmt: skip
    result = harness.run("cancer-lgb", [*steps, trainer])
    assert result.ok, harness.error(result, "Trainer")
    model = harness.artifact(result, "Trainer", "model")
    assert model.properties["flavor"] == "lightgbm"
    assert model.properties["framework"] == "lightgbm"
    rows = harness.read_table(result, "ExampleGen", "examples", "eval").to_pandas()
    with harness.artifacts.open_local(model.uri) as local:
        assert sorted(p.name for p in Path(local).iterdir()) == [
            "estimator.json", "loopline-model.yaml", "model.txt"
        ]  # fmt: skip
        loaded = load_model(local, expected_digest=model.digest)
    columns = [s.name for s in loaded.signature.inputs]
    assert loaded.signature.inputs[columns.index("size")].dtype == "string"
    served = loaded.predict({c: rows[c].to_numpy() for c in columns})
    in_process = train_lightgbm_on_categories(*_train_frame(harness, result, columns), {})
    features = rows[columns].astype({"size": "category"})
    np.testing.assert_array_equal(served["predict"], in_process.predict(features))
    np.testing.assert_array_equal(served["predict_proba"], in_process.predict_proba(features))


def _train_frame(harness: Harness, result: Any, columns: list[str]) -> tuple[pd.DataFrame, Any]:
    train = harness.read_table(result, "ExampleGen", "examples", "train").to_pandas()
    return train[columns], train["label"].to_numpy()


def test_an_xgboost_model_after_a_transform_is_saved_as_xgboost_with_the_transform(
    harness: Harness, coded_cancer_dir: Path
) -> None:
    steps = data_steps(coded_cancer_dir)
    transform = transform_step(steps, preprocess)
    trainer = Trainer(examples=steps[0].outputs.examples, train_fn=train_xgboost, label="label",
                      transform_graph=transform.outputs.transform_graph)  # fmt: skip
    result = harness.run("cancer-xgb", [*steps, transform, trainer])
    assert result.ok, harness.error(result, "Trainer")
    model = harness.artifact(result, "Trainer", "model")
    assert model.properties["flavor"] == "xgboost"
    assert set(model.properties["methods"]) == {"predict", "predict_proba"}
    rows = harness.read_table(result, "ExampleGen", "examples", "eval").to_pandas()
    with harness.artifacts.open_local(model.uri) as local:
        loaded = load_model(local, expected_digest=model.digest)
        assert set(loaded.manifest.files) == {"model.ubj", "estimator.json", "transform.skops"}
    columns = [s.name for s in loaded.signature.inputs]
    assert columns == ["radius", "texture", "smoothness", "worst_area", "size"]
    served = loaded.predict({c: rows[c].to_numpy() for c in columns})
    assert np.mean(served["predict"] == rows["label"].to_numpy()) > 0.8
    np.testing.assert_array_equal(
        served["predict"], np.argmax(served["predict_proba"], axis=1)
    )
