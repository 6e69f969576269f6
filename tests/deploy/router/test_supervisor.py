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

from loopline.deploy.engines.local import LocalEngine, free_port
from loopline.deploy.route_table import Backend, RouteTable
from loopline.deploy.router.client import RouterAdminClient
from loopline.deploy.traffic import Traffic

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
    engine = LocalEngine(log_dir=tmp_path)
    admin_port = free_port()
    handle = engine.start_router("web", 0, admin_port, workers=2)
    try:
        client = RouterAdminClient(admin_port)
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
    engine = LocalEngine(log_dir=tmp_path)
    handle = engine.start_router("web", 0, free_port(), workers=2)
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
