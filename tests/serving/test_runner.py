"""The real `loopline serve` process: workers sharing a port, graceful SIGTERM, restarts."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from sklearn.neighbors import KNeighborsClassifier

from loopline.bundle import infer_signature, save_model

pytestmark = pytest.mark.slow


class ServeProcess:
    def __init__(self, args: list[str]) -> None:
        cmd = [sys.executable, "-c", "from loopline.cli.main import main; main()", "serve", *args]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self._read_line(deadline_s=60)
        if "listening on" not in line:
            self.proc.kill()
            _, err = self.proc.communicate()  # reaps it and closes both pipes
            raise RuntimeError(f"server did not start: {line!r} {err}")
        self.url = line.split("listening on ")[1].split()[0]

    def _read_line(self, deadline_s: float) -> str:
        assert self.proc.stdout is not None
        result: list[str] = []
        t = threading.Thread(target=lambda: result.append(self.proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
        t.start()
        t.join(deadline_s)
        return result[0] if result else ""

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        delay = 0.02
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/v2/health/ready", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(delay)
            delay = min(delay * 2, 0.5)
        raise TimeoutError("server not ready within the deadline")

    def workers(self) -> list[int]:
        path = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        return [int(p) for p in path.read_text().split()]

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()
        return self.proc.returncode


@pytest.fixture(scope="module")
def slow_model(tmp_path_factory: pytest.TempPathFactory, models: Any) -> Path:
    """A model that takes ~20 ms per request whatever loopline optimises: brute-force
    nearest neighbours (Minkowski p=3) over 40,000 stored rows."""
    path = tmp_path_factory.mktemp("slow") / "slow"
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40_000, 30)) * models.x.std(axis=0) + models.x.mean(axis=0)
    y = (x[:, 0] > 14).astype(int)
    knn = KNeighborsClassifier(n_neighbors=5, algorithm="brute", p=3).fit(x, y)
    save_model(knn, path, signature=infer_signature(x, y), input_example=x[:1])
    return path


@pytest.fixture()
def two_workers(slow_model: Path) -> Iterator[ServeProcess]:
    args = ["--allow-unverified", "--port", "0", "--workers", "2", "--graceful-timeout", "20"]
    server = ServeProcess([str(slow_model), *args])
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _infer(url: str, models: Any, out: list[int], keepalive: bool = True) -> None:
    limits = httpx.Limits(max_keepalive_connections=None if keepalive else 0)
    body = {
        "inputs": [
            {"name": "input", "shape": [1, 30], "datatype": "FP64", "data": models.x[0].tolist()}
        ]
    }
    with httpx.Client(timeout=30, limits=limits) as c:
        try:
            out.append(c.post(f"{url}/v2/models/slow/infer", json=body).status_code)
        except httpx.TransportError:
            out.append(-1)


def test_workers_share_one_port_and_both_take_load(two_workers: ServeProcess, models: Any) -> None:
    pids = two_workers.workers()
    assert len(pids) == 2
    before = {p: _cpu_seconds(p) for p in pids}
    statuses: list[int] = []

    def client() -> None:
        for _ in range(15):
            _infer(two_workers.url, models, statuses, keepalive=False)

    threads = [threading.Thread(target=client) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert statuses == [200] * 120
    used = {p: _cpu_seconds(p) - before[p] for p in pids}
    total = sum(used.values())
    assert min(used.values()) > 0.2 * total, f"load was not shared: {used}"


def _send_raw(url: str, models: Any) -> socket.socket:
    """Open a connection and send one whole inference request; the reply is read later."""
    host, port = url.removeprefix("http://").split(":")
    body = json.dumps(
        {
            "inputs": [
                {
                    "name": "input",
                    "shape": [1, 30],
                    "datatype": "FP64",
                    "data": models.x[0].tolist(),
                }
            ]
        }
    ).encode()
    head = (
        f"POST /v2/models/slow/infer HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    sock = socket.create_connection((host, int(port)), timeout=30)
    sock.sendall(head.encode() + body)
    return sock


def _status_of(sock: socket.socket) -> int:
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except OSError:
        return -1
    finally:
        sock.close()
    return int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1 ") else -1


def test_sigterm_answers_every_request_in_flight_then_exits_zero(
    two_workers: ServeProcess, models: Any
) -> None:
    socks = [_send_raw(two_workers.url, models) for _ in range(24)]  # 24 × ~20 ms of work
    two_workers.proc.send_signal(signal.SIGTERM)
    statuses = [_status_of(s) for s in socks]
    code = two_workers.proc.wait(30)
    assert statuses == [200] * 24
    assert code == 0
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{two_workers.url}/v2/health/live", timeout=2)


def test_readiness_turns_false_during_drain_while_requests_still_succeed(
    slow_model: Path, models: Any
) -> None:
    server = ServeProcess(
        [str(slow_model), "--allow-unverified", "--port", "0", "--drain-seconds", "2"]
    )
    try:
        server.wait_ready()
        server.proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        assert httpx.get(f"{server.url}/v2/health/ready", timeout=5).status_code == 503
        statuses: list[int] = []
        _infer(server.url, models, statuses)
        assert statuses == [200]
        assert server.proc.wait(30) == 0
    finally:
        server.stop()


def test_a_killed_worker_is_replaced(two_workers: ServeProcess, models: Any) -> None:
    victim = two_workers.workers()[0]
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        pids = two_workers.workers()
        if len(pids) == 2 and victim not in pids:
            break
        time.sleep(0.1)
    assert len(two_workers.workers()) == 2 and victim not in two_workers.workers()
    two_workers.wait_ready()
    statuses: list[int] = []
    for _ in range(10):
        _infer(two_workers.url, models, statuses, keepalive=False)
    assert statuses == [200] * 10


def test_workers_stop_when_the_supervisor_is_killed_with_sigkill(
    two_workers: ServeProcess, models: Any
) -> None:
    pids = two_workers.workers()
    socks = [_send_raw(two_workers.url, models) for _ in range(6)]
    two_workers.proc.kill()
    statuses = [_status_of(s) for s in socks]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() for p in pids):
        time.sleep(0.05)
    assert not any(Path(f"/proc/{p}").exists() for p in pids), "orphaned workers still run"
    assert statuses == [200] * 6  # they stopped gracefully: what reached them was answered
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{two_workers.url}/v2/health/live", timeout=2)


def test_unbindable_port_and_missing_bundle_are_clear_errors(
    tmp_path: Path, slow_model: Path
) -> None:
    cmd = [sys.executable, "-c", "from loopline.cli.main import main; main()", "serve",
           "--allow-unverified"]  # fmt: skip
    r = subprocess.run([*cmd, str(tmp_path / "ghost")], capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and "Traceback" not in r.stderr
    r = subprocess.run([*cmd, str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "is not a model bundle" in r.stderr
