"""The ``xgboost`` flavor: UBJSON + estimator.json, loaded by XGBoost, answering as in process."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
import yaml
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from loopline.bundle import MANIFEST_NAME, infer_signature, load_model, save_model, tree_digest
from loopline.errors import DependencyMissingError, InvalidInputError

BOTH = ("predict", "predict_proba")


@pytest.fixture(scope="module")
def cancer() -> tuple[pd.DataFrame, pd.Series]:
    x, y = load_breast_cancer(return_X_y=True, as_frame=True)
    return x, y


@pytest.fixture(scope="module")
def classifier(cancer: Any) -> xgb.XGBClassifier:
    x, y = cancer
    return xgb.XGBClassifier(n_estimators=40, max_depth=4, random_state=0, n_jobs=1).fit(x, y)


def _columns(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    return {str(c): frame[c].to_numpy() for c in frame.columns}


def _same_bits(got: np.ndarray, want: np.ndarray) -> None:
    assert got.dtype == want.dtype and got.shape == want.shape
    assert got.tobytes() == want.tobytes()


def test_a_classifier_answers_bit_for_bit_as_xgbclassifier(
    tmp_path: Path, cancer: Any, classifier: xgb.XGBClassifier
) -> None:
    x, y = cancer
    path = save_model(classifier, tmp_path / "m", signature=infer_signature(x, y),
                      methods=BOTH, input_example=x.head(3))  # fmt: skip
    model = load_model(path, expected_digest=tree_digest(path))
    proba = model.estimator.predict_proba(model.model_input(_columns(x)))
    _same_bits(proba, classifier.predict_proba(x))
    out = model.predict(_columns(x))
    _same_bits(out["predict"], classifier.predict(x))
    np.testing.assert_array_equal(out["predict_proba"], classifier.predict_proba(x))
    np.testing.assert_array_equal(
        out["predict"], classifier.classes_[np.argmax(out["predict_proba"], axis=1)]
    )


def test_the_bundle_holds_ubjson_and_a_json_description_never_a_pickle(
    tmp_path: Path, cancer: Any, classifier: xgb.XGBClassifier
) -> None:
    x, y = cancer
    path = save_model(classifier, tmp_path / "m", signature=infer_signature(x, y), methods=BOTH)
    manifest = yaml.safe_load((path / MANIFEST_NAME).read_text())
    assert manifest["flavor"] == "xgboost"
    assert set(manifest["files"]) == {"model.ubj", "estimator.json"}
    env = manifest["environment"]
    assert env.get("xgboost", env.get("xgboost-cpu")) == xgb.__version__
    assert (path / "model.ubj").read_bytes()[:1] == b"{"  # a UBJSON object
    spec = json.loads((path / "estimator.json").read_text())
    assert spec["kind"] == "classifier" and spec["classes"] == [0, 1]
    assert spec["classes_dtype"] == "int64" and spec["columns"] == []


def test_a_loaded_booster_predicts_on_one_thread(
    tmp_path: Path, cancer: Any, classifier: xgb.XGBClassifier
) -> None:
    x, y = cancer
    path = save_model(classifier, tmp_path / "m", signature=infer_signature(x, y))
    booster = load_model(path).estimator.booster
    assert json.loads(booster.save_config())["learner"]["generic_param"]["nthread"] == "1"


def test_a_multiclass_classifier_round_trips(tmp_path: Path) -> None:
    x, y = load_iris(return_X_y=True)
    clf = xgb.XGBClassifier(n_estimators=20, max_depth=3, n_jobs=1).fit(x, y)
    path = save_model(clf, tmp_path / "m", signature=infer_signature(x, y), methods=BOTH)
    out = load_model(path).predict(x)
    _same_bits(out["predict"], clf.predict(x))
    np.testing.assert_array_equal(out["predict_proba"], clf.predict_proba(x))
    assert out["predict_proba"].shape == (150, 3)


def test_a_regressor_answers_as_xgbregressor(tmp_path: Path) -> None:
    x, y = load_diabetes(return_X_y=True, as_frame=True)
    reg = xgb.XGBRegressor(n_estimators=50, max_depth=3, n_jobs=1).fit(x, y)
    path = save_model(reg, tmp_path / "m", signature=infer_signature(x, y))
    model = load_model(path, expected_digest=tree_digest(path))
    _same_bits(model.estimator.predict(model.model_input(_columns(x))), reg.predict(x))
    np.testing.assert_array_equal(model.predict(_columns(x))["predict"], reg.predict(x))
    assert not hasattr(model.estimator, "predict_proba")


def test_early_stopping_serves_the_best_iteration_as_the_estimator_does(
    tmp_path: Path, cancer: Any
) -> None:
    x, y = cancer
    clf = xgb.XGBClassifier(n_estimators=300, early_stopping_rounds=3, learning_rate=0.3, n_jobs=1)
    clf.fit(x[:400], y[:400], eval_set=[(x[400:], y[400:])], verbose=False)
    assert clf.best_iteration + 1 < clf.get_booster().num_boosted_rounds()
    path = save_model(clf, tmp_path / "m", signature=infer_signature(x, y), methods=BOTH)
    out = load_model(path).predict(_columns(x))
    np.testing.assert_array_equal(out["predict_proba"], clf.predict_proba(x))
    every_tree = clf.get_booster().inplace_predict(x)
    assert not np.array_equal(out["predict_proba"][:, 1], every_tree)


def test_a_raw_booster_answers_as_booster_predict(tmp_path: Path, cancer: Any) -> None:
    x, y = cancer
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 3, "nthread": 1},
                        xgb.DMatrix(x, label=y), num_boost_round=15)  # fmt: skip
    path = save_model(booster, tmp_path / "m", signature=infer_signature(x))
    got = load_model(path).predict(_columns(x))["predict"]
    np.testing.assert_array_equal(got, booster.predict(xgb.DMatrix(x)))


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
    clf = xgb.XGBClassifier(n_estimators=20, enable_categorical=True, max_cat_to_onehot=1,
                        n_jobs=1)
    clf.fit(train, y)
    sig = infer_signature(train, y)
    assert [s.dtype for s in sig.inputs] == ["float64", "string"]
    path = save_model(clf, tmp_path / "m", signature=sig, methods=BOTH)
    model = load_model(path)
    assert model.manifest.input_kind == "frame"
    # requests carry strings, in any order and subset: XGBoost maps them by value
    request = {"fare": np.array([10.0, 70.0, 20.0]),
               "city": np.array(["nice", "lyon", "nice"], dtype=object)}  # fmt: skip
    out = model.predict(request)
    in_process = pd.DataFrame({"fare": request["fare"],
                               "city": pd.Categorical(request["city"])})  # fmt: skip
    np.testing.assert_array_equal(out["predict_proba"], clf.predict_proba(in_process))
    np.testing.assert_array_equal(out["predict"], clf.predict(in_process))
    whole = model.predict(_columns(train.astype({"city": object})))
    np.testing.assert_array_equal(whole["predict"], clf.predict(train))
    # XGBoost refuses a category it never saw, in process too: the caller's error, named
    unseen = {"fare": np.array([1.0]), "city": np.array(["rome"], dtype=object)}
    with pytest.raises(InvalidInputError, match=r"^XGBoost refused the input: Found a category "
                       r"not in the training set .*`rome`$"):  # fmt: skip
        model.predict(unseen)


def test_a_pipeline_ending_in_xgboost_keeps_its_steps_as_a_skops_transform(
    tmp_path: Path, cancer: Any
) -> None:
    x, y = cancer
    pipe = make_pipeline(StandardScaler(), xgb.XGBClassifier(n_estimators=10, n_jobs=1)).fit(x, y)
    path = save_model(pipe, tmp_path / "m", signature=infer_signature(x, y), methods=BOTH)
    manifest = yaml.safe_load((path / MANIFEST_NAME).read_text())
    assert manifest["flavor"] == "xgboost"
    assert set(manifest["files"]) == {"model.ubj", "estimator.json", "transform.skops"}
    out = load_model(path).predict(_columns(x))
    np.testing.assert_array_equal(out["predict"], pipe.predict(x))
    np.testing.assert_array_equal(out["predict_proba"], pipe.predict_proba(x))


@pytest.mark.parametrize("name", ["model.ubj", "estimator.json"])
def test_a_tampered_file_is_refused_by_its_digest(
    tmp_path: Path, cancer: Any, classifier: xgb.XGBClassifier, name: str
) -> None:
    x, y = cancer
    path = save_model(classifier, tmp_path / "m", signature=infer_signature(x, y), methods=BOTH)
    recorded = tree_digest(path)
    with open(path / name, "ab") as f:
        f.write(b" ")
    with pytest.raises(InvalidInputError, match=rf"Bundle file '{name}' has sha256 .* the "
                       "manifest records"):  # fmt: skip
        load_model(path)
    with pytest.raises(InvalidInputError, match="the registry recorded"):
        load_model(path, expected_digest=recorded)


def test_a_bundle_whose_model_file_is_not_ubjson_says_so(tmp_path: Path, cancer: Any) -> None:
    x, y = cancer
    clf = xgb.XGBRegressor(n_estimators=3, n_jobs=1).fit(x, y)
    path = save_model(clf, tmp_path / "m", signature=infer_signature(x, y))
    (path / "model.ubj").write_bytes(b"not a model")
    manifest = yaml.safe_load((path / MANIFEST_NAME).read_text())
    manifest["files"]["model.ubj"] = __import__("hashlib").sha256(b"not a model").hexdigest()
    (path / MANIFEST_NAME).write_text(yaml.safe_dump(manifest))
    with pytest.raises(InvalidInputError, match=r"model\.ubj' could not be loaded by XGBoost"):
        load_model(path)


def test_loading_without_xgboost_names_the_extra_to_install(
    tmp_path: Path, cancer: Any, classifier: xgb.XGBClassifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    x, y = cancer
    path = save_model(classifier, tmp_path / "m", signature=infer_signature(x, y))
    monkeypatch.setitem(sys.modules, "xgboost", None)
    with pytest.raises(DependencyMissingError, match=r"pip install 'loopline\[xgboost\]'"):
        load_model(path)


def test_saving_an_xgboost_model_with_skops_is_refused(
    tmp_path: Path, cancer: Any, classifier: xgb.XGBClassifier
) -> None:
    x, y = cancer
    with pytest.raises(InvalidInputError, match="comes from xgboost; save it with flavor "
                       "'xgboost'"):  # fmt: skip
        save_model(classifier, tmp_path / "m", signature=infer_signature(x, y), flavor="sklearn")


def test_a_signature_whose_columns_differ_from_the_training_columns_is_refused(
    tmp_path: Path, cancer: Any, classifier: xgb.XGBClassifier
) -> None:
    x, _y = cancer
    renamed = x.rename(columns={"mean radius": "radius"})
    with pytest.raises(InvalidInputError, match=r"fitted on columns \['mean radius'.* but the "
                       r"signature lists \['radius'"):  # fmt: skip
        save_model(classifier, tmp_path / "a", signature=infer_signature(renamed))
    with pytest.raises(InvalidInputError, match="takes 30 features but the signature lists 29"):
        save_model(classifier, tmp_path / "b", signature=infer_signature(x.iloc[:, 1:]))
    with pytest.raises(InvalidInputError, match=r"shape \[-1, 4\]; use \[-1, 30\]"):
        save_model(classifier, tmp_path / "c", signature=infer_signature(np.zeros((2, 4))))


def test_a_string_column_the_model_does_not_treat_as_categorical_is_refused(
    tmp_path: Path,
) -> None:
    frame = pd.DataFrame({"fare": [1.0, 2.0, 3.0, 4.0], "code": [0.0, 1.0, 0.0, 1.0]})
    reg = xgb.XGBRegressor(n_estimators=2, n_jobs=1).fit(frame, [1.0, 2.0, 3.0, 4.0])
    as_strings = frame.astype({"code": str}).astype({"code": object})
    with pytest.raises(InvalidInputError, match="Column 'code' holds strings but the XGBoost "
                       "XGBRegressor does not treat it as a categorical feature"):  # fmt: skip
        save_model(reg, tmp_path / "m", signature=infer_signature(as_strings))


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"objective": "multi:softmax"}, "has objective 'multi:softmax'"),
        ({"booster": "gblinear"}, "uses booster 'gblinear'"),
    ],
)
def test_classifiers_whose_predict_is_not_argmax_of_proba_are_refused(
    tmp_path: Path, params: dict[str, str], message: str
) -> None:
    x, y = load_iris(return_X_y=True)
    clf = xgb.XGBClassifier(n_estimators=3, n_jobs=1, **params).fit(x, y)
    with pytest.raises(InvalidInputError, match=message):
        save_model(clf, tmp_path / "m", signature=infer_signature(x), methods=BOTH)


def test_an_unfitted_model_or_an_unserved_method_is_refused(
    tmp_path: Path, cancer: Any, classifier: xgb.XGBClassifier
) -> None:
    x, _y = cancer
    with pytest.raises(InvalidInputError, match="XGBClassifier is not fitted"):
        save_model(xgb.XGBClassifier(), tmp_path / "a", signature=infer_signature(x))
    with pytest.raises(InvalidInputError, match="'apply' is not served by its flavor"):
        save_model(classifier, tmp_path / "b", signature=infer_signature(x),
                   methods=("predict", "apply"))  # fmt: skip


def test_categorical_models_need_an_xgboost_that_maps_categories_by_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    train = pd.DataFrame({"fare": [1.0, 2.0, 3.0, 4.0],
                          "city": pd.Categorical(["a", "b", "a", "b"])})  # fmt: skip
    reg = xgb.XGBRegressor(n_estimators=2, enable_categorical=True, n_jobs=1)
    reg.fit(train, [1.0, 2.0, 3.0, 4.0])
    monkeypatch.setattr(xgb, "__version__", "2.1.4")
    with pytest.raises(InvalidInputError, match=r"XGBoost 2\.1\.4 cannot serve from strings .* "
                       r"install xgboost-cpu>=3\.1"):  # fmt: skip
        save_model(reg, tmp_path / "m", signature=infer_signature(train))
