"""The proxy's framing, both paths (verbatim "plain" messages and the full parser), over raw
sockets against real fake-model-server processes."""

from __future__ import annotations

import json
import socket
import socketserver
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
from tests.deploy.router.helpers import Responses

from loopline.deploy.route_table import Backend, RouteTable

INFER = b"/v2/models/m/infer"
BODY = b'{"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1.0]}]}'


def _post(path: bytes = INFER, body: bytes = BODY, extra: bytes = b"") -> bytes:
    return b"POST %s HTTP/1.1\r\nhost: x\r\n%scontent-length: %d\r\n\r\n%s" % (
        path, extra, len(body), body)  # fmt: skip


def _read(s: socket.socket, n: int) -> tuple[list[tuple[int, dict[bytes, bytes], bytes]], bool]:
    """Read until ``n`` responses are complete; also say whether the router then closed."""
    out = Responses()
    while len(out.done) < n:
        data = s.recv(65536)
        if not data:
            raise AssertionError(f"connection closed after {len(out.done)} of {n} responses")
        out.parser.feed_data(data)
    s.settimeout(0.3)
    try:
        closed = s.recv(1) == b""
    except TimeoutError:
        closed = False
    return out.done, closed


def _router(backend: Callable[..., Any], router_thread: Callable[..., Any], **opts: Any) -> Any:
    port, _ = backend(id="a", **opts)
    rt = router_thread(response_timeout=0.5)
    rt.admin.set_routes(
        RouteTable((Backend(id="a", host="127.0.0.1", port=port, revision="r"),))
    )
    return rt


def test_pipelined_and_split_requests_are_answered_in_order(
    backend: Callable[..., Any], router_thread: Callable[..., Any]
) -> None:
    rt = _router(backend, router_thread)
    chunked = (
        b"POST %s HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n"
        b"%x\r\n%s\r\n0\r\n\r\n" % (INFER, len(BODY), BODY)
    )
    with socket.create_connection(("127.0.0.1", rt.port), timeout=5) as s:
        # plain, unknown path, chunked (full parser), plain again: all in one segment
        s.sendall(_post() + _post(b"/nothing") + chunked + _post())
        answers, closed = _read(s, 4)
        assert [a[0] for a in answers] == [200, 404, 200, 200] and not closed
        assert json.loads(answers[3][2])["id"] == "a"
        request = _post()
        for cut in (10, 40, len(request) - 5):  # head and body cut across segments
            s.sendall(request[:cut])
            time.sleep(0.05)
            s.sendall(request[cut:])
            assert _read(s, 1)[0][0][0] == 200


def test_connection_close_and_http_10_requests_get_their_connection_closed(
    backend: Callable[..., Any], router_thread: Callable[..., Any]
) -> None:
    rt = _router(backend, router_thread)
    for request in (
        _post(extra=b"connection: close\r\n"),
        _post().replace(b"HTTP/1.1", b"HTTP/1.0", 1),
    ):
        with socket.create_connection(("127.0.0.1", rt.port), timeout=5) as s:
            s.sendall(request)
            [(status, headers, _)], closed = _read(s, 1)
            assert status == 200 and headers[b"connection"] == b"close" and closed


def test_split_and_chunked_responses_are_forwarded_whole_on_a_kept_alive_connection(
    backend: Callable[..., Any], router_thread: Callable[..., Any]
) -> None:
    for opts in ({"split_ms": 50}, {"chunked": ""}):
        rt = _router(backend, router_thread, **opts)
        with httpx.Client(base_url=f"http://127.0.0.1:{rt.port}") as c:
            for _ in range(3):
                r = c.post(INFER.decode(), content=BODY)
                assert r.status_code == 200 and r.json()["id"] == "a"


