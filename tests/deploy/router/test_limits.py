"""The router's HTTP limits on its client side: caps answered 414/431/413, deadlines answered
408 (or a silent close when idle), a connection cap answered 503, a bounded pipeline."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.deploy.router.helpers import Responses, push

from loopline.deploy.router.limits import Phase, RouterLimits, overdue
from loopline.errors import InvalidInputError
from loopline.serving import ServerOptions
from loopline.testing.artifacts import wait_for

INFER = b"/v2/models/m/infer"
BODY = b'{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1.0]}]}'
REQUEST = (
    b"POST %s HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n"
    b"%s" % (INFER, len(BODY), BODY)
)
QUICK = RouterLimits(head_timeout=1.0, body_timeout=1.0, idle_timeout=1.0)


def _router(router_thread: Callable[..., Any], backend: Callable[..., Any],
            **limits: Any) -> Any:  # fmt: skip
    port, _ = backend(id="a")
    rt = router_thread(limits=RouterLimits(**{"head_timeout": 1.0, "body_timeout": 1.0,
                                               "idle_timeout": 1.0, **limits}))  # fmt: skip
    push(rt, [("a", port, "r")])
    return rt


def _connect(rt: Any) -> socket.socket:
    return socket.create_connection(("127.0.0.1", rt.port), timeout=10)


def _answers_until_closed(sock: socket.socket, timeout: float = 10) -> list[tuple[int, bytes]]:
    """Every answer on ``sock`` until the router closes it: ``[(status, body)]``."""
    answers = Responses()
    sock.settimeout(timeout)
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        answers.parser.feed_data(chunk)
    return [(status, body) for status, _, body in answers.done]


def test_the_defaults_are_the_model_servers_limits() -> None:
    server = ServerOptions()
    limits = RouterLimits()
    assert limits.max_body_bytes == server.max_body_bytes
    assert (limits.max_header_bytes, limits.max_url_bytes) == (
        server.http.max_header_bytes, server.http.max_url_bytes)  # fmt: skip
    assert (limits.head_timeout, limits.body_timeout, limits.idle_timeout) == (
        server.http.head_timeout, server.http.body_timeout, server.http.idle_timeout)  # fmt: skip


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"max_header_bytes": 0}, r"RouterLimits.max_header_bytes is 0; use an integer ≥ 1"),
        ({"max_connections": True}, r"RouterLimits.max_connections is True"),
        ({"max_url_bytes": 1 << 20}, r"max_url_bytes \(1048576\) is larger than max_header"),
        ({"head_timeout": float("nan")}, r"RouterLimits.head_timeout is nan; use a finite"),
        ({"idle_timeout": 0}, r"RouterLimits.idle_timeout is 0"),
    ],
)
def test_bad_limits_are_refused_naming_the_field(change: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        RouterLimits(**change)


def test_a_phase_is_overdue_only_after_its_own_timeout() -> None:
    assert not overdue(QUICK, Phase.HEAD, since=10.0, now=10.9)
    assert overdue(QUICK, Phase.HEAD, since=10.0, now=11.0)
    assert not overdue(QUICK, Phase.BUSY, since=0.0, now=1e9)  # the backend is the slow one
    assert QUICK.sweep_interval() == pytest.approx(0.1)


def test_megabytes_of_headers_get_431_after_the_cap_and_are_never_buffered(
    router_thread: Callable[..., Any], backend: Callable[..., Any]
) -> None:
    rt = _router(router_thread, backend)
    sock = _connect(rt)
    sock.sendall(b"GET /v2/health/ready HTTP/1.1\r\nhost: x\r\n")
    sent = 0
    with pytest.raises(OSError):  # the router closes after its 431: sending fails
        for _ in range(30 * 1024):  # up to 30 MiB of headers, 1 KiB each
            sock.sendall(b"x-filler: " + b"a" * 1012 + b"\r\n")
            sent += 1024
    assert sent < 8 * 1024 * 1024  # refused long before 30 MiB arrived
    assert _answers_until_closed(sock)[0][0] == 431
    sock.close()


def test_a_complete_head_over_the_cap_gets_431_and_a_long_url_414(
    router_thread: Callable[..., Any], backend: Callable[..., Any]
) -> None:
    rt = _router(router_thread, backend, max_header_bytes=4096, max_url_bytes=1024)
    for head, status, words in [
        (b"GET /" + b"u" * 2000 + b" HTTP/1.1\r\nhost: x\r\n\r\n", 414, b"URL is longer"),
        (b"GET / HTTP/1.1\r\nhost: x\r\nx-big: " + b"h" * 5000 + b"\r\n\r\n", 431, b"head is"),
        # the same through the full parser (a Connection header is not forwarded verbatim)
        (b"GET /" + b"u" * 2000 + b" HTTP/1.1\r\nconnection: keep-alive\r\n\r\n", 414, b"URL"),
        (b"GET / HTTP/1.1\r\nconnection: keep-alive\r\nx: " + b"h" * 5000 + b"\r\n\r\n", 431,
         b"limit of 4096 bytes"),
    ]:  # fmt: skip
        sock = _connect(rt)
        sock.sendall(head)
        answers = _answers_until_closed(sock)
        sock.close()
        assert answers[0][0] == status and words in answers[0][1]


def test_a_body_over_the_cap_gets_413_before_it_is_sent(
    router_thread: Callable[..., Any], backend: Callable[..., Any]
) -> None:
    rt = _router(router_thread, backend, max_body_bytes=1000)
    sock = _connect(rt)
    sock.sendall(b"POST %s HTTP/1.1\r\nhost: x\r\ncontent-length: 5000000\r\n\r\n" % INFER)
    answers = _answers_until_closed(sock)
    assert answers[0][0] == 413 and b"larger than the router's limit of 1000 bytes" in answers[0][1]
    sock.close()
    sock = _connect(rt)  # chunked: counted as it arrives
    sock.sendall(b"POST %s HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n" % INFER)
    sock.sendall(b"400\r\n" + b"b" * 1024 + b"\r\n")
    assert _answers_until_closed(sock)[0][0] == 413
    sock.close()
    sock = _connect(rt)  # a body within the cap still goes through
    sock.sendall(REQUEST)
    sock.settimeout(10)
    assert sock.recv(65536).startswith(b"HTTP/1.1 200")
    sock.close()


def test_with_the_default_cap_a_large_body_gets_413_once_the_router_has_read_256_kib(
    router_thread: Callable[..., Any], backend: Callable[..., Any]
) -> None:
    rt = _router(router_thread, backend)
    sock = _connect(rt)
    sock.sendall(b"POST %s HTTP/1.1\r\nhost: x\r\ncontent-length: 100000000\r\n\r\n" % INFER)
    with contextlib.suppress(OSError):  # the router may close while this is still sending
        sock.sendall(b"b" * (300 * 1024))
    answers = _answers_until_closed(sock)
    assert answers[0][0] == 413 and b"limit of 8388608 bytes" in answers[0][1]
    sock.close()


@pytest.mark.parametrize(
    ("sent", "what"),
    [
        (b"POST /v2/models/m/infer HTTP/1.1\r\nhost: x\r\n", b"head"),  # plain framing
        (b"POST / HTTP/1.1\r\nconnection: keep-alive\r\nx-a: b", b"head"),  # full parser
        (b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 10\r\n\r\n12345", b"body"),
        (b"POST / HTTP/1.1\r\nconnection: keep-alive\r\ncontent-length: 10\r\n\r\n123", b"body"),
    ],
)
def test_a_request_whose_head_or_body_stalls_gets_408_at_its_deadline(
    router_thread: Callable[..., Any], backend: Callable[..., Any], sent: bytes, what: bytes
) -> None:
    rt = _router(router_thread, backend)
    sock = _connect(rt)
    sock.sendall(sent)
    answers = _answers_until_closed(sock)  # waits for the router to close it
    assert answers == [(408, b'{"error": "The request %s did not arrive within the router\'s '
                              b'1 s limit."}' % what)]  # fmt: skip
    assert rt.router.timed_out_requests == 1
    sock.close()


def test_one_byte_a_second_does_not_keep_a_head_open_past_its_deadline(
    router_thread: Callable[..., Any], backend: Callable[..., Any]
) -> None:
    rt = _router(router_thread, backend)
    sock = _connect(rt)
    sock.settimeout(0.3)
    closed = False
    for byte in b"GET /v2/health/ready HTTP/1.1\r\nhost: x\r\n":  # 40 bytes, 0.3 s apart
        try:
            sock.sendall(bytes([byte]))
            if sock.recv(65536):
                closed = True
                break
        except TimeoutError:
            continue
        except OSError:
            closed = True
            break
    assert closed, "the router kept a dribbling head open for 12 s"
    sock.close()


def test_an_idle_connection_is_closed_and_a_busy_one_is_not(
    router_thread: Callable[..., Any], backend: Callable[..., Any]
) -> None:
    port, _ = backend(id="slow", latency_ms=2500)  # the backend is slower than every deadline
    rt = router_thread(limits=QUICK)
    push(rt, [("slow", port, "r")])
    idle = _connect(rt)
    busy = _connect(rt)
    busy.sendall(REQUEST)
    assert _answers_until_closed(idle) == []  # closed silently after idle_timeout
    busy.settimeout(10)
    assert busy.recv(65536).startswith(b"HTTP/1.1 200")  # BUSY has no client deadline
    assert rt.router.idle_closed >= 1
    for s in (idle, busy):
        s.close()


def test_connections_beyond_the_cap_get_503_and_the_served_ones_are_kept(
    router_thread: Callable[..., Any], backend: Callable[..., Any]
) -> None:
    rt = _router(router_thread, backend, max_connections=3, idle_timeout=30.0)
    kept = [_connect(rt) for _ in range(3)]
    for s in kept:
        s.sendall(REQUEST)
        assert s.recv(65536).startswith(b"HTTP/1.1 200")
    extra = _connect(rt)
    answers = _answers_until_closed(extra)
    assert answers[0][0] == 503 and b"3 open client connections, its limit" in answers[0][1]
    extra.close()
    kept[0].sendall(REQUEST)  # the served ones go on
    assert kept[0].recv(65536).startswith(b"HTTP/1.1 200")
    kept.pop().close()
    assert rt.router.refused_connections == 1

    def admitted() -> bool:
        s = _connect(rt)
        try:
            s.sendall(REQUEST)
            s.settimeout(5)
            return s.recv(65536).startswith(b"HTTP/1.1 200")
        except OSError:
            return False
        finally:
            s.close()

    # the router sees the close when its loop gets to it
    wait_for(admitted, timeout=10, what="a freed slot to be given to a new client")
    for s in kept:
        s.close()


def test_a_full_pipeline_stops_reading_and_every_request_is_still_answered(
    router_thread: Callable[..., Any], backend: Callable[..., Any], tmp_path: Path
) -> None:
    gate = tmp_path / "answer"  # the replica holds every answer until this file exists
    port, _ = backend(id="slow", echo="", gate=gate)
    rt = router_thread(limits=RouterLimits(max_pipelined=4))
    push(rt, [("slow", port, "r")])
    sock = _connect(rt)
    for _ in range(8):  # one request per read, while the first is not answered
        sock.sendall(REQUEST)
        time.sleep(0.03)
    wait_for(
        lambda: any(c.paused for c in list(rt.router.clients)),
        timeout=10,
        what="the router to stop reading",
    )
    assert [len(c.queue) for c in list(rt.router.clients)] == [4]  # full: reading stopped
    gate.touch()
    got = Responses()
    sock.settimeout(20)
    while len(got.done) < 8:  # once there is room it reads on: every request is answered
        chunk = sock.recv(65536)
        assert chunk, f"closed after {len(got.done)} answers"
        got.parser.feed_data(chunk)
    assert [status for status, _, _ in got.done] == [200] * 8
    sock.close()


def test_pipelined_requests_beyond_the_queue_are_answered_up_to_it_then_closed(
    router_thread: Callable[..., Any], backend: Callable[..., Any]
) -> None:
    rt = _router(router_thread, backend, max_pipelined=2)
    sock = _connect(rt)
    sock.sendall(REQUEST * 50)  # one read holds all of them
    answers = _answers_until_closed(sock)
    # one being answered, four queued (twice the bound, all read at once); the sixth was
    # refused and the connection closed after the queued answers
    assert [status for status, _ in answers] == [200] * 5
    sock.close()
    sock = _connect(rt)  # within the bound, pipelining works
    sock.sendall(REQUEST * 3)
    got = Responses()
    sock.settimeout(10)
    while len(got.done) < 3:
        got.parser.feed_data(sock.recv(65536))
    assert [status for status, _, _ in got.done] == [200, 200, 200]
    sock.close()
