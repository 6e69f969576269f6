from __future__ import annotations

from collections import Counter

from loopline.deploy.router.balancer import BackendState, Balancer, smooth_cycle


def _states(*specs: tuple[str, str]) -> list[BackendState]:
    return [BackendState(bid, "127.0.0.1", 1000 + i, rev) for i, (bid, rev) in enumerate(specs)]


def test_exact_revision_weights_with_smooth_interleaving() -> None:
    bal = Balancer()
    bal.replace(_states(("a", "old"), ("b", "old"), ("c", "new")), {"old": 9, "new": 1})
    picks = [bal.pick() for _ in range(100)]
    counts = Counter(b.revision for b in picks if b is not None)
    assert counts == {"old": 90, "new": 10}
    # Smooth: never more than 9 old in a row.
    revs = "".join("n" if b is not None and b.revision == "new" else "o" for b in picks)
    assert "o" * 10 not in revs


def test_weight_of_a_revision_without_ready_backends_goes_to_the_others() -> None:
    bal = Balancer()
    bal.replace(_states(("a", "old")), {"old": 50, "new": 50})
    assert {bal.pick().id for _ in range(10)} == {"a"}  # type: ignore[union-attr]


def test_least_outstanding_backend_is_preferred() -> None:
    bal = Balancer()
    bal.replace(_states(("a", "r"), ("b", "r"), ("c", "r")), None)
    bal.backends["a"].outstanding = 3
    bal.backends["b"].outstanding = 1
    assert bal.pick().id == "c"  # type: ignore[union-attr]


def test_round_robin_when_idle() -> None:
    bal = Balancer()
    bal.replace(_states(("a", "r"), ("b", "r")), None)
    assert Counter(bal.pick().id for _ in range(10)) == {"a": 5, "b": 5}  # type: ignore[union-attr]


def test_unhealthy_and_draining_backends_get_nothing() -> None:
    bal = Balancer()
    bal.replace(_states(("a", "r"), ("b", "r"), ("c", "r")), None)
    bal.backends["a"].healthy = False
    bal.backends["b"].draining = True
    assert {bal.pick().id for _ in range(6)} == {"c"}  # type: ignore[union-attr]
    bal.backends["c"].healthy = False  # all failing: panic mode tries the non-draining ones
    assert {bal.pick().id for _ in range(6)} == {"a", "c"}  # type: ignore[union-attr]
    bal.backends["a"].draining = bal.backends["c"].draining = True
    assert bal.pick() is None


def test_removed_backend_with_requests_in_flight_retires_until_idle() -> None:
    bal = Balancer()
    bal.replace(_states(("a", "r"), ("b", "r")), None)
    a = bal.backends["a"]
    a.outstanding = 1
    bal.replace([BackendState("b", "127.0.0.1", 1001, "r")], None)
    assert bal.find("a") is a and a.draining
    bal.release(a)
    assert bal.find("a") is None


def test_the_precomputed_sequence_is_nginx_smooth_wrr_reduced_by_the_gcd() -> None:
    assert smooth_cycle({"old": 80, "new": 20}) == ("old", "old", "new", "old", "old")
    assert smooth_cycle({"a": 0, "b": 0}) == ()
    assert smooth_cycle({"a": 9999, "b": 10000}) == ()  # period too long: picked step by step


def test_weights_with_a_long_period_are_still_exact() -> None:
    bal = Balancer()
    bal.replace(_states(("a", "old"), ("b", "new")), {"old": 9999, "new": 10001})
    counts = Counter(bal.pick().revision for _ in range(20000))  # type: ignore[union-attr]
    assert counts == {"old": 9999, "new": 10001}


def test_an_unhealthy_revision_gives_its_share_to_the_others_exactly() -> None:
    bal = Balancer()
    bal.replace(_states(("a", "old"), ("b", "mid"), ("c", "new")),
                {"old": 60, "mid": 20, "new": 20})  # fmt: skip
    bal.backends["c"].healthy = False
    counts = Counter(bal.pick().revision for _ in range(1000))  # type: ignore[union-attr]
    assert counts == {"old": 750, "mid": 250}  # 60:20 of everything, nothing to "new"
    bal.backends["c"].healthy = True
    counts = Counter(bal.pick().revision for _ in range(1000))  # type: ignore[union-attr]
    assert counts == {"old": 600, "mid": 200, "new": 200}
