"""The ``lightgbm`` flavor: text model + estimator.json, loaded by LightGBM, answering as in
process."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from loopline.bundle import MANIFEST_NAME, infer_signature, load_model, save_model, tree_digest
from loopline.errors import DependencyMissingError, InvalidInputError

BOTH = ("predict", "predict_proba")
QUIET = {"verbose": -1, "n_jobs": 1}


@pytest.fixture(scope="module")
def cancer() -> tuple[pd.DataFrame, pd.Series]:
    x, y = load_breast_cancer(return_X_y=True, as_frame=True)
    return x, y


@pytest.fixture(scope="module")
def classifier(cancer: Any) -> lgb.LGBMClassifier:
    x, y = cancer
    return lgb.LGBMClassifier(n_estimators=40, random_state=0, **QUIET).fit(x, y)


def _columns(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    return {str(c): frame[c].to_numpy() for c in frame.columns}


def _same_bits(got: np.ndarray, want: np.ndarray) -> None:
    assert got.dtype == want.dtype and got.shape == want.shape
    assert got.tobytes() == want.tobytes()


def test_a_classifier_answers_bit_for_bit_as_lgbmclassifier(
    tmp_path: Path, cancer: Any, classifier: lgb.LGBMClassifier
) -> None:
    x, y = cancer
    # LightGBM stores 'mean radius' as 'mean_radius': the signature keeps the frame's names
    path = save_model(classifier, tmp_path / "m", signature=infer_signature(x, y),
                      methods=BOTH, input_example=x.head(3))  # fmt: skip
    model = load_model(path, expected_digest=tree_digest(path))
    proba = model.estimator.predict_proba(model.model_input(_columns(x)))
    _same_bits(proba, classifier.predict_proba(x))
    out = model.predict(_columns(x))
    _same_bits(out["predict"], classifier.predict(x))
    _same_bits(out["predict_proba"], classifier.predict_proba(x))
    np.testing.assert_array_equal(
        out["predict"], classifier.classes_[np.argmax(out["predict_proba"], axis=1)]
    )


def test_the_bundle_holds_the_text_model_and_a_json_description_never_a_pickle(
    tmp_path: Path, cancer: Any, classifier: lgb.LGBMClassifier
) -> None:
    x, y = cancer
    path = save_model(classifier, tmp_path / "m", signature=infer_signature(x, y), methods=BOTH)
    manifest = yaml.safe_load((path / MANIFEST_NAME).read_text())
    assert manifest["flavor"] == "lightgbm"
    assert set(manifest["files"]) == {"model.txt", "estimator.json"}
    assert manifest["environment"]["lightgbm"] == lgb.__version__
    assert (path / "model.txt").read_text().startswith("tree\nversion=")
    spec = json.loads((path / "estimator.json").read_text())
    assert spec["kind"] == "classifier" and spec["classes"] == [0, 1]


def test_string_labels_of_a_multiclass_classifier_round_trip(tmp_path: Path) -> None:
    x, y = load_iris(return_X_y=True)
    labels = np.array(["setosa", "versicolor", "virginica"])[y]
    clf = lgb.LGBMClassifier(n_estimators=15, **QUIET).fit(x, labels)
    path = save_model(clf, tmp_path / "m", signature=infer_signature(x, labels), methods=BOTH)
    model = load_model(path)
    assert model.signature.output("predict").dtype == "string"
    out = model.predict(x)
    np.testing.assert_array_equal(out["predict"], clf.predict(x))
    _same_bits(out["predict_proba"], clf.predict_proba(x))


def test_a_regressor_answers_as_lgbmregressor(tmp_path: Path) -> None:
    x, y = load_diabetes(return_X_y=True, as_frame=True)
    reg = lgb.LGBMRegressor(n_estimators=50, **QUIET).fit(x, y)
    path = save_model(reg, tmp_path / "m", signature=infer_signature(x, y))
    model = load_model(path, expected_digest=tree_digest(path))
    _same_bits(model.predict(_columns(x))["predict"], reg.predict(x))
    assert not hasattr(model.estimator, "predict_proba")


def test_early_stopping_serves_the_best_iteration_as_the_estimator_does(
    tmp_path: Path, cancer: Any
) -> None:
    x, y = cancer
    clf = lgb.LGBMClassifier(n_estimators=400, learning_rate=0.3, **QUIET)
    clf.fit(x[:400], y[:400], eval_X=(x[400:],), eval_y=(y[400:],),
            callbacks=[lgb.early_stopping(3, verbose=False)])  # fmt: skip
    assert clf.best_iteration_ < 400  # it stopped early (LightGBM keeps the best trees)
    path = save_model(clf, tmp_path / "m", signature=infer_signature(x, y), methods=BOTH)
    out = load_model(path).predict(_columns(x))
    _same_bits(out["predict_proba"], clf.predict_proba(x))


def test_a_raw_booster_answers_as_booster_predict(tmp_path: Path, cancer: Any) -> None:
    x, y = cancer
    booster = lgb.train({"objective": "binary", "verbose": -1, "num_threads": 1},
                        lgb.Dataset(x, label=y), num_boost_round=15)  # fmt: skip
    path = save_model(booster, tmp_path / "m", signature=infer_signature(x))
    _same_bits(load_model(path).predict(_columns(x))["predict"], booster.predict(x))


def test_categorical_columns_are_served_from_strings_with_the_training_codes(
    tmp_path: Path,
) -> None:
    rng = np.random.default_rng(1)
    n = 600
    train = pd.DataFrame({
        "fare": rng.random(n) * 100,
        "city": pd.Categorical(rng.choice(["paris", "lyon", "nice"], n)),
    })  # fmt: skip
    y = ((train.fare > 50) ^ (train.city == "nice")).astype(np.int64)
    clf = lgb.LGBMClassifier(n_estimators=20, min_child_samples=5, **QUIET).fit(train, y)
    sig = infer_signature(train, y)
    assert [s.dtype for s in sig.inputs] == ["float64", "string"]
    path = save_model(clf, tmp_path / "m", signature=sig, methods=BOTH)
    model = load_model(path)
    assert model.manifest.input_kind == "frame"
    # strings in any order and subset, and one never seen (missing, as in process)
    request = {"fare": np.array([10.0, 70.0, 20.0, 60.0]),
               "city": np.array(["nice", "lyon", "nice", "rome"], dtype=object)}  # fmt: skip
    out = model.predict(request)
    in_process = pd.DataFrame({"fare": request["fare"],
                               "city": pd.Categorical(request["city"])})  # fmt: skip
    _same_bits(out["predict_proba"], clf.predict_proba(in_process))
    np.testing.assert_array_equal(out["predict"], clf.predict(in_process))
    whole = model.predict(_columns(train.astype({"city": object})))
    np.testing.assert_array_equal(whole["predict"], clf.predict(train))


def test_a_pipeline_ending_in_lightgbm_keeps_its_steps_as_a_skops_transform(
    tmp_path: Path, cancer: Any
) -> None:
    x, y = cancer
    pipe = make_pipeline(StandardScaler(), lgb.LGBMClassifier(n_estimators=10, **QUIET))
    pipe.fit(x.to_numpy(), y)
    sig = infer_signature(x.to_numpy(), y)
    path = save_model(pipe, tmp_path / "m", signature=sig, methods=BOTH)
    manifest = yaml.safe_load((path / MANIFEST_NAME).read_text())
    assert manifest["flavor"] == "lightgbm"
    assert set(manifest["files"]) == {"model.txt", "estimator.json", "transform.skops"}
    out = load_model(path).predict(x.to_numpy())
    np.testing.assert_array_equal(out["predict"], pipe.predict(x.to_numpy()))
    _same_bits(out["predict_proba"], pipe.predict_proba(x.to_numpy()))


@pytest.mark.parametrize("name", ["model.txt", "estimator.json"])
def test_a_tampered_file_is_refused_by_its_digest(
    tmp_path: Path, cancer: Any, classifier: lgb.LGBMClassifier, name: str
) -> None:
    x, y = cancer
    path = save_model(classifier, tmp_path / "m", signature=infer_signature(x, y), methods=BOTH)
    recorded = tree_digest(path)
    with open(path / name, "ab") as f:
        f.write(b"\n")
    with pytest.raises(InvalidInputError, match=rf"Bundle file '{name}' has sha256 .* the "
                       "manifest records"):  # fmt: skip
        load_model(path)
    with pytest.raises(InvalidInputError, match="the registry recorded"):
        load_model(path, expected_digest=recorded)


def test_a_damaged_description_is_refused_naming_the_field(
    tmp_path: Path, cancer: Any, classifier: lgb.LGBMClassifier
) -> None:
    x, y = cancer
    path = save_model(classifier, tmp_path / "m", signature=infer_signature(x, y), methods=BOTH)
    spec = json.loads((path / "estimator.json").read_text())
    spec["kind"] = "oracle"
    data = json.dumps(spec).encode()
    (path / "estimator.json").write_bytes(data)
    manifest = yaml.safe_load((path / MANIFEST_NAME).read_text())
    manifest["files"]["estimator.json"] = hashlib.sha256(data).hexdigest()
    (path / MANIFEST_NAME).write_text(yaml.safe_dump(manifest))
    with pytest.raises(InvalidInputError, match=r"estimator\.json': kind 'oracle' is not one of"):
        load_model(path)


def test_loading_without_lightgbm_names_the_extra_to_install(
    tmp_path: Path, cancer: Any, classifier: lgb.LGBMClassifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    x, y = cancer
    path = save_model(classifier, tmp_path / "m", signature=infer_signature(x, y))
    monkeypatch.setitem(sys.modules, "lightgbm", None)
    with pytest.raises(DependencyMissingError, match=r"pip install 'loopline\[lightgbm\]'"):
        load_model(path)


def test_saving_a_lightgbm_model_with_skops_is_refused(
    tmp_path: Path, cancer: Any, classifier: lgb.LGBMClassifier
) -> None:
    x, y = cancer
    with pytest.raises(InvalidInputError, match="comes from lightgbm; save it with flavor "
                       "'lightgbm'"):  # fmt: skip
        save_model(classifier, tmp_path / "m", signature=infer_signature(x, y), flavor="sklearn")


def test_a_signature_whose_columns_differ_from_the_training_columns_is_refused(
    tmp_path: Path, cancer: Any, classifier: lgb.LGBMClassifier
) -> None:
    x, _y = cancer
    renamed = x.rename(columns={"mean radius": "radius"})
    with pytest.raises(InvalidInputError, match=r"fitted on columns \['mean_radius'.* but the "
                       r"signature lists \['radius'"):  # fmt: skip
        save_model(classifier, tmp_path / "a", signature=infer_signature(renamed))
    with pytest.raises(InvalidInputError, match="takes 30 features but the signature lists 29"):
        save_model(classifier, tmp_path / "b", signature=infer_signature(x.iloc[:, 1:]))


def test_mixing_pandas_categoricals_with_categorical_feature_is_refused(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    frame = pd.DataFrame({
        "code": rng.integers(0, 4, 300),
        "city": pd.Categorical(rng.choice(["a", "b"], 300)),
        "fare": rng.random(300),
    })  # fmt: skip
    y = (frame.fare > 0.5).astype(int)
    clf = lgb.LGBMClassifier(n_estimators=3, **QUIET)
    clf.fit(frame, y, categorical_feature=["code", "city"])
    with pytest.raises(InvalidInputError, match="mixes pandas categorical columns with "
                       "categorical_feature"):  # fmt: skip
        save_model(clf, tmp_path / "m", signature=infer_signature(frame), methods=BOTH)


def test_a_wrong_feature_count_at_predict_is_the_callers_error(
    tmp_path: Path, cancer: Any, classifier: lgb.LGBMClassifier
) -> None:
    x, y = cancer
    path = save_model(classifier, tmp_path / "m", signature=infer_signature(x, y))
    model = load_model(path)
    with pytest.raises(InvalidInputError, match="^LightGBM refused the input: "):
        model.estimator.predict(np.zeros((1, 3)))
