"""The issue's reliability bar for progressive delivery and autoscaling, on real processes:
under a bounded load on 127.0.0.1, every canary step, aborts on failing analyses (a model with
wrong answers, a model that errors), blue-green promote and rollback, autoscaling up and
down, scale from zero and an oscillating load fail no request except those a test injects.

The cluster is the production loop (tests/controlplane/live.py): the real control plane API
and sync loop, real ``loopline serve`` replicas and real routers, with the autoscaler's
period shortened to 1 s. Models: ``bc/1`` and ``bc/2`` (two good LogisticRegressions),
``bc/4`` (trained on flipped labels: disagrees with ``bc/1`` everywhere) and ``bc/5``
(python flavor; every request answers 500)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.controlplane.live import LiveCluster, deployment, infer_body, live_cluster
from tests.controlplane.load import LoadGenerator

from loopline.controlplane.wire_codec import to_json
from loopline.deploy.router import RouterAdminClient

pytestmark = pytest.mark.slow

WRONG, BRITTLE = "bc/4", "bc/5"


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, bc_bundles: list[Path], bc_bad_bundles: list[Path]
) -> Iterator[LiveCluster]:
    base = tmp_path_factory.mktemp("live-progressive")
    with live_cluster(base, bc_bundles, extra=bc_bad_bundles, autoscale_period=1.0) as c:
        yield c


# ---- helpers -----------------------------------------------------------------------------------


def template(name: str, **metric: Any) -> dict[str, Any]:
    return {
        "apiVersion": "loopline/v1",
        "kind": "AnalysisTemplate",
        "metadata": {"name": name},
        "spec": {"metrics": [{"name": name, **metric}]},
    }


def status(cluster: LiveCluster, name: str) -> dict[str, Any]:
    result: dict[str, Any] = to_json(cluster.client.get_deployment(name).status)
    return result


def weights(cluster: LiveCluster, name: str) -> dict[str, int]:
    return status(cluster, name)["traffic"]["weights"] or {}


def wait_phase(cluster: LiveCluster, name: str, phase: str) -> dict[str, Any]:
    result: dict[str, Any] = cluster.wait_for(
        f"{name} to be {phase}", lambda: (s := status(cluster, name))["phase"] == phase and s
    )
    return result


def wait_answers(cluster: LiveCluster, load: LoadGenerator, n: int) -> None:
    """Wait until the load generator has ``n`` more answers than now."""
    start = load.report.ok + load.report.failed
    cluster.wait_for(
        f"{n} more answers", lambda: load.report.ok + load.report.failed >= start + n
    )


def models_running(cluster: LiveCluster, name: str) -> set[str]:
    return {r.model or "" for r in cluster.client.replicas(name)}


def router_stats(cluster: LiveCluster, name: str) -> dict[str, Any]:
    router = cluster.service.store.get_deployment(name).router
    assert router is not None
    stats: dict[str, Any] = RouterAdminClient(router.admin_port).stats(600)
    return stats


def infer(url: str, headers: dict[str, str] | None = None, timeout: float = 10.0) -> httpx.Response:
    return httpx.post(url, json=infer_body(), headers=headers, timeout=timeout)


def canary(steps: list[Any], **extra: Any) -> dict[str, Any]:
    return {
        "type": "Canary",
        "canary": {"steps": steps, "scaleDownDelaySeconds": 2,
                   "abortScaleDownDelaySeconds": 2, **extra},
    }  # fmt: skip


# ---- canary ------------------------------------------------------------------------------------


def test_a_canary_through_every_step_kind_is_promoted_with_no_failed_request(
    cluster: LiveCluster,
) -> None:
    c = cluster.client
    c.apply_template(template(
        "canary-errors", interval="1s", count=2, initialDelay="1s", minSampleSize=5,
        successCondition="result <= 0.01", provider={"router": {"metric": "errorRate"}},
    ))  # fmt: skip
    steps = [
        {"setWeight": 20},
        {"pause": {"duration": "2s"}},
        {"setMirror": 50},
        {"setHeaderRoute": {"name": "qa", "match": [
            {"headerName": "X-Canary", "headerValue": {"exact": "1"}}]}},
        {"analysis": {"templates": [{"templateName": "canary-errors"}]}},
        {"setWeight": 100},
    ]  # fmt: skip
    c.apply(deployment("canary", "bc/1", 1, strategy=canary(steps)))
    cluster.wait_rollout("canary")
    url = cluster.router_url("canary")
    with LoadGenerator(url, infer_body()) as load:
        wait_answers(cluster, load, 20)
        assert set(load.versions()) == {"1"}
        c.set_model("canary", "bc/2")
        new = cluster.wait_for("the canary revision", lambda: status(cluster, "canary")
                               ["rollout"]["canary"])  # fmt: skip
        cluster.wait_for("weight 20 on the canary", lambda: weights(cluster, "canary").get(new)
                         == 20)  # fmt: skip
        at_20 = load.versions()
        routes = cluster.wait_for("the header route", lambda: status(cluster, "canary")
                                  ["traffic"]["headerRoutes"])  # fmt: skip
        assert routes[0]["revision"] == new
        assert status(cluster, "canary")["traffic"]["mirror"] == {"revision": new, "percent": 50}
        answers = [infer(url, {"X-Canary": "1"}) for _ in range(10)]
        assert [(r.status_code, r.json()["model_version"]) for r in answers] == [(200, "2")] * 10
        cluster.wait_for("the weights to move on from 20", lambda: weights(cluster, "canary")
                         .get(new) != 20)  # fmt: skip
        during = load.versions() - at_20
        final = wait_phase(cluster, "canary", "Healthy")
        assert final["rollout"]["stable"] == new and final["rollout"]["canary"] is None
        assert final["traffic"]["weights"] == {new: 100}
        assert final["traffic"]["mirror"] is None and final["traffic"]["headerRoutes"] == []
        wait_answers(cluster, load, 30)  # requests sent before the switch have come back
        promoted = load.versions()
        wait_answers(cluster, load, 100)
        after = load.versions() - promoted
        cluster.wait_for("the old stable's replicas to go", lambda: models_running(
            cluster, "canary") == {"bc/2"})  # fmt: skip
    report = load.report
    print(f"canary every step: {report}; at weight 20: {during}; promoted: {after}")
    assert report.failed == 0, report.errors
    assert 0 < during["2"] < during["1"], during  # some, not most (exact splits: router tests)
    assert set(after) == {"2"}, after
    run = final["rollout"]["analysisRuns"][0]
    assert (run["kind"], run["phase"]) == ("step", "Successful"), run
    mirror = router_stats(cluster, "canary")["mirror"][new]
    assert mirror["compared"] > 0 and mirror["errors"] == 0, mirror
    c.delete("canary")


def test_a_canary_that_disagrees_with_stable_aborts_by_itself_with_no_failed_request(
    cluster: LiveCluster,
) -> None:
    c = cluster.client
    c.apply_template(template(
        "canary-agreement", initialDelay="2s", minSampleSize=20, successCondition="result >= 0.99",
        provider={"agreement": {}},
    ))  # fmt: skip
    steps = [
        {"setWeight": 10},
        {"setMirror": 100},
        {"analysis": {"templates": [{"templateName": "canary-agreement"}]}},
        {"setWeight": 100},
    ]
    c.apply(deployment("disagree", "bc/1", 1, strategy=canary(steps)))
    cluster.wait_rollout("disagree")
    with LoadGenerator(cluster.router_url("disagree"), infer_body()) as load:
        wait_answers(cluster, load, 20)
        c.set_model("disagree", WRONG)
        new = cluster.wait_for("the canary revision", lambda: status(cluster, "disagree")
                               ["rollout"]["canary"])  # fmt: skip
        cluster.wait_for("the mirror", lambda: status(cluster, "disagree")["traffic"]["mirror"])
        aborted = wait_phase(cluster, "disagree", "Degraded")
        assert aborted["traffic"]["weights"] == {aborted["rollout"]["stable"]: 100}
        assert aborted["traffic"]["mirror"] is None
        wait_answers(cluster, load, 30)
        at_abort = load.versions()
        wait_answers(cluster, load, 100)
        after = load.versions() - at_abort
        cluster.wait_for("the canary's replicas to go", lambda: models_running(
            cluster, "disagree") == {"bc/1"})  # fmt: skip
    report = load.report
    print(f"abort on disagreement: {report}; after the abort: {after}")
    assert report.failed == 0, report.errors
    assert set(after) == {"1"}, after
    assert aborted["rollout"]["canary"] == new
    assert "Analysis run" in aborted["rollout"]["message"], aborted["rollout"]["message"]
    assert "failed" in aborted["rollout"]["message"]
    mirror = router_stats(cluster, "disagree")["mirror"][new]
    assert mirror["compared"] >= 20 and mirror["agreed"] == 0, mirror
    c.delete("disagree")


def test_a_canary_that_answers_500_aborts_and_only_its_own_requests_fail(
    cluster: LiveCluster,
) -> None:
    c = cluster.client
    c.apply_template(template(
        "canary-5xx", interval="1s", count=2, initialDelay="1s", minSampleSize=5,
        successCondition="result <= 0.01", provider={"router": {"metric": "errorRate"}},
    ))  # fmt: skip
    steps = [
        {"setWeight": 20},
        {"analysis": {"templates": [{"templateName": "canary-5xx"}]}},
        {"setWeight": 100},
    ]
    c.apply(deployment("brittle", "bc/1", 1, strategy=canary(steps)))
    cluster.wait_rollout("brittle")
    with LoadGenerator(cluster.router_url("brittle"), infer_body()) as load:
        wait_answers(cluster, load, 20)
        c.set_model("brittle", BRITTLE)
        new = cluster.wait_for("the canary revision", lambda: status(cluster, "brittle")
                               ["rollout"]["canary"])  # fmt: skip
        aborted = wait_phase(cluster, "brittle", "Degraded")
        seen_aborted = time.monotonic()
        failed_at_abort = load.report.failed
        wait_answers(cluster, load, 100)
        cluster.wait_for("the canary's replicas to go", lambda: models_running(
            cluster, "brittle") == {"bc/1"})  # fmt: skip
    report = load.report
    print(f"abort on 5xx: {report}")
    stable = aborted["rollout"]["stable"]
    assert aborted["traffic"]["weights"] == {stable: 100}
    assert "Analysis run" in aborted["rollout"]["message"]
    # The canary's 500s are the injected failures: every one was answered by the canary
    # (the router's per-revision counts), none by stable, none sent after the abort.
    assert report.failed > 0 and set(report.errors) == {"HTTP 500"}, report.errors
    revisions = router_stats(cluster, "brittle")["revisions"]
    assert revisions[new]["errors"] == report.failed, revisions
    assert revisions[stable]["errors"] == 0, revisions
    assert all(t < seen_aborted for t in report.failure_starts)
    assert report.failed == failed_at_abort
    assert set(report.versions) == {"1"}  # the canary never answered a request well
    c.delete("brittle")


# ---- blue-green --------------------------------------------------------------------------------


def test_blue_green_previews_promotes_and_rolls_back_a_failed_post_promotion_analysis(
    cluster: LiveCluster,
) -> None:
    c = cluster.client
    # Made to fail: no real HTTP round trip answers its median in under 10 µs.
    c.apply_template(template(
        "impossible-latency", initialDelay="1s", minSampleSize=5,
        successCondition="result < 0.00001",
        provider={"router": {"metric": "latencyP50"}},
    ))  # fmt: skip
    blue_green = {"type": "BlueGreen", "blueGreen": {"autoPromotionEnabled": False,
                                                     "scaleDownDelaySeconds": 2}}  # fmt: skip
    c.apply(deployment("bg", "bc/1", 1, strategy=blue_green))
    cluster.wait_rollout("bg")
    with LoadGenerator(cluster.router_url("bg"), infer_body()) as load:
        wait_answers(cluster, load, 20)
        c.set_model("bg", "bc/2")
        paused = wait_phase(cluster, "bg", "Paused")
        preview = paused["rollout"]["canary"]
        assert paused["traffic"]["preview"] == preview
        preview_url = paused["router"]["previewUrl"]
        answers = [infer(f"{preview_url}/v2/models/bc/infer") for _ in range(10)]
        assert [(r.status_code, r.json()["model_version"]) for r in answers] == [(200, "2")] * 10
        before = load.versions()
        wait_answers(cluster, load, 50)
        assert set(load.versions() - before) == {"1"}  # the preview serves no live traffic
        c.promote("bg")
        promoted = wait_phase(cluster, "bg", "Healthy")
        assert promoted["rollout"]["stable"] == preview
        assert promoted["traffic"]["weights"] == {preview: 100}
        wait_answers(cluster, load, 30)
        switched = load.versions()
        wait_answers(cluster, load, 100)
        assert set(load.versions() - switched) == {"2"}
        cluster.wait_for("the old stack to go", lambda: models_running(cluster, "bg") == {"bc/2"})
        # A second rollout whose post-promotion analysis fails switches straight back.
        blue_green["blueGreen"] = {"autoPromotionEnabled": True, "scaleDownDelaySeconds": 2,
                                   "abortScaleDownDelaySeconds": 2,
                                   "postPromotionAnalysis": {"templates": [
                                       {"templateName": "impossible-latency"}]}}  # fmt: skip
        c.apply(deployment("bg", WRONG, 1, strategy=blue_green))
        cluster.wait_for("the switch to the new stack", lambda: (s := status(cluster, "bg"))[
            "rollout"]["canary"] and s["traffic"]["weights"] == {s["rollout"]["canary"]: 100})
        rolled_back = wait_phase(cluster, "bg", "Degraded")
        assert rolled_back["traffic"]["weights"] == {preview: 100}
        wait_answers(cluster, load, 30)
        at_abort = load.versions()
        wait_answers(cluster, load, 100)
        back = load.versions() - at_abort
        cluster.wait_for("the failed stack to go", lambda: models_running(cluster, "bg")
                         == {"bc/2"})  # fmt: skip
    report = load.report
    print(f"blue-green: {report}; after the rollback: {back}")
    assert report.failed == 0, report.errors
    assert report.versions["4"] > 0  # the failed stack did serve before the analysis failed
    assert set(back) == {"2"}, back
    run = rolled_back["rollout"]["analysisRuns"][-1]
    assert (run["kind"], run["phase"]) == ("postPromotion", "Failed"), run
    c.delete("bg")


# ---- autoscaling -------------------------------------------------------------------------------


def rps_autoscaling(min_replicas: int, max_replicas: int, **extra: Any) -> dict[str, Any]:
    """Scale on requests per second, 10 per replica."""
    return {
        "minReplicas": min_replicas,
        "maxReplicas": max_replicas,
        "metrics": [{"type": "Pods", "pods": {
            "metric": {"name": "requests_per_second"},
            "target": {"type": "AverageValue", "averageValue": "10"}}}],
        **extra,
    }  # fmt: skip


def ready(cluster: LiveCluster, name: str) -> int:
    return sum(r.ready for r in cluster.client.replicas(name))


def rescales(cluster: LiveCluster, name: str) -> list[tuple[int, str]]:
    """The autoscaler's SuccessfulRescale events: (new size, reason), oldest first."""
    out = []
    for e in cluster.client.events(name):
        m = re.fullmatch(r"New size: (\d+); reason: (.*)", e.message)
        if e.reason == "SuccessfulRescale" and m:
            out.append((int(m.group(1)), m.group(2)))
    return out