def test_a_large_body_is_streamed_through_the_full_parser(
    backend: Callable[..., Any], router_thread: Callable[..., Any]
) -> None:
    rt = _router(backend, router_thread)
    big = b'{"pad": "' + b"x" * (1024 * 1024) + b'"}'
    with socket.create_connection(("127.0.0.1", rt.port), timeout=5) as s:
        s.sendall(_post(body=big) + _post())
        answers, closed = _read(s, 2)
    assert [a[0] for a in answers] == [200, 200] and not closed


def test_answers_504_when_the_replica_does_not_start_answering_in_time(
    backend: Callable[..., Any], router_thread: Callable[..., Any]
) -> None:
    rt = _router(backend, router_thread, latency_ms=3000)
    started = time.monotonic()
    r = httpx.post(f"http://127.0.0.1:{rt.port}{INFER.decode()}", content=BODY, timeout=5)
    assert r.status_code == 504
    assert "did not start answering within the router's response timeout" in r.json()["error"]
    assert 0.5 <= time.monotonic() - started < 2.0


def test_rejects_malformed_heads_with_400_on_either_path(
    router_thread: Callable[..., Any],
) -> None:
    rt = router_thread()
    for head in (
        b"POST /x HTTP/1.1\r\nhost: x\ncontent-length: 2\r\n\r\n{}",  # bare LF (plain path)
        b"POST /x HTTP/1.1\r\ncontent-length : 2\r\n\r\n{}",  # space before the colon
        b"POST /x HTTP/1.1\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\n{}",  # (full)
    ):
        with socket.create_connection(("127.0.0.1", rt.port), timeout=5) as s:
            s.sendall(head)
            [(status, _, body)], closed = _read(s, 1)
            assert status == 400 and closed
            assert json.loads(body)["error"].startswith("Malformed HTTP request:")


class _CannedBackend(socketserver.StreamRequestHandler):
    """Reads one request (Content-Length framed), answers ``server.answer``, closes."""

    def handle(self) -> None:
        length = 0
        while (line := self.rfile.readline()) not in (b"\r\n", b""):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        self.rfile.read(length)
        self.wfile.write(self.server.answer)  # type: ignore[attr-defined]


def test_a_close_delimited_response_is_forwarded_to_its_end_then_the_client_closed(
    router_thread: Callable[..., Any],
) -> None:
    with socketserver.ThreadingTCPServer(("127.0.0.1", 0), _CannedBackend) as server:
        server.answer = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nno length"  # type: ignore[attr-defined]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        rt = router_thread(health_interval=60.0)
        rt.admin.set_routes(
            RouteTable((Backend("c", "127.0.0.1", server.server_address[1], "r"),))
        )
        with socket.create_connection(("127.0.0.1", rt.port), timeout=5) as s:
            s.sendall(_post())
            received = b""
            while chunk := s.recv(65536):
                received += chunk
        server.shutdown()
    assert received.startswith(b"HTTP/1.1 200 OK\r\n") and received.endswith(b"no length")
    assert b"connection: close" in received.lower()


def test_answers_504_when_the_replica_sends_part_of_a_head_and_stalls(
    router_thread: Callable[..., Any],
) -> None:
    with socketserver.ThreadingTCPServer(("127.0.0.1", 0), _StallingBackend) as server:
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        rt = router_thread(health_interval=60.0, response_timeout=0.5)
        rt.admin.set_routes(
            RouteTable((Backend("s", "127.0.0.1", server.server_address[1], "r"),))
        )
        started = time.monotonic()
        r = httpx.post(f"http://127.0.0.1:{rt.port}{INFER.decode()}", content=BODY, timeout=5)
        server.shutdown()
    assert r.status_code == 504
    assert 0.5 <= time.monotonic() - started < 2.5


class _StallingBackend(_CannedBackend):
    """Answers half a head, then says nothing more for 3 s."""

    def handle(self) -> None:
        while self.rfile.readline() not in (b"\r\n", b""):
            pass
        self.wfile.write(b"HTTP/1.1 200 OK\r\ncontent-le")
        self.wfile.flush()
        time.sleep(3)
