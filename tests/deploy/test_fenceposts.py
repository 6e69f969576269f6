from __future__ import annotations

import pytest

from loopline.deploy.fenceposts import (
    max_surge,
    max_unavailable,
    resolve_fenceposts,
    round_half_away,
)
from loopline.testing.deploy import make_spec


@pytest.mark.parametrize(
    ("surge", "unavailable", "desired", "expected"),
    [
        ("25%", "25%", 3, (1, 0)),  # surge rounds up, unavailable down
        ("25%", "25%", 10, (3, 2)),
        ("25%", "25%", 4, (1, 1)),
        ("50%", "50%", 5, (3, 2)),
        ("0%", "1%", 2, (0, 1)),  # both resolve to 0 → unavailable 1 (no deadlock)
        (0, "10%", 5, (0, 1)),
        (2, "34%", 3, (2, 1)),
        ("100%", "0%", 1, (1, 0)),
        ("25%", "25%", 0, (0, 1)),
        (1, 0, 7, (1, 0)),
    ],
)
def test_resolves_fenceposts_like_kubernetes(
    surge: int | str, unavailable: int | str, desired: int, expected: tuple[int, int]
) -> None:
    assert resolve_fenceposts(surge, unavailable, desired) == expected


def test_max_unavailable_is_capped_by_replicas_and_zero_without_replicas() -> None:
    assert max_unavailable(make_spec(replicas=2, surge=0, unavailable=5)) == 2
    assert max_unavailable(make_spec(replicas=0)) == 0


def test_recreate_has_no_surge_and_no_unavailable_budget() -> None:
    spec = make_spec(replicas=4, recreate=True)
    assert (max_surge(spec), max_unavailable(spec)) == (0, 0)


@pytest.mark.parametrize(
    ("value", "expected"), [(2.5, 3), (3.5, 4), (-2.5, -3), (11.08, 11), (6.49, 6)]
)
def test_rounds_half_away_from_zero_like_go(value: float, expected: int) -> None:
    assert round_half_away(value) == expected