def test_autoscaling_up_under_load_and_down_when_it_drops_fails_no_request(
    cluster: LiveCluster,
) -> None:
    c = cluster.client
    behavior = {"scaleDown": {"stabilizationWindowSeconds": 5}}
    c.apply(deployment("auto", "bc/1", 1, autoscaling=rps_autoscaling(1, 3, behavior=behavior)))
    cluster.wait_rollout("auto")
    url = cluster.router_url("auto")
    with LoadGenerator(url, infer_body()) as load:
        cluster.wait_for("2 or more ready replicas", lambda: ready(cluster, "auto") >= 2)
    with LoadGenerator(url, infer_body(), threads=1, pause=0.5) as trickle:
        cluster.wait_for("1 replica", lambda: len(c.replicas("auto")) == 1, timeout=60)
        wait_answers(cluster, trickle, 5)
    d = status(cluster, "auto")
    print(f"autoscale: {load.report}; {trickle.report}; {d['autoscaler']['hpa']}")
    assert load.report.failed == 0, load.report.errors
    assert trickle.report.failed == 0, trickle.report.errors
    assert d["autoscaler"]["desiredReplicas"] == 1
    sizes = [size for size, _ in rescales(cluster, "auto")]
    assert sizes[-1] == 1 and max(sizes) in (2, 3), sizes
    c.delete("auto")


