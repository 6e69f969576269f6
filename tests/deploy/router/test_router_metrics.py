"""Per-revision metrics: the sliding window, quantiles, ``/stats`` and ``/metrics``."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.deploy.router.helpers import RawClient, push, stats, v2, wait_for_stats

from loopline.deploy.engines.local import free_port
from loopline.deploy.router.client import RouterAdminClient
from loopline.deploy.router.metrics import BOUNDS, RevisionMetrics, histogram_quantile
from loopline.deploy.router.report import merge_stats
from loopline.errors import BackendError

INFER = "/v2/models/m/infer"
T = 1000.0  # a monotonic clock reading


def _hist(**by_bound: int) -> list[int]:
    """Per-bucket counts, e.g. ``_hist(b0_01=3)`` puts 3 in the bucket ending at 0.01."""
    counts = [0] * (len(BOUNDS) + 1)
    for key, n in by_bound.items():
        bound = key[1:].replace("_", ".")
        counts[len(BOUNDS) if bound == "inf" else BOUNDS.index(float(bound))] += n
    return counts


# ---- pure ---------------------------------------------------------------------------------


def test_the_window_counts_only_the_seconds_it_covers() -> None:
    m = RevisionMetrics()
    for t in (T, T + 0.5, T + 10.2):
        m.record(0.004, 2, t)
    m.record(0.2, 5, T + 30.0)
    hist, errors = m.window(T + 30.5, 15)  # seconds 1015…1030: the last record only
    assert (sum(hist), errors) == (1, 1) and hist == _hist(b0_25=1)
    hist, errors = m.window(T + 30.5, 25)  # seconds 1005…1030
    assert (sum(hist), errors) == (2, 1) and hist == _hist(b0_005=1, b0_25=1)
    hist, errors = m.window(T + 30.5, 60)
    assert (sum(hist), errors) == (4, 1)
    assert m.window(T + 700.0, 60) == (_hist(), 0)  # nothing recorded since
    assert m.codes[:6] == [0, 0, 3, 0, 0, 1] and sum(m.hist) == 4  # totals since start


def test_the_window_spans_ten_minutes_of_per_second_snapshots() -> None:
    m = RevisionMetrics()
    for s in range(700):  # one request per second for 700 s
        m.record(0.001, 2, T + s)
    assert sum(m.window(T + 699, 600)[0]) == 601  # seconds 99…699
    assert len(m.snaps) <= 602


def test_quantiles_interpolate_inside_buckets_like_prometheus() -> None:
    # 10 requests ≤ 5 ms, 10 in (5 ms, 10 ms]: the median is the top of the first bucket.
    counts = _hist(b0_005=10, b0_01=10)
    assert histogram_quantile(0.5, counts) == pytest.approx(0.005)
    assert histogram_quantile(0.75, counts) == pytest.approx(0.0075)
    assert histogram_quantile(0.5, _hist(b0_0005=4)) == pytest.approx(0.00025)  # from 0
    assert histogram_quantile(0.99, _hist(b0_001=1, binf=99)) == BOUNDS[-1]  # +Inf bucket
    assert histogram_quantile(0.5, _hist()) is None


def test_merged_worker_stats_add_counts_and_recompute_rates_and_latency() -> None:
    def report(requests: int, errors: int, bucket: str) -> dict[str, Any]:
        return {"deployment": "web", "window": 60, "bounds": list(BOUNDS), "held": 1,
                "heldTotal": 2, "mirror": {"c": {"sent": 3, "compared": 2, "agreed": 1,
                                                "errors": 1, "dropped": 0}},
                "revisions": {"s": {"label": "stable", "requests": requests, "errors": errors,
                                    "rate": requests / 60, "inFlight": 1,
                                    "buckets": _hist(**{bucket: requests})}}}  # fmt: skip

    merged = merge_stats([report(10, 0, "b0_005"), report(30, 4, "b0_01")])
    s = merged["revisions"]["s"]
    assert (s["requests"], s["errors"], s["errorRate"], s["inFlight"]) == (40, 4, 0.1, 2)
    assert s["rate"] == pytest.approx(40 / 60) and s["label"] == "stable"
    assert s["latency"]["p50"] == pytest.approx(0.005 + 0.005 * 10 / 30, rel=1e-4)
    assert merged["mirror"]["c"] == {"sent": 6, "compared": 4, "agreed": 2, "errors": 2,
                                     "dropped": 0}  # fmt: skip
    assert (merged["held"], merged["heldTotal"], merged["workers"]) == (2, 4, 2)


# ---- a real router --------------------------------------------------------------------------


def test_stats_and_metrics_count_the_requests_sent_per_revision(
    backend: Callable[..., Any], router_thread: Callable[..., Any],
    raw_client: Callable[[int], RawClient],
) -> None:  # fmt: skip
    stable, _ = backend(id="stable")
    canary, _ = backend(id="canary")
    rt = router_thread()
    push(rt, [("s", stable, "r-stable"), ("c", canary, "r-canary")],
         {"r-stable": 3, "r-canary": 1}, labels={"r-stable": "stable", "r-canary": "canary"})
    client = raw_client(rt.port)
    assert [client.post(INFER, v2(1.0))[0] for _ in range(40)] == [200] * 40
    assert client.post("/nowhere", {})[0] == 404  # a 4xx from the replica
    doc = stats(rt, window=60)
    s, c = doc["revisions"]["r-stable"], doc["revisions"]["r-canary"]
    assert (s["label"], s["requests"], s["errors"], s["errorRate"]) == ("stable", 31, 0, 0.0)
    assert (c["label"], c["requests"], c["errors"], c["inFlight"]) == ("canary", 10, 0, 0)
    assert sum(s["buckets"]) == 31 and len(s["buckets"]) == len(doc["bounds"]) + 1
    assert s["rate"] > 0 and 0 < s["latency"]["p50"] <= s["latency"]["p99"]
    assert (doc["window"], doc["held"], doc["mirror"]) == (60, 0, {})

    text = RouterAdminClient(rt.admin_port).metrics()
    lbl = 'deployment="web",revision="r-stable",label="stable"'
    assert f'loopline_router_requests_total{{{lbl},code="2xx"}} 30' in text
    assert f'loopline_router_requests_total{{{lbl},code="4xx"}} 1' in text
    assert f'loopline_router_request_duration_seconds_bucket{{{lbl},le="+Inf"}} 31' in text
    assert f"loopline_router_request_duration_seconds_count{{{lbl}}} 31" in text
    assert f"loopline_router_in_flight{{{lbl}}} 0" in text
    assert '# TYPE loopline_router_request_duration_seconds histogram' in text
    r = httpx.get(f"http://127.0.0.1:{rt.admin_port}/metrics")
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")


def test_5xx_made_by_the_router_count_as_errors_of_the_revision(
    router_thread: Callable[..., Any], raw_client: Callable[[int], RawClient]
) -> None:
    rt = router_thread(health_interval=60.0)
    push(rt, [("dead", free_port(), "r1")])  # nothing listens there: 502 after the retry
    client = raw_client(rt.port)
    assert [client.post(INFER, v2(1.0))[0] for _ in range(3)] == [502] * 3
    r1 = stats(rt)["revisions"]["r1"]
    assert (r1["requests"], r1["errors"], r1["errorRate"]) == (3, 3, 1.0)
    text = RouterAdminClient(rt.admin_port).metrics()
    assert 'loopline_router_requests_total{deployment="web",revision="r1",label="",code="5xx"} 3' \
        in text  # fmt: skip
    assert 'loopline_router_failed_total{deployment="web"} 3' in text


def test_in_flight_counts_requests_being_answered_per_revision(
    backend: Callable[..., Any], router_thread: Callable[..., Any], tmp_path: Path
) -> None:
    gate = tmp_path / "open"
    port, _ = backend(id="slow", gate=gate)
    rt = router_thread()
    push(rt, [("a", port, "r1")])
    url = f"http://127.0.0.1:{rt.port}{INFER}"
    threads = [threading.Thread(target=httpx.post, args=(url,), kwargs={"json": {}, "timeout": 60})
               for _ in range(3)]  # fmt: skip
    for t in threads:
        t.start()
    wait_for_stats(rt, lambda d: d["revisions"]["r1"]["inFlight"] == 3, "3 in flight")
    text = RouterAdminClient(rt.admin_port).metrics()
    assert 'loopline_router_in_flight{deployment="web",revision="r1",label=""} 3' in text
    gate.touch()
    for t in threads:
        t.join(30)
    doc = wait_for_stats(rt, lambda d: d["revisions"]["r1"]["inFlight"] == 0, "none in flight")
    assert doc["revisions"]["r1"]["requests"] == 3


@pytest.mark.parametrize("window", ["0", "-5", "601", "soon"])
def test_a_bad_window_is_refused_with_the_parameter_named(
    router_thread: Callable[..., Any], window: str
) -> None:
    rt = router_thread()
    r = httpx.get(f"http://127.0.0.1:{rt.admin_port}/stats?window={window}")
    assert r.status_code == 400
    assert r.json()["error"].startswith("Query parameter 'window' must be a number of seconds")
    with pytest.raises(BackendError, match="answered 400"):
        RouterAdminClient(rt.admin_port).stats(601)
