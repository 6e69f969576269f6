"""compare(reference, current): distances from profiles, verdicts on known drift."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import wasserstein_distance

from loopline.data import (
    DType,
    FeatureSchema,
    Metric,
    Schema,
    Threshold,
    compare,
    infer_schema,
    profile_table,
)
from loopline.errors import InvalidInputError

from .conftest import LABELS  # noqa: TID252


@pytest.fixture(scope="module")
def report(drift_pair: tuple[pa.Table, pa.Table]):  # type: ignore[no-untyped-def]
    ref, cur = drift_pair
    pr = profile_table(ref)
    return compare(pr, profile_table(cur, reference=pr))


def test_verdicts_match_the_ground_truth(report) -> None:  # type: ignore[no-untyped-def]
    drifted = set(report.drifted_features)
    expected = {c for c, label in LABELS.items() if label in ("moderate", "large")}
    assert drifted == expected
    assert report.share == pytest.approx(len(expected) / len(LABELS))
    assert not report.dataset_drift


def test_normalized_wasserstein_from_profiles_matches_scipy_on_raw_rows(
    drift_pair: tuple[pa.Table, pa.Table],
    report,  # type: ignore[no-untyped-def]
) -> None:
    ref, cur = drift_pair
    for name in [c for c in LABELS if c.startswith("n_")]:
        r = ref[name].to_numpy().astype(float)
        c = cur[name].to_numpy().astype(float)
        expected = wasserstein_distance(r, c) / max(np.std(r), 1e-3)
        got = report[name].metrics[Metric.NORMALIZED_WASSERSTEIN]
        assert got == pytest.approx(expected, abs=0.003), name


def test_histogram_distances_match_scipy_on_the_bucket_counts(
    drift_pair: tuple[pa.Table, pa.Table],
) -> None:
    ref, cur = drift_pair
    pr = profile_table(ref)
    pc = profile_table(cur, reference=pr)
    report = compare(pr, pc)
    for name in ("n_shift_large", "n_same"):
        a, b = pr[name].numeric, pc[name].numeric
        assert a is not None and b is not None
        expected = jensenshannon(a.bucket_counts, b.bucket_counts, base=2)
        assert report[name].metrics[Metric.JENSEN_SHANNON] == pytest.approx(expected, abs=1e-9)
    # Categorical with exact counts: every category of either side is its own cell.
    for name in ("c_wide_same", "c_wide_new_values"):
        ref_counts = dict(zip(*np.unique(ref[name].to_numpy(), return_counts=True), strict=True))
        cur_counts = dict(zip(*np.unique(cur[name].to_numpy(), return_counts=True), strict=True))
        cells = sorted(set(ref_counts) | set(cur_counts))
        expected = jensenshannon(
            [ref_counts.get(v, 0) for v in cells], [cur_counts.get(v, 0) for v in cells], base=2
        )
        assert report[name].method == "all_categories"
        assert report[name].metrics[Metric.JENSEN_SHANNON] == pytest.approx(expected, abs=1e-9)


def test_new_values_beyond_good_turing_are_caught(report) -> None:  # type: ignore[no-untyped-def]
    new = report["c_wide_new_values"]
    same = report["c_wide_same"]
    assert new.metrics[Metric.NEW_VALUE_EXCESS] == pytest.approx(0.03, abs=0.006)
    assert abs(same.metrics[Metric.NEW_VALUE_EXCESS]) < 0.005
    # Every new value is its own cell, so JS moves too, but sits near its sampling noise
    # on this 5,000-level column: the new-value excess is the check that is sure of it.
    (js, nv) = new.checks
    assert js.value > same.checks[0].value
    assert (nv.drifted, nv.unit) == (True, "share")
    assert nv.value > 5 * nv.noise  # type: ignore[operator]


def test_high_cardinality_no_drift_column_stays_quiet_at_small_sizes() -> None:
    from .conftest import synthetic  # noqa: TID252

    for rows in (2_000, 20_000):
        ref, cur = synthetic(rows, False, 11), synthetic(rows, True, 12)
        pr = profile_table(ref)
        rep = compare(pr, profile_table(cur, reference=pr))
        quiet = {c for c, label in LABELS.items() if label in ("none", "tiny")}
        assert quiet.isdisjoint(rep.drifted_features), rep.drifted_features
        assert {"n_shift_large", "c_moved"} <= set(rep.drifted_features)
        js = rep["c_wide_same"].checks[0]
        assert js.metric is Metric.JENSEN_SHANNON and js.noise is not None
        if rows == 20_000:  # 3 % new values clear the noise guard at 20k rows, not at 2k
            assert rep["c_wide_new_values"].drifted


def test_sampling_noise_guard_shrinks_with_sample_size() -> None:
    from loopline.data.noise import sampling_noise

    small = sampling_noise(51, 2_000, 2_000)[Metric.JENSEN_SHANNON]
    big = sampling_noise(51, 1_000_000, 1_000_000)[Metric.JENSEN_SHANNON]
    assert small > 0.1 > 0.01 > big
    assert small / big == pytest.approx((500.0) ** 0.5)
    # Simulated no-drift JS on 51 cells exceeds the guard in well under 1 % of trials.
    rng = np.random.default_rng(0)
    p = 1.0 / np.arange(1, 52) ** 0.9
    p /= p.sum()
    from loopline.data import jensen_shannon_distance

    hits = sum(
        jensen_shannon_distance(rng.multinomial(2_000, p), rng.multinomial(2_000, p)) > small
        for _ in range(500)
    )
    assert hits <= 15  # α = 0.01: about 5 expected


def test_the_noise_guard_holds_on_sparse_cells_where_chi_squared_is_too_low() -> None:
    from loopline.data import jensen_shannon_distance
    from loopline.data.noise import null_noise, sampling_noise

    rng = np.random.default_rng(1)
    p = 1.0 / np.arange(1, 5_001) ** 0.9  # 5,000 levels, 3,000 rows a side: most cells sparse
    p /= p.sum()
    hits = chi2_hits = 0
    for _ in range(200):
        a = rng.multinomial(3_000, p).astype(float)
        b = rng.multinomial(3_000, p).astype(float)
        keep = (a + b) > 0
        js = jensen_shannon_distance(a[keep], b[keep])
        hits += js > null_noise(a[keep], b[keep])[Metric.JENSEN_SHANNON]
        chi2_hits += js > sampling_noise(int(keep.sum()), 3_000, 3_000)[Metric.JENSEN_SHANNON]
    assert chi2_hits > 150  # the χ² approximation fires on nearly every no-drift pair
    assert hits <= 8  # α = 0.01: about 2 expected


def test_schema_thresholds_decide_and_skew_uses_its_own_list(
    drift_pair: tuple[pa.Table, pa.Table],
) -> None:
    ref, cur = drift_pair
    pr = profile_table(ref)
    pc = profile_table(cur, reference=pr)
    schema = infer_schema(pr)
    strict = Schema(
        (
            FeatureSchema(
                "n_shift_tiny",
                DType.FLOAT,
                drift=(Threshold(Metric.NORMALIZED_WASSERSTEIN, 0.001),),
                skew=(Threshold(Metric.PSI, 5.0),),
            ),
        )
    )
    assert not compare(pr, pc, schema)["n_shift_tiny"].drifted
    assert compare(pr, pc, strict)["n_shift_tiny"].drifted
    skew = compare(pr, pc, strict, mode="skew")
    assert skew.mode == "skew"
    (check,) = skew["n_shift_tiny"].checks
    assert (check.metric, check.unit, check.drifted) == (Metric.PSI, "nats", False)


def test_features_that_cannot_be_compared_say_why() -> None:
    ref = profile_table(pa.table({"x": [1.0, 2.0, 3.0], "s": ["a", "b", "c"], "y": [1.0, 2, 3]}))
    cur = profile_table(
        pa.table({"x": pa.array([None, None], pa.float64()), "s": [1.0, 2.0]}), reference=ref
    )
    rep = compare(ref, cur)
    assert rep["x"].reason == "one side has no finite values"
    assert rep["s"].reason == "its type changed from string to float"
    assert rep["y"].reason == "the current data has no such column"
    assert rep.drifted_features == () and rep.share == 0.0


def test_refuses_current_profiles_on_other_edges() -> None:
    ref = profile_table(pa.table({"x": np.arange(100.0)}))
    cur = profile_table(pa.table({"x": np.arange(100.0) + 1000}))
    with pytest.raises(InvalidInputError, match="profile the current data with reference="):
        compare(ref, cur)
    with pytest.raises(InvalidInputError, match="mode='both' is not known"):
        compare(ref, ref, mode="both")  # type: ignore[arg-type]


def test_constant_reference_column_does_not_divide_by_zero() -> None:
    ref = profile_table(pa.table({"x": [5.0] * 100}))
    cur = profile_table(pa.table({"x": [5.0] * 50 + [6.0] * 50}), reference=ref)
    w = compare(ref, cur)["x"].metrics[Metric.NORMALIZED_WASSERSTEIN]
    assert w == pytest.approx(0.5 / 1e-3)
