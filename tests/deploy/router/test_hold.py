"""Holding requests while a deployment has no backend (scale from zero)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import httpx
from tests.deploy.router.helpers import push, stats, v2, wait_for_stats

INFER = "/v2/models/m/infer"


class Requests:
    """Requests sent from threads; their answers are kept."""

    def __init__(self, port: int, n: int) -> None:
        self.answers: list[httpx.Response] = []
        self.threads = [
            threading.Thread(target=self._send, args=(port,)) for _ in range(n)
        ]  # fmt: skip
        for t in self.threads:
            t.start()

    def _send(self, port: int) -> None:
        self.answers.append(
            httpx.post(f"http://127.0.0.1:{port}{INFER}", json=v2(1.0), timeout=60)
        )

    def join(self) -> list[httpx.Response]:
        for t in self.threads:
            t.join(60)
        return self.answers


def test_held_requests_are_sent_once_a_backend_arrives(
    backend: Callable[..., Any], router_thread: Callable[..., Any]
) -> None:
    rt = router_thread()
    push(rt, [], hold_seconds=120)  # scaled to zero
    sent = Requests(rt.port, 3)
    doc = wait_for_stats(rt, lambda d: d["held"] == 3, "3 held requests")
    assert doc["heldTotal"] == 3  # the autoscaler's demand signal
    port, _ = backend(id="cold-started")
    push(rt, [("a", port, "r1")], hold_seconds=120)
    answers = sent.join()
    assert [(r.status_code, r.json()["id"]) for r in answers] == [(200, "cold-started")] * 3
    doc = stats(rt)
    assert (doc["held"], doc["heldTotal"]) == (0, 3)
    assert doc["revisions"]["r1"]["requests"] == 3


def test_a_request_gets_503_with_retry_after_when_the_hold_expires(
    router_thread: Callable[..., Any],
) -> None:
    rt = router_thread()
    push(rt, [], hold_seconds=0.2)
    r = httpx.post(f"http://127.0.0.1:{rt.port}{INFER}", json=v2(1.0), timeout=30)
    assert r.status_code == 503 and r.headers["retry-after"] == "1"
    assert r.json()["error"].startswith("Deployment 'web' has no ready replica: this request "
                                        "waited")  # fmt: skip
    doc = stats(rt)
    assert (doc["held"], doc["heldTotal"]) == (0, 1)
    assert doc["revisions"][""]["errors"] == 1  # answered before any revision was chosen


def test_beyond_the_hold_limit_a_request_gets_503_at_once(
    backend: Callable[..., Any], router_thread: Callable[..., Any]
) -> None:
    rt = router_thread(hold_limit=2)
    push(rt, [], hold_seconds=120)
    held = Requests(rt.port, 2)
    wait_for_stats(rt, lambda d: d["held"] == 2, "2 held requests")
    r = httpx.post(f"http://127.0.0.1:{rt.port}{INFER}", json=v2(1.0), timeout=30)
    assert r.status_code == 503 and r.headers["retry-after"] == "1"
    assert "2 requests are already waiting for one" in r.json()["error"]
    port, _ = backend(id="a")
    push(rt, [("a", port, "r1")])
    assert [r.status_code for r in held.join()] == [200, 200]


def test_turning_the_hold_off_answers_held_requests_at_once(
    router_thread: Callable[..., Any],
) -> None:
    rt = router_thread()
    push(rt, [], hold_seconds=120)
    held = Requests(rt.port, 2)
    wait_for_stats(rt, lambda d: d["held"] == 2, "2 held requests")
    push(rt, [], hold_seconds=0)
    assert [r.status_code for r in held.join()] == [503, 503]


def test_without_a_hold_no_backend_is_503_at_once_without_retry_after(
    router_thread: Callable[..., Any],
) -> None:
    rt = router_thread()
    r = httpx.post(f"http://127.0.0.1:{rt.port}{INFER}", json=v2(1.0))
    assert r.status_code == 503 and "retry-after" not in r.headers
    assert stats(rt)["heldTotal"] == 0
