"""The router's admin API: changes need the router's secret, reads stay open to loopback,
a non-loopback Host is refused, and an admin request is bounded in size and time."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.deploy.router.helpers import push

from loopline.deploy.route_table import Backend, RouteTable
from loopline.deploy.router.admin import read_secret
from loopline.deploy.router.client import RouterAdminClient
from loopline.deploy.router.limits import RouterLimits
from loopline.deploy.router.wire import table_to_json
from loopline.deploy.traffic import Traffic
from loopline.errors import BackendError

INFER = "/v2/models/m/infer"
BODY = {"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1.0]}]}


def _ids(port: int, n: int = 6) -> set[str]:
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as c:
        return {c.post(INFER, json=BODY).json()["id"] for _ in range(n)}


def test_a_local_process_without_the_secret_cannot_repoint_the_router(
    router_thread: Callable[..., Any], backend: Callable[..., Any]
) -> None:
    real, _ = backend(id="real")
    evil, _ = backend(id="evil")  # a listener of another local process
    rt = router_thread()
    push(rt, [("real", real, "r")])
    hijack = table_to_json(RouteTable((Backend("x", "127.0.0.1", evil, "r"),), Traffic()))
    url = f"http://127.0.0.1:{rt.admin_port}"
    r = httpx.put(f"{url}/backends", json=hijack)
    assert r.status_code == 401
    assert "PUT /backends needs the router's admin secret" in r.json()["error"]
    wrong = {"authorization": "Bearer " + "x" * 43}
    assert httpx.put(f"{url}/backends", json=hijack, headers=wrong).status_code == 401
    assert httpx.post(f"{url}/drain", json={"id": "real", "timeout": 1}).status_code == 401
    with pytest.raises(BackendError, match="answered 401"):
        RouterAdminClient(rt.admin_port).drain("real", 1)  # a client without the secret
    assert _ids(rt.port) == {"real"}  # the traffic never moved
    rt.admin.set_routes(RouteTable((Backend("e", "127.0.0.1", evil, "r"),), Traffic()))
    assert _ids(rt.port) == {"evil"}  # the holder of the secret can


def test_reads_stay_open_to_loopback_clients(router_thread: Callable[..., Any]) -> None:
    rt = router_thread()
    url = f"http://127.0.0.1:{rt.admin_port}"
    for path in ("/healthz", "/backends", "/stats?window=10", "/metrics"):
        assert httpx.get(url + path).status_code == 200, path
    assert httpx.get(f"http://localhost:{rt.admin_port}/healthz").status_code == 200


def test_a_request_naming_another_host_is_refused_even_for_reads(
    router_thread: Callable[..., Any],
) -> None:
    rt = router_thread()
    r = httpx.get(f"http://127.0.0.1:{rt.admin_port}/backends",
                  headers={"host": "rebound.example:80"})  # fmt: skip
    assert r.status_code == 421 and "'rebound.example:80' is not loopback" in r.json()["error"]


def test_an_admin_body_over_the_limit_is_refused_before_it_is_read(
    router_thread: Callable[..., Any],
) -> None:
    rt = router_thread()
    for method, headers, status in [
        (b"PUT", {}, 401), (b"PUT", {"authorization": f"Bearer {rt.secret}"}, 413),
        (b"GET", {}, 400),  # a read without the secret takes no body at all
    ]:  # fmt: skip
        with socket.create_connection(("127.0.0.1", rt.admin_port), timeout=10) as s:
            extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
            s.sendall(b"%s /backends HTTP/1.1\r\nhost: 127.0.0.1\r\n%s"
                      b"content-length: 1073741824\r\n\r\n" % (method, extra.encode()))  # fmt: skip
            assert s.recv(65536).startswith(b"HTTP/1.1 %d" % status)


def test_an_admin_request_that_stalls_is_closed_at_the_deadline(
    router_thread: Callable[..., Any],
) -> None:
    rt = router_thread(limits=RouterLimits(head_timeout=0.5))
    with socket.create_connection(("127.0.0.1", rt.admin_port), timeout=10) as s:
        s.sendall(b"PUT /backends HTTP/1.1\r\nhost: 127.0.0.1\r\n")
        assert s.recv(65536).startswith(b"HTTP/1.1 408")


def test_a_secret_file_others_can_read_or_a_short_secret_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s"
    path.write_text("k" * 43)
    path.chmod(0o644)
    with pytest.raises(ValueError, match=r"has mode 644; it must be readable by its owner only"):
        read_secret(path)
    path.chmod(0o600)
    assert read_secret(path) == "k" * 43
    path.write_text("short\n")
    with pytest.raises(ValueError, match="has 5 characters; it needs at least 32"):
        read_secret(path)
    with pytest.raises(ValueError, match="Cannot read the router's admin secret file"):
        read_secret(tmp_path / "missing")


def test_the_router_process_does_not_start_without_a_private_secret_file(tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "loopline.deploy.router", "--name", "web", "--port", "0",
            "--admin-port", "1"]  # fmt: skip
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "--admin-secret-file" in out.stderr
    path = tmp_path / "s"
    path.write_text("k" * 43)
    path.chmod(0o640)
    out = subprocess.run([*argv, "--admin-secret-file", str(path)], capture_output=True,
                         text=True, timeout=60)  # fmt: skip
    assert out.returncode == 2 and "has mode 640" in out.stderr
