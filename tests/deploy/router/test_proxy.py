"""The router as a real HTTP proxy in front of real fake-model-server processes."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
from tests.deploy.conftest import wait_until

from loopline.deploy.engines.local import free_port
from loopline.deploy.route_table import Backend, RouteTable
from loopline.deploy.router.client import RouterAdminClient
from loopline.deploy.traffic import Traffic

INFER = "/v2/models/m/infer"
BODY = {"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1.0]}]}


def _set(
    rt: Any, backends: list[tuple[str, int, str]], weights: dict[str, int] | None = None
) -> None:
    rt.admin.set_routes(
        RouteTable(
            tuple(Backend(id=i, host="127.0.0.1", port=p, revision=r) for i, p, r in backends),
            Traffic(None if weights is None else tuple(sorted(weights.items()))),
        )
    )


def test_balances_across_backends_and_applies_exact_weights(
    backend: Callable[..., Any], router_thread: Callable[..., Any]
) -> None:
    pa, _ = backend(id="a")
    pb, _ = backend(id="b")
    rt = router_thread()
    _set(rt, [("a", pa, "r1"), ("b", pb, "r2")])
    with httpx.Client(base_url=f"http://127.0.0.1:{rt.port}") as c:
        ids = Counter(c.post(INFER, json=BODY).json()["id"] for _ in range(20))
        assert ids == {"a": 10, "b": 10}
        _set(rt, [("a", pa, "r1"), ("b", pb, "r2")], {"r1": 3, "r2": 1})
        ids = Counter(c.post(INFER, json=BODY).json()["id"] for _ in range(40))
        assert ids == {"a": 30, "b": 10}


def test_answers_503_with_a_clear_message_when_no_replica_is_ready(
    router_thread: Callable[..., Any],
) -> None:
    rt = router_thread()
    r = httpx.post(f"http://127.0.0.1:{rt.port}{INFER}", json=BODY)
    assert r.status_code == 503
    assert "Deployment 'web' has no ready replica" in r.json()["error"]


def test_retries_once_on_another_backend_when_the_connection_fails(
    backend: Callable[..., Any], router_thread: Callable[..., Any]
) -> None:
    pa, _ = backend(id="a")
    dead_port = free_port()  # nothing listens here
    rt = router_thread(health_interval=60.0)
    _set(rt, [("dead", dead_port, "r"), ("a", pa, "r")])
    with httpx.Client(base_url=f"http://127.0.0.1:{rt.port}") as c:
        codes = [c.post(INFER, json=BODY).status_code for _ in range(10)]
    assert codes == [200] * 10
    info = RouterAdminClient(rt.admin_port).describe()
    assert info["stats"]["retries"] >= 1 and info["stats"]["failed"] == 0
    dead = next(b for b in info["backends"] if b["id"] == "dead")
    assert dead["healthy"] is False


def test_kill_of_a_backend_under_load_loses_no_request(
    backend: Callable[..., Any], router_thread: Callable[..., Any]
) -> None:
    pa, proc_a = backend(id="a", latency_ms=2)
    pb, _ = backend(id="b", latency_ms=2)
    rt = router_thread()
    _set(rt, [("a", pa, "r"), ("b", pb, "r")])
    failures: list[object] = []
    done = threading.Event()

    def load() -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{rt.port}", timeout=5) as c:
            while not done.is_set():
                try:
                    r = c.post(INFER, json=BODY)
                    if r.status_code != 200:
                        failures.append(r.status_code)
                except httpx.HTTPError as exc:
                    failures.append(exc)

    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    proc_a.kill()
    time.sleep(1.0)
    done.set()
    for t in threads:
        t.join(10)
    assert failures == []


def test_drain_waits_for_in_flight_requests_and_sends_new_ones_elsewhere(
    backend: Callable[..., Any], router_thread: Callable[..., Any]
) -> None:
    slow, _ = backend(id="slow", latency_ms=800)
    fast, _ = backend(id="fast")
    rt = router_thread()
    _set(rt, [("slow", slow, "r"), ("fast", fast, "r")])
    url = f"http://127.0.0.1:{rt.port}{INFER}"
    answers: list[str] = []
    # Two concurrent requests: one of them lands on "slow" (least outstanding, rotating).
    threads = [
        threading.Thread(target=lambda: answers.append(httpx.post(url, json=BODY).json()["id"]))
        for _ in range(2)
    ]
    for t in threads:
        t.start()
    time.sleep(0.3)
    started = time.monotonic()
    assert rt.admin.drain("slow", timeout=5)
    assert time.monotonic() - started > 0.2  # it waited for the in-flight request
    assert {httpx.post(url, json=BODY).json()["id"] for _ in range(6)} == {"fast"}
    for t in threads:
        t.join(5)
    assert sorted(answers) == ["fast", "slow"]


def test_health_checks_take_an_unready_backend_out_and_bring_it_back(
    backend: Callable[..., Any], router_thread: Callable[..., Any]
) -> None:
    pa, _ = backend(id="a")
    pb, _ = backend(id="b", ready_delay=5.0, wait=False)  # unready for 5 s from its start
    rt = router_thread(health_interval=0.2, unhealthy_after=1)
    _set(rt, [("a", pa, "r"), ("b", pb, "r")])

    def healthy() -> dict[str, bool]:
        return {b["id"]: b["healthy"] for b in rt.admin.describe()["backends"]}

    wait_until(lambda: healthy() == {"a": True, "b": False}, 5, "b taken out")
    url = f"http://127.0.0.1:{rt.port}{INFER}"
    assert {httpx.post(url, json=BODY).json()["id"] for _ in range(6)} == {"a"}
    wait_until(lambda: healthy() == {"a": True, "b": True}, 20, "b back once ready")
    assert {httpx.post(url, json=BODY).json()["id"] for _ in range(6)} == {"a", "b"}


def test_forwards_chunked_request_bodies_and_rejects_garbage(
    backend: Callable[..., Any], router_thread: Callable[..., Any]
) -> None:
    pa, _ = backend(id="a")
    rt = router_thread()
    _set(rt, [("a", pa, "r")])

    def gen() -> Any:
        yield b'{"inputs": '
        yield b"[]}"

    r = httpx.post(f"http://127.0.0.1:{rt.port}{INFER}", content=gen())
    assert r.status_code == 200 and r.json()["id"] == "a"
    import socket

    with socket.create_connection(("127.0.0.1", rt.port), timeout=2) as s:
        s.sendall(b"POST /x HTTP/1.1\r\ncontent-length: nope\r\n\r\n")
        assert s.recv(200).startswith(b"HTTP/1.1 400")


def test_answers_expect_100_continue_itself_and_forwards_the_body(
    backend: Callable[..., Any], router_thread: Callable[..., Any]
) -> None:
    import socket

    pa, _ = backend(id="a")
    rt = router_thread()
    _set(rt, [("a", pa, "r")])
    body = b'{"inputs": []}'
    with socket.create_connection(("127.0.0.1", rt.port), timeout=5) as s:
        s.sendall(
            b"POST /v2/models/m/infer HTTP/1.1\r\nhost: x\r\nexpect: 100-continue\r\n"
            b"content-length: %d\r\n\r\n" % len(body)
        )
        assert s.recv(100).startswith(b"HTTP/1.1 100 Continue")
        s.sendall(body)
        reply = s.recv(1000)
    assert reply.startswith(b"HTTP/1.1 200") and b'"id": "a"' in reply
