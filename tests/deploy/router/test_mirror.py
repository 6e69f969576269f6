"""Mirroring: copies go to the mirror revision, answers are compared, the client never waits."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.deploy.router.helpers import RawClient, push, stats, v2, wait_for_stats

from loopline.deploy.engines.local import free_port
from loopline.deploy.router.agreement import answers_agree, values_agree
from loopline.deploy.traffic import HeaderMatch, HeaderRoute, Mirror

INFER = "/v2/models/m/infer"


def _mirror(doc: dict[str, Any], rev: str = "canary") -> dict[str, int]:
    return dict(doc["mirror"].get(rev, {}))


# ---- comparing answers (pure) ---------------------------------------------------------------


def _v2(**outputs: list[Any]) -> bytes:
    return json.dumps({"model_name": "m", "id": "1", "outputs": [
        {"name": k, "datatype": "FP64", "shape": [len(v)], "data": v} for k, v in outputs.items()
    ]}).encode()  # fmt: skip


def test_v2_answers_compare_the_served_first_output_by_name_ignoring_metadata() -> None:
    a = _v2(label=[1, 2], score=[0.25, 0.5])
    b = json.dumps({"model_name": "other", "model_version": "7", "outputs": [
        {"name": "score", "data": [0.25, 0.5]}, {"name": "label", "data": [1, 2]},
    ]}).encode()  # fmt: skip
    assert answers_agree(a, b) is True
    assert answers_agree(a, _v2(label=[1, 3], score=[0.25, 0.5])) is False
    assert answers_agree(a, _v2(score=[0.25, 0.5])) is False  # the prediction missing


def test_probabilities_beside_the_prediction_do_not_count() -> None:
    served = _v2(predict=[1, 0], predict_proba=[0.8, 0.3])
    assert answers_agree(served, _v2(predict=[1, 0], predict_proba=[0.7, 0.45])) is True
    assert answers_agree(served, _v2(predict=[1, 1], predict_proba=[0.8, 0.3])) is False


def test_floats_agree_within_a_relative_millionth_labels_exactly() -> None:
    assert values_agree(0.1 + 0.2, 0.3) and values_agree(1.0, 1.0 + 9e-7)
    assert not values_agree(1.0, 1.0 + 2e-6)
    assert values_agree(3, 3.0) and not values_agree(3, 4)
    assert values_agree("cat", "cat") and not values_agree("cat", "Cat")
    assert not values_agree(True, 1) and values_agree(False, False)
    assert values_agree([[1, 2.5], ["a"]], [[1, 2.5000001], ["a"]])
    assert values_agree(float("nan"), float("nan")) and not values_agree(float("nan"), 1.0)


def test_invocations_and_kserve_v1_predictions_are_compared() -> None:
    mlflow = b'{"predictions": [0, 1, 1]}'
    assert answers_agree(mlflow, b'{"predictions": [0, 1, 1]}') is True
    assert answers_agree(mlflow, b'{"predictions": [0, 1, 0]}') is False
    v1 = b'{"predictions": [{"label": "a", "p": 0.75}]}'
    assert answers_agree(v1, b'{"predictions": [{"label": "a", "p": 0.7500000001}]}') is True


def test_a_boolean_never_agrees_with_an_integer_whichever_answer_has_it() -> None:
    assert answers_agree(b'{"predictions": [1, 0]}', b'{"predictions": [true, false]}') is False
    assert answers_agree(b'{"predictions": [true]}', b'{"predictions": [1]}') is False
    assert answers_agree(b'{"predictions": [true]}', b'{"id": 2, "predictions": [true]}') is True


def test_outputs_without_unique_names_are_compared_by_position_or_last_name() -> None:
    unnamed = b'{"id": "a", "outputs": [{"data": [1]}]}'
    assert answers_agree(unnamed, b'{"id": "b", "outputs": [{"data": [1]}]}') is True
    assert answers_agree(unnamed, b'{"id": "b", "outputs": [{"data": [2]}]}') is False
    twice = b'{"outputs": [{"name": "y", "data": [1]}, {"name": "y", "data": [2]}]}'
    assert answers_agree(twice, b'{"outputs": [{"name": "y", "data": [2]}]}') is True
    assert answers_agree(b'{"outputs": [[1]]}', b'{"outputs": [[1]]}') is None


def test_answers_of_no_known_protocol_are_not_compared() -> None:
    assert answers_agree(b"not json", b'{"predictions": []}') is None
    assert answers_agree(b'{"error": "bad input"}', b'{"predictions": []}') is None
    assert answers_agree(b"[1, 2]", b"[1, 2]") is None


# ---- a real router --------------------------------------------------------------------------


def test_agreement_counts_are_exact_on_a_known_input_set(
    backend: Callable[..., Any], router_thread: Callable[..., Any],
    raw_client: Callable[[int], RawClient],
) -> None:  # fmt: skip
    stable, _ = backend(id="stable", echo="")
    canary, _ = backend(id="canary", echo="", disagree_every=5)  # wrong on x = 0, 5, 10, …
    # Counting, not the bounds, is under test: on a loaded machine the canary may still hold
    # a few copies when the next arrives, and past the default per-backend bound (4) a copy
    # would be dropped (correctly, and counted), so the bounds are lifted here.
    rt = router_thread(mirror_per_backend=1000, mirror_limit=1000)
    push(rt, [("s", stable, "stable"), ("c", canary, "canary")], {"stable": 1},
         mirror=Mirror("canary", 100))  # fmt: skip
    client = raw_client(rt.port)
    for x in range(100):
        status, _, body = client.post(INFER, v2(float(x)))
        assert status == 200 and body["id"] == "stable" and body["outputs"][0]["data"] == [x]
    want = {"sent": 100, "compared": 100, "agreed": 80, "errors": 0, "dropped": 0}
    wait_for_stats(rt, lambda d: _mirror(d) == want, f"mirror counters {want}")
    # MLflow's /invocations and KServe V1's :predict: "predictions" are compared too.
    for x in range(50):
        for path in ("/invocations", "/v1/models/m:predict"):
            status, _, body = client.post(path, {"instances": [x]})
            assert status == 200 and body == {"predictions": [x], "id": "stable"}
    want = {"sent": 200, "compared": 200, "agreed": 160, "errors": 0, "dropped": 0}
    wait_for_stats(rt, lambda d: _mirror(d) == want, f"mirror counters {want}")


def test_answers_arrive_before_a_slow_mirror_replies_and_the_bound_drops_the_excess(
    backend: Callable[..., Any], router_thread: Callable[..., Any],
    raw_client: Callable[[int], RawClient], tmp_path: Path,
) -> None:  # fmt: skip
    gate = tmp_path / "open"
    stable, _ = backend(id="stable", echo="")
    canary, _ = backend(id="canary", echo="", gate=gate)  # answers only once the gate opens
    rt = router_thread(mirror_limit=3)  # below the per-backend bound (4): this one binds
    push(rt, [("s", stable, "stable"), ("c", canary, "canary")], {"stable": 1},
         mirror=Mirror("canary", 100))  # fmt: skip
    client = raw_client(rt.port)
    answers = [client.post(INFER, v2(float(x)))[2]["outputs"][0]["data"] for x in range(20)]
    assert answers == [[x] for x in range(20)]
    # Every answer is in while the mirror has not replied once: nothing waited for it.
    doc = stats(rt)
    assert _mirror(doc) == {"sent": 3, "compared": 0, "agreed": 0, "errors": 0, "dropped": 17}
    assert doc["revisions"]["canary"]["inFlight"] == 3  # the copies, still out
    gate.touch()
    want = {"sent": 3, "compared": 3, "agreed": 3, "errors": 0, "dropped": 17}
    wait_for_stats(rt, lambda d: _mirror(d) == want, f"mirror counters {want}")


def test_copies_yield_to_a_busy_mirror_backend_instead_of_queueing_on_it(
    backend: Callable[..., Any], router_thread: Callable[..., Any],
    raw_client: Callable[[int], RawClient], tmp_path: Path,
) -> None:  # fmt: skip
    gate = tmp_path / "open"
    stable, _ = backend(id="stable", echo="")
    canary, _ = backend(id="canary", echo="", gate=gate)
    rt = router_thread()  # the default bound of copies in flight (100) is not the limit here
    push(rt, [("s", stable, "stable"), ("c", canary, "canary")], {"stable": 1},
         mirror=Mirror("canary", 100))  # fmt: skip
    client = raw_client(rt.port)
    for x in range(20):
        assert client.post(INFER, v2(float(x)))[0] == 200
    doc = stats(rt)
    assert _mirror(doc) == {"sent": 4, "compared": 0, "agreed": 0, "errors": 0, "dropped": 16}
    assert doc["revisions"]["canary"]["inFlight"] == 4  # at most 4 outstanding on it
    gate.touch()
    want = {"sent": 4, "compared": 4, "agreed": 4, "errors": 0, "dropped": 16}
    wait_for_stats(rt, lambda d: _mirror(d) == want, f"mirror counters {want}")


def test_a_dead_mirror_changes_nothing_for_the_client_and_counts_errors(
    backend: Callable[..., Any], router_thread: Callable[..., Any],
    raw_client: Callable[[int], RawClient],
) -> None:  # fmt: skip
    stable, _ = backend(id="stable", echo="")
    rt = router_thread(health_interval=60.0)
    push(rt, [("s", stable, "stable"), ("dead", free_port(), "canary")], {"stable": 1},
         mirror=Mirror("canary", 100))  # fmt: skip
    client = raw_client(rt.port)
    for x in range(20):
        status, _, body = client.post(INFER, v2(float(x)))
        assert (status, body["outputs"][0]["data"]) == (200, [x])
    want = {"sent": 20, "compared": 0, "agreed": 0, "errors": 20, "dropped": 0}
    doc = wait_for_stats(rt, lambda d: _mirror(d) == want, f"mirror counters {want}")
    assert doc["revisions"]["stable"]["errors"] == 0


def test_a_mirror_answering_non_2xx_counts_an_error(
    backend: Callable[..., Any], router_thread: Callable[..., Any],
    raw_client: Callable[[int], RawClient],
) -> None:  # fmt: skip
    stable, _ = backend(id="stable", echo="")
    no_mlflow, _ = backend(id="canary")  # answers 404 to /invocations
    rt = router_thread()
    push(rt, [("s", stable, "stable"), ("c", no_mlflow, "canary")], {"stable": 1},
         mirror=Mirror("canary", 100))  # fmt: skip
    client = raw_client(rt.port)
    assert [client.post("/invocations", {"instances": [1]})[0] for _ in range(4)] == [200] * 4
    want = {"sent": 4, "compared": 0, "agreed": 0, "errors": 4, "dropped": 0}
    wait_for_stats(rt, lambda d: _mirror(d) == want, f"mirror counters {want}")


def test_only_posts_served_by_other_revisions_are_mirrored_in_an_exact_share(
    backend: Callable[..., Any], router_thread: Callable[..., Any],
    raw_client: Callable[[int], RawClient],
) -> None:  # fmt: skip
    import httpx

    stable, _ = backend(id="stable", echo="")
    canary, _ = backend(id="canary", echo="")
    rt = router_thread()
    push(rt, [("s", stable, "stable"), ("c", canary, "canary")], {"stable": 3, "canary": 1},
         mirror=Mirror("canary", 20))  # fmt: skip
    client = raw_client(rt.port)
    served = Counter(client.post(INFER, v2(1.0))[2]["id"] for _ in range(200))
    assert served == {"stable": 150, "canary": 50}
    for _ in range(5):  # GETs are not mirrored
        httpx.get(f"http://127.0.0.1:{rt.port}/v2/health/ready")
    want = {"sent": 30, "compared": 30, "agreed": 30, "errors": 0, "dropped": 0}  # 20 % of 150
    wait_for_stats(rt, lambda d: _mirror(d) == want, f"mirror counters {want}")


@pytest.mark.slow
def test_weights_stay_exact_over_10000_requests_with_header_routes_and_a_mirror(
    backend: Callable[..., Any], router_thread: Callable[..., Any],
    raw_client: Callable[[int], RawClient],
) -> None:  # fmt: skip
    stable, _ = backend(id="stable", echo="")
    canary, _ = backend(id="canary", echo="")
    shadow, _ = backend(id="shadow", echo="", disagree_every=4)
    # no copy dropped, even when the shadow falls behind on a loaded machine: exact counts
    rt = router_thread(mirror_limit=10_000, mirror_per_backend=10_000)
    qa = HeaderRoute("qa", "shadow", (HeaderMatch("x-env", exact="qa"),))
    push(rt, [("s", stable, "stable"), ("c", canary, "canary"), ("m", shadow, "shadow")],
         {"stable": 80, "canary": 20}, header_routes=(qa,), mirror=Mirror("shadow", 20),
         labels={"stable": "stable", "canary": "canary"})  # fmt: skip
    client = raw_client(rt.port)
    served: Counter[str] = Counter()
    for i in range(10_000):
        status, _, body = client.post(INFER, v2(float(i)))
        assert status == 200
        served[body["id"]] += 1
    routed = Counter(client.post(INFER, v2(1.0), {"x-env": "qa"})[2]["id"] for _ in range(100))
    assert routed == {"shadow": 100}
    assert abs(served["canary"] / 10_000 - 0.20) <= 0.015
    assert abs(served["stable"] / 10_000 - 0.80) <= 0.015
    assert served["shadow"] == 0
    # Every 5th request served by stable or canary is copied (i = 4, 9, 14, …; the
    # header-routed ones are served by the mirror revision itself and not copied); the
    # shadow is wrong on i ≡ 0 (mod 4), i.e. on a quarter of the copies.
    want = {"sent": 2000, "compared": 2000, "agreed": 1500, "errors": 0, "dropped": 0}
    doc = wait_for_stats(rt, lambda d: _mirror(d, "shadow") == want, f"mirror counters {want}")
    revs = doc["revisions"]
    assert (revs["stable"]["requests"], revs["canary"]["requests"]) == (
        served["stable"], served["canary"])  # fmt: skip
    assert revs["shadow"]["requests"] == 100 and revs["stable"]["label"] == "stable"
    assert revs["shadow"]["inFlight"] == 0