def test_a_deployment_scaled_to_zero_answers_its_next_request_with_200(
    cluster: LiveCluster,
) -> None:
    c = cluster.client
    auto = rps_autoscaling(0, 1, scaleToZero={"idleSeconds": 2, "graceSeconds": 1})
    c.apply(deployment("zero", "bc/1", 1, autoscaling=auto))
    url = cluster.router_url("zero")
    cluster.wait_for("scale to zero", lambda: (s := status(cluster, "zero"))["autoscaler"]
                     and s["autoscaler"]["desiredReplicas"] == 0 and not c.replicas("zero"))
    with ThreadPoolExecutor(4) as pool:  # held by the router until a replica is ready
        answers = list(pool.map(lambda _: infer(url, timeout=120.0), range(4)))
    print(f"scale from zero: {[(r.status_code, r.text[:100]) for r in answers]}")
    assert [(r.status_code, r.json().get("model_version")) for r in answers] == [(200, "1")] * 4
    assert status(cluster, "zero")["autoscaler"]["desiredReplicas"] == 1
    assert rescales(cluster, "zero") == [
        (0, "no requests for 3s (scale to zero)"),
        (1, "requests arrived while scaled to zero"),
    ]
    c.delete("zero")


def test_an_oscillating_load_scales_up_once_and_down_only_after_the_window(
    cluster: LiveCluster,
) -> None:
    c = cluster.client
    behavior = {"scaleDown": {"stabilizationWindowSeconds": 15}}
    c.apply(deployment("osc", "bc/1", 1, autoscaling=rps_autoscaling(1, 3, behavior=behavior)))
    cluster.wait_rollout("osc")
    url = cluster.router_url("osc")
    reports = []
    for _ in range(3):  # load on, then off, three times within one 15 s scale-down window
        with LoadGenerator(url, infer_body()) as load:
            wait_answers(cluster, load, 200)
        reports.append(load.report)
        time.sleep(1.0)  # the load's off phase (not a wait for anything)
    during = [size for size, _ in rescales(cluster, "osc")]
    cluster.wait_for("the scale-down", lambda: len(c.replicas("osc")) == 1, timeout=90)
    after = [size for size, _ in rescales(cluster, "osc")][len(during):]
    print(f"oscillation: {reports}; sizes while it oscillated: {during}; then: {after}")
    assert all(r.failed == 0 for r in reports), [r.errors for r in reports]
    # Inside one scale-down window the replicas only grow (at most max - min = 2 steps);
    # the scale-down comes once the window has passed, in at most as many steps.
    assert during and during == sorted(set(during)) and len(during) <= 2, during
    assert after and after == sorted(set(after), reverse=True) and after[-1] == 1, after
    assert len(after) <= 2, after
    c.delete("osc")
