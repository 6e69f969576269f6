"""The admin port is held to the client port's limits: a connection cap answered 503, idle
connections reaped at the idle deadline (so the holder of the secret gets in again), heads and
bodies capped (431/413) and due by their deadlines (408) — on a router and on a multi-worker
router's supervisor."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.deploy.router.helpers import admin_secret

from loopline.deploy.engines.local import free_port
from loopline.deploy.route_table import Backend, RouteTable
from loopline.deploy.router.client import RouterAdminClient
from loopline.deploy.router.limits import RouterLimits
from loopline.deploy.traffic import Traffic
from loopline.errors import BackendError
from loopline.testing.artifacts import wait_for

TABLE = RouteTable((Backend("a", "127.0.0.1", 1, "r"),), Traffic())
QUICK = {"idle_timeout": 1.0, "head_timeout": 1.0, "body_timeout": 1.0}


def _connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=10)


def _until_closed(sock: socket.socket) -> bytes:
    """Everything ``sock`` receives until the peer closes it (10 s at most)."""
    data = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            data += chunk
    return data


def _routes_set(client: RouterAdminClient) -> bool:
    try:
        client.set_routes(TABLE)
    except BackendError as exc:
        assert "answered 503" in str(exc) and "open connections, its limit" in str(exc)
        return False
    return True


@pytest.fixture
def idle() -> Iterator[list[socket.socket]]:
    socks: list[socket.socket] = []
    yield socks
    for s in socks:
        s.close()


def _fill_and_wait_out(admin_port: int, client: RouterAdminClient, cap: int,
                       idle: list[socket.socket]) -> None:  # fmt: skip
    """Open ``cap`` idle connections: one more is refused 503 and so is the client's change;
    the idle ones are closed by the router at the idle deadline, without an answer, and then
    the client's change goes through."""
    idle += [_connect(admin_port) for _ in range(cap)]
    with _connect(admin_port) as extra:
        refused = _until_closed(extra)
    assert refused.startswith(b"HTTP/1.1 503 ") and b"retry-after: 1\r\n" in refused
    assert b"has %d open connections, its limit; retry shortly." % cap in refused
    assert not _routes_set(client)  # the holder of the secret is refused too, for now
    for s in idle:
        assert _until_closed(s) == b""  # reaped at the idle deadline, silently
    wait_for(lambda: _routes_set(client), timeout=10, what="the change once they are reaped")


def test_admin_connections_past_the_cap_are_refused_until_idle_ones_are_reaped(
    router_thread: Callable[..., Any], idle: list[socket.socket]
) -> None:
    # the default idle deadline (5 s): ample time to fill the cap and be refused first
    rt = router_thread(limits=RouterLimits(max_admin_connections=8))
    _fill_and_wait_out(rt.admin_port, rt.admin, 8, idle)
    assert [b["id"] for b in rt.admin.describe()["backends"]] == ["a"]


def test_an_admin_head_or_body_over_the_client_caps_is_refused_before_it_is_buffered(
    router_thread: Callable[..., Any],
) -> None:
    rt = router_thread()
    limits = RouterLimits()
    with _connect(rt.admin_port) as s:  # an endless head: cut at the head cap
        s.sendall(b"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n")
        with contextlib.suppress(ConnectionResetError, BrokenPipeError):
            for _ in range(1000):  # 16 MiB at most
                s.sendall(b"x-pad: " + b"a" * 16000 + b"\r\n")
        answer = _until_closed(s)
    assert answer.startswith(b"HTTP/1.1 431 ")
    assert b"larger than the %d-byte limit" % limits.max_header_bytes in answer
    auth = f"authorization: Bearer {rt.secret}\r\n".encode()
    with _connect(rt.admin_port) as s:
        s.sendall(b"PUT /backends HTTP/1.1\r\nhost: 127.0.0.1\r\n%scontent-length: %d\r\n\r\n"
                  % (auth, limits.max_body_bytes + 1))  # fmt: skip
        answer = _until_closed(s)
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert b"over the %d-byte limit" % limits.max_body_bytes in answer


@pytest.mark.parametrize(
    ("sent", "answer"),
    [
        (b"", b""),  # idle: closed without a word
        (b"PUT /backends HTTP/1.1\r\nhost: 127.0.0.1\r\n",
         b"The admin request head did not arrive within 1 s."),
        (b"PUT /backends HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer %(secret)s\r\n"
         b"content-length: 100\r\n\r\n{",
         b"The admin request body did not arrive within 1 s."),
    ],
    ids=["idle", "head", "body"],
)  # fmt: skip
def test_an_admin_request_that_stalls_is_closed_at_its_deadline(
    router_thread: Callable[..., Any], sent: bytes, answer: bytes
) -> None:
    rt = router_thread(limits=RouterLimits(**QUICK))
    with _connect(rt.admin_port) as s:
        s.sendall(sent.replace(b"%(secret)s", rt.secret.encode()))
        got = _until_closed(s)
    if answer:
        assert got.startswith(b"HTTP/1.1 408 ") and answer in got
    else:
        assert got == b""


@pytest.mark.slow
def test_a_multi_worker_routers_admin_api_has_the_same_cap(
    tmp_path: Path, idle: list[socket.socket]
) -> None:
    port, admin_port = free_port(), free_port()
    secret_file, secret = admin_secret(tmp_path)
    argv = [sys.executable, "-m", "loopline.deploy.router", "--name", "web",
            "--port", str(port), "--admin-port", str(admin_port), "--workers", "2",
            "--admin-secret-file", str(secret_file), "--max-admin-connections", "4"]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        client = RouterAdminClient(admin_port, secret)
        wait_for(lambda: _answers(admin_port), timeout=60, what="the supervisor's admin API")
        _fill_and_wait_out(admin_port, client, 4, idle)
        assert [b["id"] for b in client.describe()["backends"]] == ["a"]
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _answers(admin_port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{admin_port}/healthz", timeout=1).json()["ok"] is True
    except (httpx.HTTPError, ValueError):
        return False
