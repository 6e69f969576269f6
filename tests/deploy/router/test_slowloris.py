"""500 slow connections (partial heads, one byte a second) against a real router process while
normal load runs: the normal requests all succeed, the slow ones are closed by the head
deadline, the router's memory stays bounded. Figures (p99 against a baseline) are in
benchmarks/router/slowloris.py, not here."""

from __future__ import annotations

import os
import secrets
import selectors
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.deploy.conftest import wait_until

from loopline.deploy.engines.local import free_port
from loopline.deploy.route_table import Backend, RouteTable
from loopline.deploy.router.client import RouterAdminClient
from loopline.deploy.traffic import Traffic

pytestmark = pytest.mark.slow
SLOW = 500
HEAD = b"POST /v2/models/m/infer HTTP/1.1\r\nhost: t\r\nx-slow: " + b"s" * 200
BODY = {"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1.0]}]}


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


@pytest.fixture
def router_process(tmp_path: Path, backend: Callable[..., Any]) -> Iterator[tuple[int, int]]:
    """A router process (head and idle deadlines of 2 s) in front of one fake replica:
    ``(port, pid)``."""
    replica, _ = backend(id="a")
    secret = secrets.token_urlsafe(32)
    secret_file = tmp_path / "admin.secret"
    secret_file.write_text(secret)
    secret_file.chmod(0o600)
    port, admin_port = free_port(), free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "loopline.deploy.router", "--name", "web", "--port", str(port),
         "--admin-port", str(admin_port), "--admin-secret-file", str(secret_file),
         "--head-timeout", "2", "--idle-timeout", "2", "--max-connections", "2000"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        admin = RouterAdminClient(admin_port, secret)
        wait_until(admin.healthy, 30, "the router process")
        admin.set_routes(RouteTable((Backend("a", "127.0.0.1", replica, "r"),), Traffic()))
        yield port, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


class SlowClients:
    """``count`` connections, each sending ``HEAD`` one byte a second until the router closes
    it; records what each got back."""

    def __init__(self, port: int, count: int) -> None:
        self.selector = selectors.DefaultSelector()
        self.sent: dict[socket.socket, int] = {}
        self.answers: list[bytes] = []
        for _ in range(count):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.sendall(HEAD[:1])
            s.setblocking(False)
            self.sent[s] = 1
            self.selector.register(s, selectors.EVENT_READ)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        next_byte = time.monotonic() + 1.0
        while self.sent and not self.stop.is_set():
            for key, _ in self.selector.select(timeout=0.2):
                self._closed(key.fileobj)  # type: ignore[arg-type]
            if time.monotonic() >= next_byte:
                next_byte += 1.0
                for s, n in list(self.sent.items()):
                    try:
                        s.send(HEAD[n : n + 1])
                        self.sent[s] = n + 1
                    except OSError:
                        self._closed(s)

    def _closed(self, s: socket.socket) -> None:
        if s not in self.sent:
            return
        try:
            data = s.recv(4096)
        except OSError:
            data = b""
        self.answers.append(data)
        del self.sent[s]
        self.selector.unregister(s)
        s.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)
        for s in self.sent:
            s.close()


def test_slow_connections_are_closed_by_the_deadline_while_normal_load_succeeds(
    router_process: tuple[int, int],
) -> None:
    port, pid = router_process
    url = f"http://127.0.0.1:{port}/v2/models/m/infer"
    with httpx.Client(timeout=10) as c:  # warm up
        assert all(c.post(url, json=BODY).status_code == 200 for _ in range(50))
    baseline = rss_kib(pid)
    statuses: list[int] = []
    failures: list[BaseException] = []
    done = threading.Event()

    def load() -> None:
        with httpx.Client(timeout=10) as c:
            while not done.is_set():
                try:
                    statuses.append(c.post(url, json=BODY).status_code)
                except httpx.HTTPError as exc:
                    failures.append(exc)

    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    slow = SlowClients(port, SLOW)
    peak = baseline
    try:
        deadline = time.monotonic() + 30  # the head deadline is 2 s (+ the sweep's lateness)
        while slow.sent and time.monotonic() < deadline:
            peak = max(peak, rss_kib(pid))
            time.sleep(0.2)
        assert not slow.sent, f"{len(slow.sent)} slow connections still open after 30 s"
    finally:
        done.set()
        for t in threads:
            t.join(15)
        slow.close()
    assert failures == [] and statuses and set(statuses) == {200}
    assert len(slow.answers) == SLOW
    assert all(a.startswith(b"HTTP/1.1 408") for a in slow.answers)
    # 500 connections with a partial head each: their buffers and protocol objects, not more
    assert peak - baseline < 64 * 1024, f"the router grew by {(peak - baseline) // 1024} MiB"
    assert os.path.exists(f"/proc/{pid}")
