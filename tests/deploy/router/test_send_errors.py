"""A request that a replica cannot answer (it drops the connection, or answers with a header
that is not valid HTTP) is that request's failure: it never takes a healthy replica out; a
connection lost before the request went out sends it elsewhere."""

from __future__ import annotations

import socket
import socketserver
import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from tests.deploy.router.helpers import push, wait_for_stats

from loopline.deploy.engines.local import free_port
from loopline.deploy.router.mirror import MirrorProtocol
from loopline.deploy.router.upstream import UpstreamProtocol
from loopline.deploy.traffic import Mirror

INFER = "/v2/models/m/infer"
BAD_ID = {"id": "a\nb", "inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}]}
GOOD = {"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}]}


class _Replica(socketserver.StreamRequestHandler):
    """Ready; answers inferences with its name; a request id with a newline is echoed into a
    header the way a careless server does: the connection is dropped (``drop``) or the bare
    newline goes out in the header (``bad-header``)."""

    server: _Server

    def handle(self) -> None:
        while True:
            head = b""
            while not head.endswith(b"\r\n\r\n"):
                byte = self.rfile.read(1)
                if not byte:
                    return
                head += byte
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line[15:])
            body = self.rfile.read(length)
            if head.startswith(b"GET /v2/health/ready"):
                self.wfile.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
            elif b'"a\\nb"' in body and self.server.mode == "drop":
                return  # the server's send failed: it drops the connection
            elif b'"a\\nb"' in body:
                self.wfile.write(b"HTTP/1.1 200 OK\r\nx-request-id: a\nb\r\ncontent-length: 2"
                                 b"\r\n\r\n{}")  # fmt: skip
            else:
                out = b'{"id": "%s"}' % self.server.name.encode()
                self.wfile.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                                 b"content-length: %d\r\n\r\n%s" % (len(out), out))  # fmt: skip


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, name: str, mode: str) -> None:
        self.name, self.mode = name, mode
        self.port = free_port()
        super().__init__(("127.0.0.1", self.port), _Replica)


@pytest.fixture
def replicas() -> Iterator[Callable[[str], list[_Server]]]:
    servers: list[_Server] = []

    def start(mode: str) -> list[_Server]:
        for name in ("a", "b"):
            server = _Server(name, mode)
            threading.Thread(target=server.serve_forever, daemon=True).start()
            servers.append(server)
        return servers

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("mode", ["drop", "bad-header"])
def test_a_request_a_replica_cannot_answer_never_marks_healthy_replicas_unhealthy(
    router_thread: Callable[..., Any], replicas: Callable[[str], list[_Server]], mode: str
) -> None:
    a, b = replicas(mode)
    rt = router_thread(health_interval=60.0)  # no health check brings a replica back
    push(rt, [("a", a.port, "r"), ("b", b.port, "r")])
    with httpx.Client(base_url=f"http://127.0.0.1:{rt.port}", timeout=10) as client:
        for _ in range(3):
            r = client.post(INFER, json=BAD_ID)
            assert r.status_code == 502
        backends = rt.admin.describe()["backends"]
        assert [(x["id"], x["healthy"]) for x in backends] == [("a", True), ("b", True)]
        served = {client.post(INFER, json=GOOD).json()["id"] for _ in range(10)}
    assert served == {"a", "b"}


def test_a_malformed_answer_is_a_502_naming_the_replica_and_not_retried(
    router_thread: Callable[..., Any], replicas: Callable[[str], list[_Server]]
) -> None:
    a, b = replicas("bad-header")
    rt = router_thread(health_interval=60.0)
    push(rt, [("a", a.port, "r"), ("b", b.port, "r")])
    r = httpx.post(f"http://127.0.0.1:{rt.port}{INFER}", json=BAD_ID, timeout=10)
    assert r.status_code == 502
    assert "sent an answer that is not valid HTTP" in r.json()["error"]
    assert rt.router.stats.retries == 0


def test_a_replica_that_refuses_connections_is_still_taken_out_at_once(
    router_thread: Callable[..., Any], replicas: Callable[[str], list[_Server]]
) -> None:
    a, _ = replicas("drop")
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    rt = router_thread(health_interval=60.0)
    push(rt, [("a", a.port, "r"), ("dead", dead, "r")])
    for _ in range(4):
        r = httpx.post(f"http://127.0.0.1:{rt.port}{INFER}", json=GOOD, timeout=10)
        assert r.status_code == 200 and r.json()["id"] == "a"
    healthy = {x["id"]: x["healthy"] for x in rt.admin.describe()["backends"]}
    assert healthy == {"a": True, "dead": False}


def test_a_client_that_goes_away_mid_request_leaves_the_replica_healthy(
    router_thread: Callable[..., Any], backend: Callable[..., Any]
) -> None:
    port, _ = backend(id="slow", latency_ms=300)
    rt = router_thread(health_interval=60.0)
    push(rt, [("slow", port, "r")])
    body = b'{"inputs": []}'
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", rt.port), timeout=10) as s:
            s.sendall(b"POST %s HTTP/1.1\r\nhost: x\r\ncontent-length: %d\r\n\r\n%s"
                      % (INFER.encode(), len(body), body))  # fmt: skip
        # closed before the answer: the router's write to it fails, the replica is not at fault
    backends = rt.admin.describe()["backends"]
    assert [(x["id"], x["healthy"]) for x in backends] == [("slow", True)]
    r = httpx.post(f"http://127.0.0.1:{rt.port}{INFER}", json=GOOD, timeout=10)
    assert r.status_code == 200


@pytest.mark.parametrize("kind", ["served", "mirrored"])
def test_a_connection_lost_before_the_request_goes_out_loses_no_request(
    router_thread: Callable[..., Any], backend: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch, kind: str,
) -> None:  # fmt: skip
    """A backend that is dying accepts a connection (its listener still open) and resets it
    before the router has written the request: the request goes elsewhere (or the copy counts
    as an error) at once. Before, the write went to a closed transport and vanished, and the
    request waited for the 300 s response timeout (the rare failure of
    test_kill_of_a_backend_under_load_loses_no_request)."""
    protocol = UpstreamProtocol if kind == "served" else MirrorProtocol
    made = protocol.connection_made

    def reset_at_once(self: Any, transport: Any) -> None:
        made(self, transport)
        if self.backend.id == "dying":  # the peer's reset, read before the request is sent
            transport.abort()

    monkeypatch.setattr(protocol, "connection_made", reset_at_once)
    port, _ = backend(id="a")
    rt = router_thread(health_interval=60.0, mirror_timeout=300.0)
    if kind == "served":
        push(rt, [("dying", port, "r"), ("a", port, "r")])
    else:
        push(rt, [("a", port, "r"), ("dying", port, "canary")], {"r": 1},
             mirror=Mirror("canary", 100))  # fmt: skip
    with httpx.Client(base_url=f"http://127.0.0.1:{rt.port}", timeout=10) as client:
        for _ in range(6):
            r = client.post(INFER, json=GOOD)
            assert r.status_code == 200 and r.json()["id"] == "a"
    if kind == "served":
        assert rt.router.stats.retries >= 1  # some went to "dying" first
        # its connections were accepted: not a refusal, so it stays in rotation
        healthy = [(x["id"], x["healthy"]) for x in rt.admin.describe()["backends"]]
        assert healthy == [("dying", True), ("a", True)]
    else:
        wait_for_stats(rt, lambda s: s["mirror"]["canary"]["errors"] == 6,
                       "six copies counted as errors")  # fmt: skip
