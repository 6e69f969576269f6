"""Drift distances are exact where the counts are: checked against scipy on real flights data."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import wasserstein_distance

from loopline.data import (
    Metric,
    compare,
    load_profile,
    merge,
    profile_table,
    save_profile,
    wasserstein_atoms,
)

HEAVY = ("dep_delay", "arr_delay", "distance", "air_time")
MONTH_PAIRS = ((1, 2), (1, 7), (6, 12), (3, 9))


def month(flights: pl.DataFrame, m: int) -> pl.DataFrame:
    return flights.filter(pl.col("month") == m).drop("month")


def counts(column: pl.Series) -> dict[str, int]:
    vc = column.drop_nulls().value_counts()
    return dict(zip(vc[column.name].to_list(), vc["count"].to_list(), strict=True))


@pytest.mark.parametrize(("a", "b"), MONTH_PAIRS)
def test_jensen_shannon_uses_every_category_and_equals_scipy(
    flights: pl.DataFrame, a: int, b: int
) -> None:
    ref, cur = month(flights, a), month(flights, b)
    pr = profile_table(ref)
    report = compare(pr, profile_table(cur, reference=pr))
    for name in ("dest", "tailnum", "carrier", "origin"):
        p, q = counts(ref[name]), counts(cur[name])
        cells = sorted(set(p) | set(q))  # values only one month has are cells of their own
        expected = jensenshannon([p.get(v, 0) for v in cells], [q.get(v, 0) for v in cells], 2)
        assert report[name].method == "all_categories"
        assert report[name].metrics[Metric.JENSEN_SHANNON] == pytest.approx(expected, abs=1e-12)


def test_every_category_counts_where_the_top_50_cut_lost_40_percent_on_dest(
    flights: pl.DataFrame,
) -> None:
    ref, cur = month(flights, 1), month(flights, 7)
    pr = profile_table(ref)
    exact = compare(pr, profile_table(cur, reference=pr))["dest"].metrics[Metric.JENSEN_SHANNON]
    p, q = counts(ref["dest"]), counts(cur["dest"])
    top = sorted(p, key=lambda v: (-p[v], v))[:50]  # the former top-50 + TAIL cells
    p50 = [p[v] for v in top] + [ref.height - sum(p[v] for v in top)]
    q50 = [q.get(v, 0) for v in top]
    q50.append(cur.height - sum(q50))
    assert jensenshannon(p50, q50, 2) == pytest.approx(0.6 * exact, abs=0.01)


def test_sketched_columns_fall_back_to_the_top_k_and_say_so(flights: pl.DataFrame) -> None:
    ref = month(flights, 1)
    pr = profile_table(ref, max_exact=1_000)  # tailnum (≈ 3,000 values) becomes a sketch
    assert not pr["tailnum"].categorical.exact  # type: ignore[union-attr]
    report = compare(pr, profile_table(month(flights, 2), reference=pr, max_exact=1_000))
    assert report["tailnum"].method == "top_k_tail"
    assert report["dest"].method == "all_categories"


@pytest.mark.parametrize(("a", "b"), MONTH_PAIRS)
def test_wasserstein_on_heavy_tailed_columns_equals_scipy(
    flights: pl.DataFrame, a: int, b: int
) -> None:
    ref, cur = month(flights, a), month(flights, b)
    pr = profile_table(ref)
    report = compare(pr, profile_table(cur, reference=pr))
    for name in HEAVY:
        x = ref[name].drop_nulls().to_numpy().astype(float)
        y = cur[name].drop_nulls().to_numpy().astype(float)
        expected = wasserstein_distance(x, y) / np.std(x)
        got = report[name].metrics[Metric.NORMALIZED_WASSERSTEIN]
        assert report[name].method == "exact_values"
        assert got == pytest.approx(expected, rel=0.01)  # the goal; in fact exact:
        assert got == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("shift", [0.05, 0.3])
def test_wasserstein_of_a_shifted_copy_equals_scipy(flights: pl.DataFrame, shift: float) -> None:
    ref = month(flights, 3)
    pr = profile_table(ref)
    moved = ref.with_columns(
        [(pl.col(c) + shift * float(ref[c].std(ddof=0) or 0.0)) for c in HEAVY]  # type: ignore[arg-type]
    )
    report = compare(pr, profile_table(moved, reference=pr))
    for name in HEAVY:
        x = ref[name].drop_nulls().to_numpy().astype(float)
        expected = wasserstein_distance(x, moved[name].drop_nulls().to_numpy()) / np.std(x)
        assert expected == pytest.approx(shift, rel=1e-6)
        got = report[name].metrics[Metric.NORMALIZED_WASSERSTEIN]
        assert got == pytest.approx(expected, rel=1e-9)


def test_continuous_columns_keep_no_atoms_and_use_the_histogram() -> None:
    rng = np.random.default_rng(0)
    ref = pl.DataFrame({"x": rng.lognormal(0.0, 1.0, 20_000)})
    cur = pl.DataFrame({"x": rng.lognormal(0.3, 1.0, 20_000)})
    pr = profile_table(ref)
    assert pr["x"].numeric.atoms is None  # type: ignore[union-attr]
    f = compare(pr, profile_table(cur, reference=pr))["x"]
    assert f.method == "histogram"
    x, y = ref["x"].to_numpy(), cur["x"].to_numpy()
    expected = wasserstein_distance(x, y) / np.std(x)
    assert f.metrics[Metric.NORMALIZED_WASSERSTEIN] == pytest.approx(expected, rel=0.02)


def test_atoms_merge_exactly_and_round_trip_through_json(flights: pl.DataFrame, tmp_path) -> None:  # type: ignore[no-untyped-def]
    data = month(flights, 5)
    whole = profile_table(data)
    half = data.height // 2
    merged = merge(
        profile_table(data[:half], reference=whole), profile_table(data[half:], reference=whole)
    )
    for name in HEAVY:
        assert merged[name].numeric.atoms == whole[name].numeric.atoms  # type: ignore[union-attr]
        assert merged[name].numeric.atom_counts == whole[name].numeric.atom_counts  # type: ignore[union-attr]
        vc = counts(data[name].cast(pl.Float64).cast(pl.String))
        assert sum(whole[name].numeric.atom_counts or ()) == sum(vc.values())  # type: ignore[union-attr]
    assert load_profile(save_profile(whole, tmp_path / "p.json")) == whole


def test_atoms_are_dropped_past_the_cap_and_merging_stays_consistent() -> None:
    a = profile_table(pl.DataFrame({"x": np.arange(100.0)}), max_atoms=150)
    assert a["x"].numeric.atom_counts == (1,) * 100  # type: ignore[union-attr]
    b = profile_table(pl.DataFrame({"x": np.arange(100.0, 200.0)}), reference=a, max_atoms=150)
    assert merge(a, b, max_atoms=150)["x"].numeric.atoms is None  # type: ignore[union-attr]
    assert len(merge(a, b, max_atoms=300)["x"].numeric.atoms or ()) == 200  # type: ignore[union-attr]


def test_wasserstein_atoms_equals_scipy_with_weights() -> None:
    rng = np.random.default_rng(3)
    u, v = rng.integers(0, 50, 40).astype(float), rng.integers(10, 70, 30).astype(float)
    wu, wv = rng.random(40), rng.random(30)
    expected = wasserstein_distance(u, v, wu, wv)
    assert wasserstein_atoms(u, wu, v, wv) == pytest.approx(expected, rel=1e-12)
