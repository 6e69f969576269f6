"""Hostile clients against a real worker process on 127.0.0.1: 30 MiB of headers, and 500
slowloris connections (partial heads, one byte a second) while normal requests keep flowing.

Memory is the worker's resident set read from /proc; the latency figures (p99 under attack
against a baseline) are printed by ``benchmarks/serving/slowloris.py``, not asserted here."""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import orjson
import pytest
from tests.serving.conftest import Models

from loopline.serving import ServedModel, ServerOptions, serve_worker
from loopline.serving.limits import HttpLimits
from loopline.testing.artifacts import wait_for

pytestmark = pytest.mark.slow

MIB = 1 << 20


class WorkerProcess:
    """One model-server worker (``serve_worker``) forked with the test's loaded model."""

    def __init__(self, models: Models, limits: HttpLimits) -> None:
        reserve = socket.socket()
        reserve.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        reserve.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        reserve.bind(("127.0.0.1", 0))
        self._reserve = reserve  # keeps the port ours until the worker listens on it
        self.port = reserve.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        served = [ServedModel("lr", "1", models.lr)]
        self.proc = multiprocessing.get_context("fork").Process(
            target=serve_worker,
            args=(served,),
            kwargs={
                "host": "127.0.0.1",
                "port": self.port,
                "options": ServerOptions(http=limits),
                "graceful_timeout": 2.0,
            },
            daemon=True,
        )
        self.proc.start()

        def ready() -> bool:
            try:
                return httpx.get(f"{self.url}/v2/health/ready", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        wait_for(ready, timeout=60, what="the worker process to be ready")

    def rss_bytes(self) -> int:
        with open(f"/proc/{self.proc.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS line")

    def stop(self) -> None:
        if self.proc.pid is not None and self.proc.is_alive():
            os.kill(self.proc.pid, signal.SIGTERM)
        self.proc.join(15)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(5)
        self._reserve.close()


@pytest.fixture()
def worker(models: Models, request: pytest.FixtureRequest) -> Iterator[WorkerProcess]:
    limits = getattr(request, "param", HttpLimits())
    process = WorkerProcess(models, limits)
    try:
        yield process
    finally:
        process.stop()


def _infer_body(models: Models) -> bytes:
    tensor = {"name": "input", "shape": [1, 30], "datatype": "FP64", "data": models.x[0].tolist()}
    return orjson.dumps({"inputs": [tensor]})


def test_thirty_mib_of_headers_are_refused_early_and_the_worker_does_not_grow(
    worker: WorkerProcess,
) -> None:
    before = worker.rss_bytes()
    chunk = (b"X-Pad: " + b"a" * 1000 + b"\r\n") * 64  # 64 KiB of header lines per send
    sent = 0
    answer = b""
    with socket.create_connection(("127.0.0.1", worker.port), timeout=20) as sock:
        sock.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: t\r\n")
        try:
            while sent < 30 * MIB:  # the head never ends: only a refusal stops this early
                sock.sendall(chunk)
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            answer = sock.recv(65536)
        except OSError:  # the reset may drop the answer before it is read
            pass
    assert sent < 30 * MIB, "the server read all 30 MiB of headers without refusing them"
    assert answer == b"" or answer.startswith(b"HTTP/1.1 431 ")
    assert worker.rss_bytes() - before < 8 * MIB


class Slowloris:
    """``count`` connections that each send a partial head, one byte a second."""

    HEAD = b"GET /v2/health/live HTTP/1.1\r\nHost: t\r\nX-Slow: " + b"s" * 200

    def __init__(self, port: int, count: int) -> None:
        self.sockets: list[socket.socket] = []
        self.closed_after: list[float] = []  # seconds from the first byte to the close
        self.answers: list[bytes] = []
        self._opened: dict[socket.socket, float] = {}
        self._sent: dict[socket.socket, int] = {}
        for _ in range(count):
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            sock.sendall(self.HEAD[:1])
            sock.setblocking(False)
            self._opened[sock] = time.monotonic()
            self._sent[sock] = 1
            self.sockets.append(sock)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drip, daemon=True)
        self._thread.start()

    @property
    def open(self) -> int:
        return len(self._opened)

    def _drip(self) -> None:
        while self._opened and not self._stop.wait(1.0):
            for sock in list(self._opened):
                self._poll(sock)

    def _poll(self, sock: socket.socket) -> None:
        try:
            data = sock.recv(65536)
        except BlockingIOError:
            data = None
        except OSError:
            data = b""
        if data:
            self.answers.append(data)
        if data is not None:  # answered or closed: the server gave up on it
            self.closed_after.append(time.monotonic() - self._opened.pop(sock))
            return
        n = self._sent[sock]
        try:
            sock.send(self.HEAD[n : n + 1])
            self._sent[sock] = n + 1
        except OSError:
            self.closed_after.append(time.monotonic() - self._opened.pop(sock))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)
        for sock in self.sockets:
            sock.close()


def _normal_load(url: str, body: bytes, seconds: float) -> list[int]:
    """Keep-alive inference requests from 4 threads for ``seconds``; their statuses."""
    statuses: list[int] = []
    end = time.monotonic() + seconds

    def run() -> None:
        with httpx.Client(base_url=url, timeout=10) as client:
            while time.monotonic() < end:
                response = client.post("/v2/models/lr/infer", content=body)
                statuses.append(response.status_code)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 30)
    return statuses


@pytest.mark.parametrize(
    "worker", [HttpLimits(head_timeout=2.0, idle_timeout=2.0)], indirect=True, ids=["2s"]
)
def test_five_hundred_slowloris_connections_are_closed_at_the_deadline_while_requests_succeed(
    worker: WorkerProcess, models: Models
) -> None:
    body = _infer_body(models)
    assert set(_normal_load(worker.url, body, 1.0)) == {200}  # warm
    before = worker.rss_bytes()
    attack = Slowloris(worker.port, 500)
    try:
        statuses = _normal_load(worker.url, body, 3.0)  # while the 500 are open
        during = worker.rss_bytes()
        wait_for(lambda: attack.open == 0, timeout=60, what="every slow connection closed")
    finally:
        attack.close()
    assert statuses and set(statuses) == {200}
    # every one was closed by the server (the client never closes), with a 408 when the
    # answer arrived before the client's next byte made the closed socket reset
    assert len(attack.closed_after) == 500
    assert attack.answers and all(a.startswith(b"HTTP/1.1 408 ") for a in attack.answers)
    assert during - before < 32 * MIB

