"""The model server's HTTP limits, against a real server on 127.0.0.1 over raw sockets:
head and URL size caps, deadlines (slowloris), idle keep-alive, the connection cap, the
pipelined-request queue, and request ids that could break a response header."""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from tests.serving.conftest import Models, ThreadedServer, serve_models

from loopline.errors import InvalidInputError
from loopline.serving import ServedModel, ServerOptions, create_app
from loopline.serving.limits import HttpLimits, Phase, overdue
from loopline.testing.artifacts import wait_for

# Short deadlines so the tests wait on conditions for seconds, not minutes.
QUICK = HttpLimits(head_timeout=0.5, body_timeout=0.5, idle_timeout=0.5)


def _serve(models: Models, limits: HttpLimits = QUICK) -> ThreadedServer:
    return serve_models([ServedModel("lr", "1", models.lr)], ServerOptions(http=limits))


@pytest.fixture(scope="module")
def quick(models: Models) -> Iterator[ThreadedServer]:
    with _serve(models) as s:
        yield s


@pytest.fixture(scope="module")
def defaults(models: Models) -> Iterator[ThreadedServer]:
    with _serve(models, HttpLimits()) as s:
        yield s


def _connect(server: ThreadedServer) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=20)
    return sock


def _read_until_closed(sock: socket.socket, deadline_s: float = 20.0) -> bytes:
    """Everything the server sends until it closes the connection (or the deadline)."""
    sock.settimeout(deadline_s)
    data = b""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    return data


def _infer_body(models: Models, **extra: Any) -> bytes:
    tensor = {"name": "input", "shape": [1, 30], "datatype": "FP64", "data": models.x[0].tolist()}
    return orjson.dumps({"inputs": [tensor], **extra})


def _post(path: str, body: bytes, headers: bytes = b"") -> bytes:
    return (
        b"POST %s HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n%s\r\n" % (path.encode(), len(body), headers)
    ) + body


def _status(response: bytes) -> int:
    assert response.startswith(b"HTTP/1.1 "), response[:100]
    return int(response.split(b" ", 2)[1])


_unread: dict[socket.socket, bytes] = {}  # bytes received past the last response read


def _read_response(sock: socket.socket) -> tuple[int, bytes, Any]:
    """One response with a Content-Length: (status, head, parsed JSON body or raw bytes)."""
    sock.settimeout(20)
    data = _unread.pop(sock, b"")
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"closed before a complete head: {data!r}"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    while len(rest) < length:
        chunk = sock.recv(65536)
        assert chunk, "closed before the whole body"
        rest += chunk
    body, _unread[sock] = rest[:length], rest[length:]
    try:
        return _status(head), head, orjson.loads(body)
    except orjson.JSONDecodeError:
        return _status(head), head, body


