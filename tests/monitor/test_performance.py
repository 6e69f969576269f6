"""Performance from labels: values equal scikit-learn's on real data, intervals are the named
methods (checked against SciPy and a brute-force DeLong), and bad input says what is wrong."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binomtest

from loopline.errors import InvalidInputError
from loopline.monitor import MetricValue, accuracy, auc, f1, mae, mape, precision, recall, rmse
from loopline.monitor.intervals import wilson_interval
from loopline.monitor.performance import classification_metrics
from loopline.monitor.regression import BOOTSTRAP_MAX_ROWS, regression_metrics

sklearn = pytest.importorskip("sklearn")
from sklearn import metrics as skm  # noqa: E402


@pytest.fixture(scope="module")
def cancer() -> dict[str, np.ndarray]:
    """A logistic regression on half of sklearn's breast-cancer data, scored on the other."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = load_breast_cancer(return_X_y=True)
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(x[::2], y[::2])
    return {
        "labels": y[1::2],
        "predictions": model.predict(x[1::2]),
        "scores": model.predict_proba(x[1::2])[:, 1],
    }


@pytest.fixture(scope="module")
def iris() -> dict[str, np.ndarray]:
    """A three-class model on iris with string labels."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    x, y = load_iris(return_X_y=True)
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    model = LogisticRegression(max_iter=5000, C=0.05).fit(x[::2], names[::2])
    return {
        "labels": names[1::2],
        "predictions": model.predict(x[1::2]),
        "scores": model.predict_proba(x[1::2]),
        "classes": model.classes_,
    }


@pytest.fixture(scope="module")
def diabetes() -> dict[str, np.ndarray]:
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import LinearRegression

    x, y = load_diabetes(return_X_y=True)
    model = LinearRegression().fit(x[::2], y[::2])
    return {"labels": y[1::2], "predictions": model.predict(x[1::2])}


def _inside(m: MetricValue) -> bool:
    assert m.value is not None and m.lower is not None and m.upper is not None
    return m.lower <= m.value <= m.upper


def test_binary_metrics_equal_scikit_learn_on_a_real_classifier(cancer):
    y, p, s = cancer["labels"], cancer["predictions"], cancer["scores"]
    assert accuracy(y, p).value == pytest.approx(skm.accuracy_score(y, p), abs=1e-12)
    assert precision(y, p).value == pytest.approx(skm.precision_score(y, p), abs=1e-12)
    assert recall(y, p).value == pytest.approx(skm.recall_score(y, p), abs=1e-12)
    assert f1(y, p).value == pytest.approx(skm.f1_score(y, p), abs=1e-12)
    assert auc(y, s).value == pytest.approx(skm.roc_auc_score(y, s), abs=1e-12)
    for metric in classification_metrics(y, p, s):
        assert _inside(metric), metric


def test_proportions_carry_the_wilson_interval_scipy_computes(cancer):
    y, p = cancer["labels"], cancer["predictions"]
    m = accuracy(y, p, confidence=0.9)
    ci = binomtest(int((y == p).sum()), len(y)).proportion_ci(0.9, method="wilson")
    assert (m.lower, m.upper) == pytest.approx((ci.low, ci.high), abs=1e-12)
    assert m.method == "Wilson score 90%"
    rec = recall(y, p)
    tp, positives = int(((y == 1) & (p == 1)).sum()), int((y == 1).sum())
    assert rec.n == positives
    assert (rec.lower, rec.upper) == pytest.approx(wilson_interval(tp, positives), abs=1e-12)


def test_the_auc_interval_uses_delongs_variance(cancer):
    """Brute force: ψ(x_i, y_j) over every positive–negative pair gives the placement values."""
    y, s = cancer["labels"], cancer["scores"]
    pos, neg = s[y == 1], s[y == 0]
    psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    v10, v01 = psi.mean(axis=1), psi.mean(axis=0)
    se = np.sqrt(v10.var(ddof=1) / len(pos) + v01.var(ddof=1) / len(neg))
    m = auc(y, s)
    assert m.method.startswith("DeLong")
    assert m.value == pytest.approx(psi.mean(), abs=1e-12)
    assert m.upper == pytest.approx(min(1.0, psi.mean() + 1.959963984540054 * se), abs=1e-9)
    assert m.lower == pytest.approx(psi.mean() - 1.959963984540054 * se, abs=1e-9)


def test_the_wilson_interval_covers_the_population_accuracy_in_repeated_windows(cancer):
    """Windows of 60 rows drawn from the scored half: the 95 % interval covers the half's own
    accuracy in at least 90 % of 400 windows (nominal 95 %)."""
    y, p = cancer["labels"], cancer["predictions"]
    truth = float((y == p).mean())
    rng = np.random.default_rng(7)
    covered = 0
    for _ in range(400):
        rows = rng.choice(len(y), size=60, replace=False)
        m = accuracy(y[rows], p[rows])
        covered += m.lower <= truth <= m.upper
    assert covered / 400 >= 0.90


def test_multiclass_string_labels_give_macro_averages_as_scikit_learn(iris):
    y, p = iris["labels"], iris["predictions"]
    assert precision(y, p).value == pytest.approx(
        skm.precision_score(y, p, average="macro", zero_division=0), abs=1e-12
    )
    assert recall(y, p).value == pytest.approx(skm.recall_score(y, p, average="macro"), abs=1e-12)
    m = f1(y, p)
    assert m.value == pytest.approx(skm.f1_score(y, p, average="macro"), abs=1e-12)
    assert "macro average over 3 classes" in m.method
    a = auc(y, iris["scores"], classes=iris["classes"])
    assert a.value == pytest.approx(
        skm.roc_auc_score(y, iris["scores"], multi_class="ovr"), abs=1e-12
    )
    assert _inside(m) and _inside(a)


def test_a_named_positive_class_gives_the_binary_metric_of_that_class(iris):
    y, p = iris["labels"], iris["predictions"]
    m = precision(y, p, positive_class="virginica")
    assert m.value == pytest.approx(
        skm.precision_score(y, p, labels=["virginica"], average="macro"), abs=1e-12
    )
    assert m.method.startswith("Wilson")


def test_bootstrap_intervals_are_reproducible_for_a_seed(iris):
    y, p = iris["labels"], iris["predictions"]
    assert f1(y, p, seed=3) == f1(y, p, seed=3)
    assert (f1(y, p, seed=3).lower, f1(y, p, seed=3).upper) != (
        f1(y, p, seed=4).lower,
        f1(y, p, seed=4).upper,
    )


def test_regression_metrics_equal_scikit_learn_with_bootstrap_intervals(diabetes):
    y, p = diabetes["labels"], diabetes["predictions"]
    r, a, pct = regression_metrics(y, p)
    assert r.value == pytest.approx(skm.root_mean_squared_error(y, p), rel=1e-12)
    assert a.value == pytest.approx(skm.mean_absolute_error(y, p), rel=1e-12)
    assert pct.value == pytest.approx(skm.mean_absolute_percentage_error(y, p), rel=1e-12)
    for m in (r, a, pct):
        assert _inside(m)
        assert m.method == "bootstrap percentile, 1000 resamples of the rows, seed 0"
        assert m.n == len(y)


def test_large_windows_use_the_normal_approximation_and_agree_with_the_bootstrap(diabetes):
    y, p = diabetes["labels"], diabetes["predictions"]
    reps = BOOTSTRAP_MAX_ROWS // len(y) + 1
    big_y, big_p = np.tile(y, reps), np.tile(p, reps)
    normal = mae(big_y, big_p)
    assert normal.method.startswith("normal approximation")
    resampled = mae(big_y[:BOOTSTRAP_MAX_ROWS], big_p[:BOOTSTRAP_MAX_ROWS])
    assert resampled.method.startswith("bootstrap")
    width = resampled.upper - resampled.lower
    assert normal.upper - normal.lower == pytest.approx(width, rel=0.15)


def test_undefined_metrics_have_no_value_and_say_why():
    m = auc([1, 1, 1], [0.2, 0.5, 0.9])
    assert m.value is None and "both classes" in m.reason
    m = precision(["yes", "no"], ["no", "no"], positive_class="yes")
    assert m.value is None and "No row is predicted as the positive class" in m.reason
    m = mape([0.0, 2.0], [1.0, 2.0])
    assert m.value is None and "1 of 2 labels are 0" in m.reason


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: accuracy([], []), "labels is empty"),
        (lambda: accuracy([1, 0, 1], [1, 0]), "labels has 3 rows but predictions has 2"),
        (lambda: accuracy(["a", "b"], [1, 0]), "labels are strings but predictions are numbers"),
        (lambda: accuracy(np.array(["a", None], dtype=object), ["a", "b"]), "1 missing value"),
        (lambda: accuracy([1.0, np.nan], [1.0, 0.0]), r"missing value\(s\) \(NaN\)"),
        (lambda: precision(["yes", "no"], ["yes", "yes"]), "Name the positive class"),
        (lambda: recall(["yes", "no"], ["yes", "no"], positive_class=1), "name it as it appears"),
        (lambda: accuracy([1, 0], [1, 0], confidence=95), "confidence must be between 0 and 1"),
        (lambda: auc([0, 1], [[0.1, 0.9], [0.8, 0.2]]), "2-d scores need classes"),
        (lambda: rmse([1.0, 2.0], ["a", "b"]), "predictions must be numbers"),
        (lambda: mae([1.0, np.inf], [1.0, 2.0]), "labels has 1 missing or infinite"),
        (lambda: f1([1, 0], [1, 0], resamples=3), "resamples must be at least 10"),
    ],
)
def test_bad_input_raises_an_error_naming_the_problem(call, message):
    with pytest.raises(InvalidInputError, match=message):
        call()


def test_metric_values_serialise_to_plain_dicts(cancer):
    doc = accuracy(cancer["labels"], cancer["predictions"]).to_dict()
    assert set(doc) == {"name", "value", "lower", "upper", "n", "method", "reason"}
    assert doc["name"] == "accuracy" and doc["reason"] is None
