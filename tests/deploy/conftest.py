"""Fixtures for loopline.deploy tests: real fake-model-server processes and routers."""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from loopline.deploy.engines.local import free_port
from loopline.deploy.router.client import RouterAdminClient
from loopline.deploy.router.proxy import Router
from loopline.deploy.router.server import serve

FAKE_SERVER = Path(__file__).with_name("fake_server.py")


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``check`` with back-off until true; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    delay = 0.01
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(delay)
        delay = min(delay * 2, 0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def is_ready(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/v2/health/ready", timeout=0.5).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture
def backend() -> Iterator[Callable[..., tuple[int, subprocess.Popen[bytes]]]]:
    """Start fake model servers: ``port, proc = backend(id="a", latency_ms=5, wait=True)``."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(
        id: str = "x", wait: bool = True, **opts: object
    ) -> tuple[int, subprocess.Popen[bytes]]:
        port = free_port()
        argv = [sys.executable, str(FAKE_SERVER), "--port", str(port), "--id", id]
        for key, value in opts.items():
            argv += [f"--{key.replace('_', '-')}", str(value)]
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(proc)
        if wait:
            wait_until(lambda: is_ready(port), 10, f"fake server {id} on port {port}")
        return port, proc

    yield start
    for proc in procs:
        proc.kill()
        proc.wait(timeout=5)


class RouterThread:
    """A Router served by an event loop on a background thread; ``admin`` is an admin client
    holding its secret."""

    def __init__(self, router: Router) -> None:
        self.router = router
        self.port = free_port()
        self.admin_port = free_port()
        self.secret = secrets.token_urlsafe(32)
        self.admin = RouterAdminClient(self.admin_port, self.secret)
        self.runner = asyncio.Runner()
        self.loop = self.runner.get_loop()
        self._stop = asyncio.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self.runner.run(
            serve(
                self.router,
                host="127.0.0.1",
                port=self.port,
                admin_port=self.admin_port,
                admin_secret=self.secret,
                stop=self._stop,
                shutdown_grace=2.0,
            )
        )
        self.runner.close()

    def start(self) -> RouterThread:
        self._thread.start()
        wait_until(
            lambda: _status(f"http://127.0.0.1:{self.admin_port}/healthz") == 200, 5, "router"
        )
        return self

    def call(self, fn: Callable[[], object]) -> None:
        """Run ``fn`` on the router's loop and wait for it."""
        done = threading.Event()

        def run() -> None:
            fn()
            done.set()

        self.loop.call_soon_threadsafe(run)
        done.wait(5)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


def _status(url: str) -> int | None:
    try:
        return httpx.get(url, timeout=0.5).status_code
    except httpx.HTTPError:
        return None


@pytest.fixture
def router_thread() -> Iterator[Callable[..., RouterThread]]:
    threads: list[RouterThread] = []

    def start(**kw: object) -> RouterThread:
        rt = RouterThread(Router("web", **kw)).start()  # type: ignore[arg-type]
        threads.append(rt)
        return rt

    yield start
    for rt in threads:
        rt.stop()
