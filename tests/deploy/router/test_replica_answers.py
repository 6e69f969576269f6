"""A replica's answer is bounded like a client's request: a response head over
``RouterLimits.max_response_head_bytes`` (whole, endless, or one endless header value) is
answered 502 and its connection closed, on the plain and the full path, and the replica stays
in rotation; a health check answered with an endless line is a failed check, not the end of
the health checks."""

from __future__ import annotations

import socketserver
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from tests.deploy.router.helpers import RawClient, push, wait_for_stats

from loopline.deploy.engines.local import free_port
from loopline.deploy.router.limits import RouterLimits
from loopline.deploy.traffic import Mirror
from loopline.testing.artifacts import wait_for

CAP = RouterLimits().max_response_head_bytes
PAD = b"x-pad: " + b"a" * 1000 + b"\r\n"  # one header line of 1009 bytes
OK_BODY = b'{"id": "a"}'


def _head_of(size: int) -> bytes:
    """A complete 200 head of about ``size`` bytes, with a body."""
    pads = PAD * (size // len(PAD))
    return b"HTTP/1.1 200 OK\r\n%scontent-length: %d\r\n\r\n%s" % (pads, len(OK_BODY), OK_BODY)


class _Replica(socketserver.StreamRequestHandler):
    """Ready (unless told to answer health checks with an endless line); answers by path (or
    as if every request had the server's ``path``): ``/head/<bytes>`` with a head of that
    size, ``/endless`` with headers until the router hangs up, ``/endless-value`` with one
    header value that never ends, else ``OK_BODY``."""

    server: _Server

    def handle(self) -> None:
        while True:
            line = self.rfile.readline()
            if not line:
                return
            length = 0
            while (header := self.rfile.readline()) not in (b"\r\n", b""):
                if header.lower().startswith(b"content-length:"):
                    length = int(header[15:])
            self.rfile.read(length)
            path = line.split(b" ")[1]
            if path != b"/v2/health/ready" and self.server.path is not None:
                path = self.server.path
            if path == b"/v2/health/ready":
                if self.server.endless_health:
                    self._endless(b"HTTP/1.1 200 " + b"x" * 65536, b"x" * 16384)
                    return
                self.wfile.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
            elif path.startswith(b"/head/"):
                self.wfile.write(_head_of(int(path[6:])))
            elif path == b"/endless":
                self._endless(b"HTTP/1.1 200 OK\r\n", PAD * 16)
                return
            elif path == b"/endless-value":
                self._endless(b"HTTP/1.1 200 OK\r\nx-value: ", b"v" * 16384)
                return
            else:
                self.wfile.write(_head_of(0))

    def _endless(self, start: bytes, chunk: bytes) -> None:
        """Write ``start``, then ``chunk`` forever; count the moment the peer hangs up."""
        try:
            self.wfile.write(start)
            for _ in range(100_000):  # ≥ 1.6 GB: far past any buffer; a test ends long before
                self.wfile.write(chunk)
        except OSError:
            with self.server.lock:
                self.server.cut += 1


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        self.port = free_port()
        self.cut = 0  # answers the peer hung up on
        self.endless_health = False
        self.path: bytes | None = None  # answer every inference as if sent to this path
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", self.port), _Replica)


@pytest.fixture
def replica() -> Iterator[_Server]:
    server = _Server()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


# The plain path (a plain HTTP/1.1 request) and the full parser (a Connection header).
PATHS = pytest.mark.parametrize("headers", [{}, {"connection": "keep-alive"}],
                                ids=["plain", "full"])  # fmt: skip


def _healthy(rt: Any) -> list[tuple[str, bool]]:
    return [(b["id"], b["healthy"]) for b in rt.admin.describe()["backends"]]


@PATHS
def test_a_response_head_over_the_cap_is_a_502_and_the_replica_stays_in_rotation(
    router_thread: Callable[..., Any], replica: _Server, raw_client: Callable[[int], RawClient],
    headers: dict[str, str],
) -> None:
    rt = router_thread(health_interval=60.0)  # no health check brings a replica back
    push(rt, [("a", replica.port, "r")])
    client = raw_client(rt.port)
    status, _, body = client.post(f"/head/{CAP // 2}", {}, headers)
    assert status == 200 and body == {"id": "a"}  # a large head within the cap is forwarded
    for path in (f"/head/{4 * CAP}", "/endless", "/endless-value"):
        status, _, body = raw_client(rt.port).post(path, {}, headers)
        assert status == 502, path
        assert body["error"] == (
            f"Deployment 'web': the replica 'a' sent a response head larger than the router's "
            f"limit of {CAP} bytes; see the replica logs.")  # fmt: skip
    wait_for(lambda: replica.cut == 2, timeout=10, what="both endless answers cut off")
    assert _healthy(rt) == [("a", True)]
    assert rt.router.stats.retries == 0  # not retried: another replica would do the same
    assert client.post("/v2/models/m/infer", {}, headers)[0] == 200


def test_a_smaller_cap_is_the_routers_limit(
    router_thread: Callable[..., Any], replica: _Server, raw_client: Callable[[int], RawClient],
) -> None:
    rt = router_thread(limits=RouterLimits(max_response_head_bytes=4096))
    push(rt, [("a", replica.port, "r")])
    assert raw_client(rt.port).post("/head/2000", {})[0] == 200
    status, _, body = raw_client(rt.port).post("/head/8000", {})
    assert status == 502 and "limit of 4096 bytes" in body["error"]


def test_a_mirror_answer_with_an_endless_head_is_an_error_at_once(
    router_thread: Callable[..., Any], replica: _Server, backend: Callable[..., Any],
    raw_client: Callable[[int], RawClient],
) -> None:
    stable, _ = backend(id="s")
    replica.path = b"/endless"
    rt = router_thread(mirror_timeout=300.0)  # the head cap, not the deadline, ends the copy
    push(rt, [("s", stable, "stable"), ("m", replica.port, "canary")], {"stable": 1},
         mirror=Mirror("canary", 100))  # fmt: skip
    status, _, body = raw_client(rt.port).post("/v2/models/m/infer", {})
    assert status == 200 and body["id"] == "s"  # served by stable, mirrored to the canary
    wait_for_stats(rt, lambda s: s["mirror"].get("canary", {}).get("errors") == 1,
                   "the mirrored copy counted as an error")  # fmt: skip
    wait_for(lambda: replica.cut == 1, timeout=10, what="the mirror's endless answer cut off")


def test_a_health_check_answered_with_an_endless_line_fails_and_the_checks_go_on(
    router_thread: Callable[..., Any], replica: _Server,
) -> None:
    replica.endless_health = True
    rt = router_thread(health_interval=0.1, unhealthy_after=1)
    push(rt, [("a", replica.port, "r")])
    wait_for(lambda: _healthy(rt) == [("a", False)], timeout=10, what="a marked unhealthy")
    replica.endless_health = False
    wait_for(lambda: _healthy(rt) == [("a", True)], timeout=10, what="a healthy again")
