"""Every distance matches its scipy (or textbook) reference value."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import jensenshannon
from scipy.stats import wasserstein_distance

from loopline.data import jensen_shannon_distance, l_infinity, psi, wasserstein_pieces
from loopline.errors import InvalidInputError

counts = st.lists(st.integers(0, 1000), min_size=2, max_size=30)


@settings(max_examples=200, deadline=None)
@given(counts, st.data())
def test_jensen_shannon_matches_scipy_base_2(p: list[int], data: st.DataObject) -> None:
    q = data.draw(st.lists(st.integers(0, 1000), min_size=len(p), max_size=len(p)))
    if sum(p) == 0 or sum(q) == 0:
        return
    expected = float(jensenshannon(p, q, base=2))
    assert jensen_shannon_distance(p, q) == pytest.approx(expected, abs=1e-7)
    assert 0.0 <= jensen_shannon_distance(p, q) <= 1.0


def test_jensen_shannon_of_disjoint_distributions_is_one() -> None:
    assert jensen_shannon_distance([1, 0], [0, 1]) == 1.0
    assert jensen_shannon_distance([3, 1], [6, 2]) == 0.0


def test_l_infinity_is_the_largest_share_difference() -> None:
    p, q = np.array([50, 30, 20]), np.array([20, 30, 50])
    assert l_infinity(p, q) == pytest.approx(0.3)
    rng = np.random.default_rng(0)
    for _ in range(20):
        a, b = rng.random(10), rng.random(10)
        assert l_infinity(a, b) == pytest.approx(np.max(np.abs(a / a.sum() - b / b.sum())))


def test_psi_matches_the_formula_with_epsilon_for_empty_bins() -> None:
    p = np.array([0.5, 0.3, 0.2, 0.0])
    q = np.array([0.4, 0.3, 0.2, 0.1])
    pe, qe = np.clip(p, 1e-4, None), np.clip(q, 1e-4, None)
    assert psi(p, q) == pytest.approx(float(np.sum((qe - pe) * np.log(qe / pe))))
    assert math.isfinite(psi(p, q))
    assert psi(p, p) == 0.0


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.floats(-100, 100), min_size=1, max_size=40),
    st.lists(st.floats(-100, 100), min_size=1, max_size=40),
)
def test_wasserstein_of_point_masses_matches_scipy(u: list[float], v: list[float]) -> None:
    rng = np.random.default_rng(len(u) * 41 + len(v))
    wu, wv = rng.random(len(u)) + 0.01, rng.random(len(v)) + 0.01
    expected = wasserstein_distance(u, v, wu, wv)
    got = wasserstein_pieces(u, u, wu, v, v, wv)
    assert got == pytest.approx(expected, rel=1e-9, abs=1e-9)


def test_wasserstein_of_uniform_pieces_matches_scipy_on_dense_samples() -> None:
    # U(0, 1) against an even mixture of U(0.5, 1) and U(2, 4): compare with a fine grid.
    grid = np.linspace(0, 1, 200_001)
    a = grid
    b = np.concatenate([0.5 + 0.5 * grid, 2 + 2 * grid])
    expected = wasserstein_distance(a, b)
    got = wasserstein_pieces([0.0], [1.0], [1.0], [0.5, 2.0], [1.0, 4.0], [1.0, 1.0])
    assert got == pytest.approx(expected, rel=1e-4)
    # Crossing CDFs: U(0, 2) against U(0.5, 1.5) (same mean, W1 = 0.25).
    assert wasserstein_pieces([0.0], [2.0], [1], [0.5], [1.5], [1]) == pytest.approx(0.25)


def test_distances_reject_malformed_input() -> None:
    with pytest.raises(InvalidInputError, match="same 1-d shape"):
        jensen_shannon_distance([1, 2], [1, 2, 3])
    with pytest.raises(InvalidInputError, match="positive total on both sides"):
        psi([0, 0], [1, 1])
    with pytest.raises(InvalidInputError, match="lo <= hi"):
        wasserstein_pieces([1.0], [0.0], [1.0], [0.0], [1.0], [1.0])
