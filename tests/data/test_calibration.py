"""calibrate: per-feature thresholds from reference chunks, checked on real flights data."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from loopline.data import (
    Calibration,
    DType,
    FeatureSchema,
    Metric,
    Schema,
    Threshold,
    calibrate,
    calibrate_from_profile,
    compare,
    profile_table,
)
from loopline.errors import InvalidInputError

WINDOW = 300


@pytest.fixture(scope="module")
def halves(flights: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Two random halves of January: no drift between them by construction."""
    jan = (
        flights.filter(pl.col("month") == 1)
        .drop("month")
        .sample(fraction=1.0, shuffle=True, seed=1)
    )
    half = jan.height // 2
    return jan[:half], jan[half:]


def alarm_rate(
    reference: pl.DataFrame, windows: pl.DataFrame, calibration: Calibration | None
) -> tuple[float, int]:
    profile = profile_table(reference)
    alarms = checks = 0
    for i in range(windows.height // WINDOW):
        window = windows[i * WINDOW : (i + 1) * WINDOW]
        report = compare(profile, profile_table(window, reference=profile), calibration=calibration)
        for f in report.features:
            checks += len(f.checks)
            alarms += sum(c.drifted for c in f.checks)
    return alarms / checks, checks


@pytest.mark.parametrize("rate", [0.05, 0.01])
def test_without_drift_the_false_alarm_rate_is_near_the_chosen_one(
    halves: tuple[pl.DataFrame, pl.DataFrame], rate: float
) -> None:
    ref, other = halves
    cal = calibrate(ref, profile_table(ref), window_rows=WINDOW, false_alarm_rate=rate)
    assert cal.sampling == "chunks" and cal.window_rows == WINDOW
    observed, checks = alarm_rate(ref, other, cal)
    assert checks > 500  # 45 windows × 13 checks
    assert 0.0 < observed <= 2.0 * rate  # not 0 (thresholds too lax), not ≫ (too tight)


def test_a_real_shift_is_still_caught(halves: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    ref, other = halves
    profile = profile_table(ref)
    cal = calibrate(ref, profile, window_rows=WINDOW)
    sd = float(ref["dep_delay"].std(ddof=0) or 0.0)
    window = other[:WINDOW].with_columns(
        pl.col("dep_delay") + 0.4 * sd,
        pl.when(pl.int_range(pl.len()) % 4 == 0)
        .then(pl.lit("LAX"))
        .otherwise(pl.col("dest"))
        .alias("dest"),
    )
    report = compare(profile, profile_table(window, reference=profile), calibration=cal)
    assert {"dep_delay", "dest"} <= set(report.drifted_features)
    check = report["dep_delay"].checks[0]
    assert check.calibrated and check.threshold == cal.threshold("dep_delay", check.metric)


def test_thresholds_shrink_as_windows_grow(halves: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    ref, _ = halves
    profile = profile_table(ref)
    small = calibrate(ref, profile, window_rows=100)
    big = calibrate(ref, profile, window_rows=400)
    w1 = Metric.NORMALIZED_WASSERSTEIN
    for name in ("dep_delay", "distance", "air_time"):
        ratio = (small.threshold(name, w1) or 0.0) / (big.threshold(name, w1) or 1.0)
        assert 1.4 < ratio < 2.8, (name, ratio)  # about √4 = 2


def test_from_the_profile_alone_the_thresholds_agree_with_the_rows(
    halves: tuple[pl.DataFrame, pl.DataFrame],
) -> None:
    ref, _ = halves
    profile = profile_table(ref)
    rows = calibrate(ref, profile, window_rows=100, chunks=120)
    counts = calibrate_from_profile(profile, 100, chunks=120)
    assert counts.sampling == "profile"
    for f in rows.features:
        for metric, c in f.metrics.items():
            other = next(g for g in counts.features if g.name == f.name).metrics[metric]
            # The mean chunk distance is a stable statistic; a 99 % quantile from 120 chunks
            # is not, so thresholds agree more loosely.
            assert other.mean == pytest.approx(c.mean, rel=0.15, abs=0.005), (f.name, metric)
            assert other.threshold == pytest.approx(c.threshold, rel=0.4, abs=0.005)


def test_a_schema_pinned_threshold_wins_over_the_calibrated_one(
    halves: tuple[pl.DataFrame, pl.DataFrame],
) -> None:
    ref, other = halves
    profile = profile_table(ref)
    pin = Threshold(Metric.NORMALIZED_WASSERSTEIN, 0.5)
    schema = Schema((FeatureSchema("distance", DType.INT, drift=(pin,)),))
    cal = calibrate(ref, profile, window_rows=WINDOW, schema=schema)
    pinned = next(f for f in cal.features if f.name == "distance").metrics[pin.metric]
    assert pinned.pinned and pinned.threshold == 0.5
    window = profile_table(other[:WINDOW], reference=profile)
    check = compare(profile, window, schema, calibration=cal)["distance"].checks[0]
    assert (check.threshold, check.calibrated) == (0.5, False)
    default = compare(profile, window, calibration=cal)["air_time"].checks[0]
    assert default.calibrated and default.threshold != 0.1


def test_few_rows_are_bootstrapped_and_new_values_then_keep_their_default(
    halves: tuple[pl.DataFrame, pl.DataFrame],
) -> None:
    ref, _ = halves
    small = ref[:2_000]
    cal = calibrate(small, profile_table(small), window_rows=WINDOW)
    assert cal.sampling == "bootstrap"
    assert cal.threshold("dest", Metric.NEW_VALUE_EXCESS) is None
    assert cal.threshold("dest", Metric.JENSEN_SHANNON) is not None


def test_calibration_round_trips_through_json(halves: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    ref, _ = halves
    cal = calibrate(ref, profile_table(ref), window_rows=WINDOW, chunks=10, seed=7)
    assert Calibration.from_json(cal.to_json()) == cal
    f = cal.features[0]
    c = next(iter(f.metrics.values()))
    assert c.chunks == 10 and c.std >= 0.0 and c.threshold >= c.mean
    with pytest.raises(InvalidInputError, match="not a loopline.calibration/v1 calibration"):
        Calibration.from_json('{"format": "other"}')


def test_an_arrow_table_calibrates_like_its_polars_frame(
    halves: tuple[pl.DataFrame, pl.DataFrame],
) -> None:
    ref, _ = halves
    profile = profile_table(ref)
    assert calibrate(ref.to_arrow(), profile, window_rows=200) == calibrate(
        ref, profile, window_rows=200
    )


def test_calibration_is_reproducible_from_its_seed(
    halves: tuple[pl.DataFrame, pl.DataFrame],
) -> None:
    ref, _ = halves
    profile = profile_table(ref)
    assert calibrate(ref, profile, window_rows=200, seed=3) == calibrate(
        ref, profile, window_rows=200, seed=3
    )


def test_bad_arguments_name_the_field(halves: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    ref, _ = halves
    profile = profile_table(ref)
    with pytest.raises(InvalidInputError, match="window_rows=1 must be an integer of at least 2"):
        calibrate(ref, profile, window_rows=1)
    with pytest.raises(InvalidInputError, match=r"false_alarm_rate=0\.7 must be in \(0, 0\.5\)"):
        calibrate(ref, profile, window_rows=100, false_alarm_rate=0.7)
    with pytest.raises(InvalidInputError, match="chunks=2 must be an integer of at least 5"):
        calibrate_from_profile(profile, 100, chunks=2)
    with pytest.raises(InvalidInputError, match=r"lacks the profiled columns \['dest'\]"):
        calibrate(ref.drop("dest"), profile, window_rows=100)
    with pytest.raises(InvalidInputError, match="non-empty Polars DataFrame"):
        calibrate(ref[:0], profile, window_rows=100)


def test_a_constant_column_gets_a_positive_threshold() -> None:
    rng = np.random.default_rng(0)
    ref = pl.DataFrame({"c": np.full(5_000, 3.0), "x": rng.normal(size=5_000)})
    profile = profile_table(ref)
    cal = calibrate(ref, profile, window_rows=100)
    assert (cal.threshold("c", Metric.NORMALIZED_WASSERSTEIN) or 0.0) > 0.0
    same = profile_table(ref[:100], reference=profile)
    assert not compare(profile, same, calibration=cal)["c"].drifted
