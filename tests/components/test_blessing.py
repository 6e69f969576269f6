"""Blessing semantics, case by case (TFMA metrics_validator code semantics)."""

from __future__ import annotations

import math

import pytest

from loopline.components import MetricThreshold, validate_metrics
from loopline.errors import InvalidInputError

NOT_WORSE = MetricThreshold("auc", direction="higher_is_better", absolute=-0.01)
FLOOR = MetricThreshold("auc", lower=0.7)


def m(**values: float) -> dict[str, float]:
    return {"example_count": 100.0, **values}


def test_first_run_ignores_change_thresholds_by_default() -> None:
    v = validate_metrics({"overall": m(auc=0.8)}, None, [FLOOR, NOT_WORSE])
    assert v.blessed
    assert [c.kind for c in v.checks] == ["value"]
    assert "change thresholds skipped" in v.notes[0]


def test_first_run_still_fails_a_value_threshold() -> None:
    v = validate_metrics({"overall": m(auc=0.65)}, None, [FLOOR, NOT_WORSE])
    assert not v.blessed
    assert v.failures == ("auc on slice overall: 0.65 < lower bound 0.7",)


def test_first_run_policies_bless_and_fail() -> None:
    assert validate_metrics({"overall": m(auc=0.1)}, None, [FLOOR], on_no_baseline="bless").blessed
    v = validate_metrics({"overall": m(auc=0.9)}, None, [FLOOR], on_no_baseline="fail")
    assert not v.blessed
    assert "no baseline model" in v.failures[0]


def test_regression_against_the_baseline_is_not_blessed_with_a_readable_reason() -> None:
    v = validate_metrics(
        {"overall": m(auc=0.72), "company=Flash Cab": m(auc=0.71)},
        {"overall": m(auc=0.72), "company=Flash Cab": m(auc=0.74)},
        [NOT_WORSE],
    )
    assert not v.blessed
    assert v.failures == ("auc on slice company=Flash Cab: 0.71 < baseline 0.74 − 0.01",)


def test_change_within_the_allowed_absolute_drop_is_blessed() -> None:
    v = validate_metrics({"overall": m(auc=0.735)}, {"overall": m(auc=0.74)}, [NOT_WORSE])
    assert v.blessed


def test_relative_change_uses_the_code_semantics_diff_over_baseline() -> None:
    t = MetricThreshold("auc", direction="higher_is_better", relative=-0.02)
    # (0.73 - 0.74) / 0.74 = -0.0135 >= -0.02: passes (the docs' v/v_b would be 0.986)
    assert validate_metrics({"overall": m(auc=0.73)}, {"overall": m(auc=0.74)}, [t]).blessed
    v = validate_metrics({"overall": m(auc=0.70)}, {"overall": m(auc=0.74)}, [t])
    assert v.failures == ("auc on slice overall: 0.7 < baseline 0.74 × (1 − 0.02) = 0.7252",)


def test_lower_is_better_mirrors_the_comparisons() -> None:
    t = MetricThreshold("log_loss", direction="lower_is_better", absolute=0.01)
    assert validate_metrics(
        {"overall": m(log_loss=0.305)}, {"overall": m(log_loss=0.3)}, [t]
    ).blessed
    v = validate_metrics({"overall": m(log_loss=0.32)}, {"overall": m(log_loss=0.3)}, [t])
    assert v.failures == ("log_loss on slice overall: 0.32 > baseline 0.3 + 0.01",)


def test_zero_baseline_makes_the_ratio_nan_and_fails_as_tfma_does() -> None:
    v = validate_metrics(
        {"overall": m(r2=0.5)},
        {"overall": m(r2=0.0)},
        [MetricThreshold("r2", direction="higher_is_better", absolute=-1.0)],
    )
    assert not v.blessed
    assert "relative change undefined" in v.failures[0]


def test_one_failing_slice_fails_the_blessing() -> None:
    v = validate_metrics(
        {"overall": m(auc=0.8), "company=A": m(auc=0.75), "company=B": m(auc=0.6)}, None, [FLOOR]
    )
    assert not v.blessed
    assert v.failures == ("auc on slice company=B: 0.6 < lower bound 0.7",)
    assert sum(c.passed for c in v.checks) == 2


def test_missing_metric_fails_with_metric_not_found() -> None:
    v = validate_metrics({"overall": m(accuracy=0.9)}, None, [FLOOR])
    assert v.failures == ("auc on slice overall: metric not found",)
    v = validate_metrics({"overall": m(auc=0.9)}, {"overall": m()}, [NOT_WORSE])
    assert v.failures == ("auc on slice overall: metric not found for the baseline",)


def test_nan_metric_fails_every_threshold() -> None:
    v = validate_metrics({"overall": m(auc=math.nan)}, None, [FLOOR])
    assert v.failures == ("auc on slice overall: value is NaN",)


def test_slice_selectors_limit_where_a_threshold_applies() -> None:
    only_overall = MetricThreshold("auc", lower=0.7, slices=("overall",))
    by_feature = MetricThreshold("auc", lower=0.7, slices=("company",))
    one_slice = MetricThreshold("auc", lower=0.7, slices=("company=B",))
    metrics = {"overall": m(auc=0.8), "company=B": m(auc=0.6), "hour=3": m(auc=0.1)}
    assert validate_metrics(metrics, None, [only_overall]).blessed
    assert not validate_metrics(metrics, None, [by_feature]).blessed
    assert validate_metrics(metrics, None, [one_slice]).failures == (
        "auc on slice company=B: 0.6 < lower bound 0.7",
    )


def test_small_slices_are_skipped_and_a_small_overall_fails() -> None:
    metrics = {"overall": m(auc=0.8), "company=tiny": {"example_count": 3.0, "auc": 0.1}}
    v = validate_metrics(metrics, None, [FLOOR], min_examples=10)
    assert v.blessed
    assert v.notes == ("slice company=tiny skipped: 3 examples < min_examples 10",)
    v = validate_metrics(
        {"overall": {"example_count": 3.0, "auc": 0.9}}, None, [FLOOR], min_examples=10
    )
    assert not v.blessed
    assert "fewer than min_examples 10" in v.failures[0]


def test_no_thresholds_is_an_explicit_policy() -> None:
    v = validate_metrics({"overall": m(auc=0.5)}, None, [])
    assert not v.blessed
    assert "no thresholds configured" in v.failures[0]
    assert validate_metrics({"overall": m(auc=0.5)}, None, [], on_no_thresholds="bless").blessed


def test_threshold_definitions_are_validated() -> None:
    with pytest.raises(InvalidInputError, match="sets no bound"):
        MetricThreshold("auc")
    with pytest.raises(InvalidInputError, match="needs direction"):
        MetricThreshold("auc", absolute=0.1)
    with pytest.raises(InvalidInputError, match=r"unknown key\(s\) \['lowr'\]"):
        MetricThreshold.from_dict({"metric": "auc", "lowr": 0.5})
    with pytest.raises(InvalidInputError, match="lower='high' must be a number"):
        MetricThreshold.from_dict({"metric": "auc", "lower": "high"})
    with pytest.raises(InvalidInputError, match="on_no_baseline='maybe'"):
        validate_metrics({}, None, [FLOOR], on_no_baseline="maybe")  # type: ignore[arg-type]