# ------------------------------------------------------------------------ the decision
def test_each_phase_but_busy_has_a_deadline_from_the_limits() -> None:
    limits = HttpLimits(head_timeout=2.0, body_timeout=3.0, idle_timeout=1.0)
    assert overdue(limits, Phase.HEAD, since=10.0, now=12.0)
    assert not overdue(limits, Phase.HEAD, since=10.0, now=11.9)
    assert overdue(limits, Phase.BODY, since=10.0, now=13.0)
    assert not overdue(limits, Phase.BODY, since=10.0, now=12.9)
    assert overdue(limits, Phase.IDLE, since=10.0, now=11.0)
    assert not overdue(limits, Phase.BUSY, since=10.0, now=1e9)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"max_header_bytes": 0}, r"HttpLimits.max_header_bytes is 0"),
        ({"max_pipelined": True}, r"HttpLimits.max_pipelined is True"),
        ({"head_timeout": float("nan")}, r"HttpLimits.head_timeout is nan"),
        ({"idle_timeout": 0}, r"HttpLimits.idle_timeout is 0"),
        ({"max_url_bytes": 9000, "max_header_bytes": 8000}, r"max_url_bytes \(9000\) is larger"),
    ],
)
def test_bad_limits_are_refused_naming_the_field(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        HttpLimits(**kwargs)


# ------------------------------------------------------------------------ sizes
def test_a_head_larger_than_the_limit_gets_431_and_a_smaller_one_is_served(
    defaults: ThreadedServer,
) -> None:
    pad = b"X-Pad: " + b"a" * 1000 + b"\r\n"
    with _connect(defaults) as sock:
        sock.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: t\r\n" + pad * 14 + b"\r\n")
        assert _read_response(sock)[0] == 200
    with _connect(defaults) as sock:
        sock.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: t\r\n" + pad * 17 + b"\r\n")
        answer = _read_until_closed(sock)
    assert _status(answer) == 431
    assert b"limit of 16384 bytes" in answer


def test_a_head_sent_in_small_pieces_is_refused_once_it_passes_the_limit(
    defaults: ThreadedServer,
) -> None:
    with _connect(defaults) as sock:
        sock.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: t\r\n")
        sent = 0
        answer = b""
        sock.settimeout(0.05)
        while sent < 1 << 20 and not answer:
            sock.sendall(b"X-Pad: " + b"a" * 2000 + b"\r\n")
            sent += 2009
            try:
                answer = sock.recv(65536)
            except TimeoutError:
                continue
    assert _status(answer) == 431
    assert sent < 64 * 1024  # refused within a few reads of the limit, not at the end


def test_a_url_longer_than_the_limit_gets_414(defaults: ThreadedServer) -> None:
    with _connect(defaults) as sock:
        sock.sendall(b"GET /v2/health/live?" + b"q" * 9000 + b" HTTP/1.1\r\nHost: t\r\n\r\n")
        answer = _read_until_closed(sock)
    assert _status(answer) == 414
    assert b"URL is longer than the server's limit of 8192 bytes" in answer


# ------------------------------------------------------------------------ deadlines
def test_a_partial_head_is_answered_408_and_closed_at_the_head_deadline(
    quick: ThreadedServer,
) -> None:
    with _connect(quick) as sock:
        sock.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: t\r\n")
        answer = _read_until_closed(sock)
    assert _status(answer) == 408
    assert b"request head was not complete within 0.5 s" in answer


def test_a_slowloris_sending_a_byte_at_a_time_is_closed_at_the_head_deadline(
    quick: ThreadedServer,
) -> None:
    head = b"GET /v2/health/live HTTP/1.1\r\nHost: t\r\n" + b"X-A: " + b"b" * 10_000
    with _connect(quick) as sock:
        sock.settimeout(0.1)
        answer = b""
        for byte in head:  # ends when the server answers or the head is out (never, here)
            try:
                sock.sendall(bytes([byte]))
                answer += sock.recv(65536)
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                break
            if answer:
                break
    assert _status(answer) == 408


def test_an_incomplete_body_is_answered_408_and_closed_at_the_body_deadline(
    quick: ThreadedServer, models: Models
) -> None:
    body = _infer_body(models)
    with _connect(quick) as sock:
        sock.sendall(_post("/v2/models/lr/infer", body)[: -len(body) // 2])
        answer = _read_until_closed(sock)
    assert _status(answer) == 408
    assert b"request body was not complete within 0.5 s" in answer


def test_idle_connections_fresh_or_kept_alive_are_closed_at_the_idle_deadline(
    quick: ThreadedServer,
) -> None:
    with _connect(quick) as fresh:
        assert _read_until_closed(fresh) == b""
    with _connect(quick) as kept:
        kept.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: t\r\n\r\n")
        answer = _read_until_closed(kept)
    assert _status(answer) == 200
    assert answer.endswith(b'{"live":true}')  # one answer, then closed while idle


def test_a_slow_model_call_is_not_cut_by_the_deadlines(models: Models) -> None:
    class Slow:
        def __init__(self, inner: Any) -> None:
            self._inner = inner

        def __getattr__(self, name: str) -> Any:
            return getattr(self._inner, name)

        def predict(self, batch: Any) -> Any:
            time.sleep(1.5)  # longer than every deadline of QUICK
            return self._inner.predict(batch)

    served = [ServedModel("lr", "1", Slow(models.lr))]  # type: ignore[arg-type]
    with serve_models(served, ServerOptions(http=QUICK)) as server, _connect(server) as sock:
        sock.sendall(_post("/v2/models/lr/infer", _infer_body(models)))
        answer = _read_until_closed(sock)
    assert _status(answer) == 200


# ------------------------------------------------------------------------ connections
def test_a_connection_beyond_the_cap_gets_503_while_served_ones_keep_working(
    models: Models,
) -> None:
    limits = HttpLimits(max_connections=3, idle_timeout=60.0)
    live = b"GET /v2/health/live HTTP/1.1\r\nHost: t\r\n\r\n"
    with _serve(models, limits) as server:
        held = [_connect(server) for _ in range(3)]
        try:
            for sock in held:  # each is accepted and served
                sock.sendall(live)
                assert _read_response(sock)[0] == 200
            with _connect(server) as extra:
                answer = _read_until_closed(extra)
            assert _status(answer) == 503
            assert b"retry-after: 1" in answer
            for sock in held:  # the served connections are untouched
                sock.sendall(live)
                assert _read_response(sock)[0] == 200
            held.pop().close()

            def served_again() -> bool:
                with _connect(server) as again:
                    again.sendall(live)
                    return _read_response(again)[0] == 200

            wait_for(served_again, timeout=10, what="a connection served after one closed")
        finally:
            for sock in held:
                sock.close()


def test_pipelined_requests_past_the_queue_get_the_queued_answers_then_a_close(
    models: Models,
) -> None:
    with _serve(models, HttpLimits(max_pipelined=2)) as server, _connect(server) as sock:
        sock.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: t\r\n\r\n" * 50)
        answers = _read_until_closed(sock)
    # the one being answered plus four queued (twice the bound: they came in one read); the
    # other 45 were never taken as requests
    assert answers.count(b"HTTP/1.1 200 OK") == 5
    assert answers.count(b"HTTP/1.1 ") == 5


def test_a_client_pipelining_in_separate_writes_is_throttled_not_closed(
    models: Models,
) -> None:
    class Slow:
        def __init__(self, inner: Any) -> None:
            self._inner = inner

        def __getattr__(self, name: str) -> Any:
            return getattr(self._inner, name)

        def predict(self, batch: Any) -> Any:
            time.sleep(0.2)
            return self._inner.predict(batch)

    # batching runs a slow model off the event loop, so each write is a read of its own
    served = [ServedModel("lr", "1", Slow(models.lr), batching=True)]  # type: ignore[arg-type]
    request = _post("/v2/models/lr/infer", _infer_body(models))
    options = ServerOptions(http=HttpLimits(max_pipelined=3))
    with serve_models(served, options) as server, _connect(server) as sock:
        for _ in range(8):  # the server stops reading while three are queued; what piles up
            sock.sendall(request)  # in the kernel meanwhile (at most 4) fits twice the bound
            time.sleep(0.05)
        statuses = [_read_response(sock)[0] for _ in range(8)]
        sock.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: t\r\n\r\n")
        assert _read_response(sock)[0] == 200  # still open
    assert statuses == [200] * 8


def test_pipelined_requests_within_the_queue_are_all_answered_in_order(
    defaults: ThreadedServer,
) -> None:
    with _connect(defaults) as sock:
        sock.sendall(
            b"GET /v2/health/live HTTP/1.1\r\nHost: t\r\n\r\n" * 5
            + b"GET /version HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
        )
        answers = _read_until_closed(sock)
    assert answers.count(b"HTTP/1.1 200 OK") == 6
    assert answers.index(b"text/plain") > answers.rindex(b'{"live":true}')


def test_malformed_http_is_answered_400_and_closed_without_a_log_line(
    defaults: ThreadedServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG - 1)
    caplog.clear()
    with _connect(defaults) as sock:
        sock.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: t\r\nBad Header\r\n\r\n")
        answer = _read_until_closed(sock)
    assert _status(answer) == 400
    assert [r for r in caplog.records if r.levelno >= logging.INFO] == []


def test_an_upgrade_request_is_answered_as_plain_http_then_the_connection_closes(
    defaults: ThreadedServer,
) -> None:
    with _connect(defaults) as sock:
        sock.sendall(
            b"GET /v2/health/live HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\n"
            b"Upgrade: websocket\r\n\r\nGET /v2/health/live HTTP/1.1\r\nHost: t\r\n\r\n"
        )
        answer = _read_until_closed(sock)
    assert answer.count(b"HTTP/1.1 ") == 1
    assert _status(answer) == 200


# ------------------------------------------------------------------------ request ids
@pytest.mark.parametrize(
    ("rid", "match"),
    [
        ("a\nb", r"Field 'id' \('a\\nb', 3 characters\) must be at most 128 printable ASCII"),
        ("x" * 129, r"Field 'id' \('x{40}'…, 129 characters\)"),
        ("caf\u00e9", r"Field 'id' \('café', 4 characters\)"),
    ],
)
def test_a_v2_id_that_cannot_be_a_header_gets_400_and_the_connection_stays_usable(
    defaults: ThreadedServer,
    models: Models,
    rid: str,
    match: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with _connect(defaults) as sock:
        sock.sendall(_post("/v2/models/lr/infer", _infer_body(models, id=rid)))
        status, _, body = _read_response(sock)
        assert status == 400
        assert re.search(match, body["error"])
        sock.sendall(_post("/v2/models/lr/infer", _infer_body(models, id="x" * 128)))
        status, head, body = _read_response(sock)
    assert status == 200
    assert b"\r\nx-request-id: " + b"x" * 128 + b"\r\n" in head + b"\r\n"
    assert body["id"] == "x" * 128
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_an_x_request_id_header_that_is_too_long_gets_400_naming_the_header(
    defaults: ThreadedServer, models: Models
) -> None:
    with _connect(defaults) as sock:
        headers = b"X-Request-ID: " + b"r" * 200 + b"\r\n"
        sock.sendall(_post("/v2/models/lr/infer", _infer_body(models), headers))
        status, _, body = _read_response(sock)
    assert status == 400
    assert body["error"].startswith("The X-Request-ID header ('rrrr")


def test_a_failed_send_is_counted_and_logged_once_without_a_traceback(
    models: Models, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app([ServedModel("lr", "1", models.lr)])

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        raise RuntimeError("Invalid HTTP header value.")

    scope = {"type": "http", "method": "GET", "path": "/v2/health/live", "headers": []}
    caplog.set_level(logging.WARNING, logger="loopline.serving.app")
    for _ in range(3):
        asyncio.run(app(scope, receive, send))
    warnings = [r for r in caplog.records if r.name == "loopline.serving.app"]
    assert [r.getMessage() for r in warnings] == [
        "Could not send 1 response(s) since the last report: Invalid HTTP header value."
    ]
    assert warnings[0].exc_info is None
    assert b"loopline_response_send_failures_total 3" in app.metrics.render([])
