"""The multi-worker router (supervisor + N proxies on one port) as real processes."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.deploy.router.helpers import admin_secret

from loopline.deploy.engines.local import LocalEngine, free_port
from loopline.deploy.route_table import Backend, RouteTable
from loopline.deploy.router.client import RouterAdminClient
from loopline.deploy.traffic import Mirror, Traffic
from loopline.testing.artifacts import wait_for

INFER = "/v2/models/m/infer"
pytestmark = pytest.mark.slow


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        out += [int(c) for c in (task / "children").read_text().split()]
    return out


def test_workers_share_the_port_follow_one_backend_set_and_are_restarted(
    backend: Callable[..., Any], tmp_path: Path
) -> None:
    pa, _ = backend(id="a")
    pb, _ = backend(id="b")
    engine = LocalEngine(log_dir=tmp_path, router_ready_timeout=30)
    admin_port = free_port()
    secret_file, secret = admin_secret(tmp_path)
    handle = engine.start_router("web", 0, admin_port, workers=2, admin_secret_file=secret_file)
    try:
        client = RouterAdminClient(admin_port, secret)
        # the supervisor asks for the secret too (its workers are driven with it)
        assert httpx.put(f"http://127.0.0.1:{admin_port}/backends", json={}).status_code == 401
        client.set_routes(
            RouteTable(
                (Backend("a", "127.0.0.1", pa, "r1"), Backend("b", "127.0.0.1", pb, "r2")),
                Traffic((("r1", 1), ("r2", 1))),
            )
        )
        url = f"http://127.0.0.1:{handle.port}{INFER}"
        ids: Counter[str] = Counter()
        for _ in range(40):  # new connection each time: the kernel spreads them over workers
            ids[httpx.post(url, json={}).json()["id"]] += 1
        assert set(ids) == {"a", "b"}
        info = client.describe()
        assert info["workers"] == 2 and info["stats"]["requests"] == 40
        assert client.drain("a", timeout=2)
        assert {httpx.post(url, json={}).json()["id"] for _ in range(10)} == {"b"}

        workers = _children(handle.pid)
        assert len(workers) == 2
        os.kill(workers[0], signal.SIGKILL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            alive = [p for p in _children(handle.pid) if p != workers[0]]
            if len(alive) == 2 and client.healthy():
                break
            time.sleep(0.2)
        else:
            raise AssertionError("the killed worker was not restarted")
        # The restarted worker got the last backend set again.
        codes = [httpx.post(url, json={}) for _ in range(20)]
        assert [r.status_code for r in codes] == [200] * 20, [r.text for r in codes]
    finally:
        engine.stop(handle, grace=10)
    assert engine.poll(handle) is not None


def test_workers_stop_when_the_supervisor_is_killed_with_sigkill(tmp_path: Path) -> None:
    engine = LocalEngine(log_dir=tmp_path, router_ready_timeout=30)
    handle = engine.start_router("web", 0, free_port(), workers=2,
                                 admin_secret_file=admin_secret(tmp_path)[0])
    try:
        deadline = time.monotonic() + 20
        while len(workers := _children(handle.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(workers) == 2
        os.kill(handle.pid, signal.SIGKILL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() for p in workers):
            engine.poll(handle)  # reap the supervisor
            time.sleep(0.05)
        assert not any(Path(f"/proc/{p}").exists() for p in workers), "orphaned router workers"
    finally:
        engine.stop(handle, grace=5)


def test_workers_share_the_preview_port_and_their_figures_add_up(
    backend: Callable[..., Any], tmp_path: Path
) -> None:
    blue, _ = backend(id="blue", echo="")
    green, _ = backend(id="green", echo="", disagree_every=2)  # wrong on even inputs
    engine = LocalEngine(log_dir=tmp_path, router_ready_timeout=30)
    admin_port, preview_port = free_port(), free_port()
    secret_file, secret = admin_secret(tmp_path)
    handle = engine.start_router("web", 0, admin_port, workers=2, preview_port=preview_port,
                                 admin_secret_file=secret_file)
    try:
        client = RouterAdminClient(admin_port, secret)
        backends = (Backend("b", "127.0.0.1", blue, "blue"),
                    Backend("g", "127.0.0.1", green, "green"))  # fmt: skip
        client.set_routes(RouteTable(
            backends, Traffic((("blue", 1),), mirror=Mirror("green", 100), preview="green"),
            labels=(("blue", "stable"), ("green", "preview")),
        ))  # fmt: skip

        def body(x: int) -> dict[str, Any]:
            return {"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [x]}]}

        for x in range(30):  # a new connection each time: both workers get some
            r = httpx.post(f"http://127.0.0.1:{handle.port}{INFER}", json=body(x))
            assert r.json()["id"] == "blue"
        for x in range(10):
            r = httpx.post(f"http://127.0.0.1:{preview_port}{INFER}", json=body(x))
            assert r.json()["id"] == "green"
        want = {"sent": 30, "compared": 30, "agreed": 15, "errors": 0, "dropped": 0}
        wait_for(lambda: client.stats(60)["mirror"].get("green") == want, timeout=20,
                 what=f"the mirror counters to reach {want}")  # fmt: skip
        doc = client.stats(60)
        assert doc["workers"] == 2
        assert doc["revisions"]["blue"]["requests"] == 30
        assert sum(doc["revisions"]["blue"]["buckets"]) == 30
        assert doc["revisions"]["green"]["requests"] == 10
        assert doc["revisions"]["green"]["label"] == "preview"
        text = client.metrics()
        assert ('loopline_router_requests_total{deployment="web",revision="blue",'
                'label="stable",code="2xx"} 30') in text  # fmt: skip
        assert text.count("# TYPE loopline_router_requests_total counter") == 1
        assert 'loopline_router_mirror_agreed_total{deployment="web",revision="green"} 15' in text
    finally:
        engine.stop(handle, grace=10)
