"""predict derived from predict_proba: the pipeline runs once, the labels are sklearn's own."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_breast_cancer, load_iris
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from tests.bundle.taxi_model import taxi

from loopline.bundle import coerce_batch, infer_signature, load_model, save_model
from loopline.bundle.derived_predict import ProbaArgmax, proba_argmax
from loopline.bundle.signature import _columns_of

BOTH = ("predict", "predict_proba")


def identical(a: Any, b: Any) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    return bool(np.array_equal(a, b)) if a.dtype.kind == "O" else a.tobytes() == b.tobytes()


@pytest.fixture(scope="module")
def cancer() -> tuple[np.ndarray, np.ndarray]:
    return load_breast_cancer(return_X_y=True)  # type: ignore[return-value]


def test_the_taxi_model_runs_its_pipeline_once_and_answers_exactly_as_sklearn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline, x, _ = taxi()
    path = save_model(
        pipeline, tmp_path / "taxi", signature=infer_signature(x), methods=BOTH,
        input_example=x.head(5),
    )  # fmt: skip
    model = load_model(path, compiled=False)
    assert model.argmax is not None and model.serving_path == "sklearn"
    batch, _ = coerce_batch(model.signature, dict(_columns_of(x) or []))
    runs = []
    transform = ColumnTransformer.transform
    monkeypatch.setattr(
        ColumnTransformer, "transform", lambda self, x: runs.append(1) or transform(self, x)
    )
    out = model.predict(batch)
    assert len(runs) == 1  # predict_proba's run only; before, predict ran the pipeline again
    monkeypatch.undo()
    assert identical(out["predict"], pipeline.predict(x))
    assert identical(out["predict_proba"], pipeline.predict_proba(x))
    for row in range(0, len(x), 997):  # one-row batches, as requests arrive
        one = model.predict({k: v[row : row + 1] for k, v in batch.items()})
        assert identical(one["predict"], pipeline.predict(x.iloc[row : row + 1]))


@pytest.mark.parametrize(
    "make",
    [
        lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)),
        lambda: RandomForestClassifier(n_estimators=30, max_depth=6, random_state=0),
        lambda: HistGradientBoostingClassifier(max_iter=30, random_state=0),
    ],
    ids=["logistic-regression", "forest", "hist-gradient-boosting"],
)
def test_linear_and_tree_models_on_real_data_give_sklearns_labels(
    tmp_path: Path, cancer: Any, make: Any
) -> None:
    x, y = cancer
    labels = np.where(y == 1, "benign", "malignant").astype(object)
    for target in (y, labels):
        estimator = make().fit(x, target)
        path = save_model(
            estimator, tmp_path / f"m{target.dtype}", signature=infer_signature(x, target),
            methods=BOTH, input_example=x[:5],
        )  # fmt: skip
        model = load_model(path, compiled=False)
        assert model.argmax is not None
        out = model.predict(x)
        assert np.array_equal(out["predict"], estimator.predict(x))
        assert identical(out["predict_proba"], estimator.predict_proba(x))


def test_multiclass_labels_are_sklearns(tmp_path: Path) -> None:
    x, y = load_iris(return_X_y=True)
    estimator = LogisticRegression(max_iter=1000).fit(x, y)
    derived = proba_argmax(estimator, BOTH)
    assert derived is not None and not derived.exact
    assert identical(
        derived.labels(estimator.predict_proba(x), x, estimator.predict), estimator.predict(x)
    )


def tiny_score_model() -> LogisticRegression:
    """A binary logistic regression whose score is the input itself (coef 1, intercept 0)."""
    model = LogisticRegression().fit(np.array([[-1.0], [1.0]]), np.array([0, 1]))
    model.coef_ = np.array([[1.0]])
    model.intercept_ = np.array([0.0])
    return model


def test_a_probability_tie_takes_the_label_predict_gives_not_the_first_maximum() -> None:
    model = tiny_score_model()
    x = np.array([[1e-17], [0.0], [-1e-17], [0.3]])
    proba = model.predict_proba(x)
    assert proba[0, 0] == proba[0, 1] == 0.5  # expit(1e-17) rounds to 0.5 exactly
    assert list(np.argmax(proba, axis=1)) == [0, 0, 0, 1]  # the first maximum
    assert list(model.predict(x)) == [1, 0, 0, 1]  # but the score 1e-17 is > 0
    derived = proba_argmax(model, BOTH)
    assert derived is not None
    assert list(derived.labels(proba, x, model.predict)) == [1, 0, 0, 1]


def test_a_forest_tie_is_the_first_maximum_as_in_sklearn(cancer: Any) -> None:
    x, y = cancer
    forest = RandomForestClassifier(n_estimators=2, random_state=0).fit(x, y)  # pure leaves
    proba = forest.predict_proba(x)
    ties = np.flatnonzero(proba[:, 0] == proba[:, 1])
    assert ties.size  # two trees disagreeing: [0.5, 0.5]
    derived = proba_argmax(forest, BOTH)
    assert derived is not None and derived.exact
    labels = derived.labels(proba, x, forest.predict)
    assert identical(labels, forest.predict(x))
    assert set(labels[ties]) == {forest.classes_[0]}


def test_only_known_sklearn_classifiers_serving_both_methods_are_derived(cancer: Any) -> None:
    x, y = cancer
    calibrated = CalibratedClassifierCV(SVC(), ensemble=False).fit(x[:200], y[:200])
    assert proba_argmax(calibrated, BOTH) is None  # not on the list: both methods are called
    lr = make_pipeline(StandardScaler(), LogisticRegression()).fit(x, y)
    assert proba_argmax(lr, ("predict",)) is None
    assert proba_argmax(lr, BOTH) is not None


def test_labels_of_an_empty_batch_are_empty() -> None:
    derived = ProbaArgmax(classes=np.array(["a", "b"], dtype=object), exact=False)
    labels = derived.labels(np.zeros((0, 2)), np.zeros((0, 1)), lambda x: np.array([]))
    assert labels.shape == (0,)


def test_a_native_boosters_predict_comes_from_its_probabilities_too(
    tmp_path: Path, cancer: Any
) -> None:
    import xgboost as xgb

    x, y = cancer
    booster = xgb.XGBClassifier(n_estimators=10, max_depth=3, n_jobs=1).fit(x, y)
    path = save_model(
        booster, tmp_path / "xgb", signature=infer_signature(x, y), methods=BOTH,
        input_example=x[:5],
    )  # fmt: skip
    model = load_model(path)
    assert model.manifest.flavor == "xgboost"
    assert model.argmax is not None and model.argmax.exact
    out = model.predict(x)
    assert np.array_equal(out["predict"], booster.predict(x))
    assert np.array_equal(out["predict_proba"], booster.predict_proba(x).astype(np.float64))


def predict_in_child(model: Any, batch: Any, out: Any) -> None:
    out.put(model.predict(batch)["predict"].tolist())


@pytest.mark.parametrize("compiled", [False, True], ids=["sklearn", "onnx"])
def test_a_loaded_openmp_model_still_predicts_in_a_forked_worker(
    tmp_path: Path, compiled: bool
) -> None:
    """A model server loads once and forks its workers: nothing at load may start OpenMP
    (histogram gradient boosting's predict does, and GNU OpenMP hangs after fork)."""
    pipeline, x, _ = taxi()
    path = save_model(
        pipeline, tmp_path / "taxi", signature=infer_signature(x), methods=BOTH,
        input_example=x.head(5), compile="auto" if compiled else "off", check_data=x,
    )  # fmt: skip
    code = (  # a fresh process: this one already ran OpenMP when it fitted the model
        "import multiprocessing, sys\n"
        "from loopline.bundle import load_model\n"
        f"model = load_model({str(path)!r})\n"
        f"assert model.serving_path == {'onnx' if compiled else 'sklearn'!r}\n"
        "from tests.bundle.test_derived_predict import predict_in_child\n"
        "queue = multiprocessing.get_context('fork').Queue()\n"
        "child = multiprocessing.get_context('fork').Process(\n"
        "    target=predict_in_child, args=(model, model.example_batch(), queue))\n"
        "child.start()\n"
        "print(queue.get(timeout=60))\n"
        "child.join(10)\n"
        "sys.exit(child.exitcode)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=240,
        cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == str(pipeline.predict(x.head(5)).tolist())
