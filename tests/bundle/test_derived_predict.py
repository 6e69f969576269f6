"""predict derived from predict_proba: the pipeline runs once, the labels are sklearn's own."""

from __future__ import annotations

import logging
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
from loopline.bundle.derived_predict import ProbaArgmax, checked, proba_argmax
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


def test_a_derivation_that_differs_from_predict_on_the_example_is_dropped_with_a_warning(
    cancer: Any, caplog: pytest.LogCaptureFixture
) -> None:
    x, y = cancer
    x = StandardScaler().fit_transform(x)
    lr = LogisticRegression().fit(x, y)

    class Disagreeing(LogisticRegression):  # predict says the opposite of its probabilities
        def predict(self, X: Any) -> Any:
            return 1 - super().predict(X)

    Disagreeing.__module__ = LogisticRegression.__module__
    Disagreeing.__name__ = "LogisticRegression"
    odd = Disagreeing().fit(x, y)
    assert checked(lr, BOTH, x[:5], "lr") is not None
    with caplog.at_level(logging.WARNING, logger="loopline.bundle.derived_predict"):
        assert checked(odd, BOTH, x[:5], "odd") is None
    assert "differs from its own on the example batch" in caplog.text


def test_labels_of_an_empty_batch_are_empty() -> None:
    derived = ProbaArgmax(classes=np.array(["a", "b"], dtype=object), exact=False)
    labels = derived.labels(np.zeros((0, 2)), np.zeros((0, 1)), lambda x: np.array([]))
    assert labels.shape == (0,)
