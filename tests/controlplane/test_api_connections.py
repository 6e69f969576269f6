"""The control plane's API has the model server's connection limits (issue #11): heads and
URLs are capped (431/414), a body over 1 MiB is refused before it is read (413), a client
sending a head one byte at a time is cut off by the deadline (408), and connections beyond
the cap are refused (503) while the API keeps answering."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import pytest
from tests.controlplane.conftest import TOKEN, FakeCluster, serve_api

from loopline.controlplane.api import create_app
from loopline.controlplane.bodies import MAX_BODY_BYTES
from loopline.serving import HttpLimits
from loopline.testing.artifacts import wait_for

AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}


def _host_port(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").split(":")
    return host, int(port)


def _exchange(url: str, data: bytes, *, timeout: float = 10.0) -> bytes:
    """Send ``data`` on a fresh connection and read until the server closes it."""
    with socket.create_connection(_host_port(url), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


def _status(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


def test_a_request_head_over_16_kib_is_a_431_and_the_api_still_answers(
    fake_cluster: FakeCluster,
) -> None:
    head = b"GET /v1/deployments HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: " + b"a" * 20_000
    answer = _exchange(fake_cluster.url, head + b"\r\n\r\n")
    assert _status(answer) == 431
    assert b"limit of 16384 bytes" in answer
    assert httpx.get(fake_cluster.url + "/v1/deployments").status_code == 200


def test_a_url_over_8_kib_is_a_414(fake_cluster: FakeCluster) -> None:
    request = b"GET /v1/deployments?x=" + b"a" * 9_000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    assert _status(_exchange(fake_cluster.url, request)) == 414


def test_a_declared_body_over_1_mib_is_a_413_before_the_body_is_sent(
    fake_cluster: FakeCluster,
) -> None:
    head = (
        "PUT /v1/deployments/bc HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {MAX_BODY_BYTES + 1}\r\n\r\n"
    ).encode()
    answer = _exchange(fake_cluster.url, head)  # no body follows: the answer comes anyway
    assert _status(answer) == 413
    assert b"accepts at most 1048576 bytes" in answer
    assert b"connection: close" in answer.lower()


def test_a_streamed_body_over_1_mib_is_a_413_and_nothing_is_stored(
    fake_cluster: FakeCluster,
) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"apiVersion": "loopline/v1", "kind": "Deployment", "pad": "'
        for _ in range(40):
            yield b"a" * 65536

    r = httpx.put(fake_cluster.url + "/v1/deployments/bc", content=chunks(), headers=AUTH)
    assert r.status_code == 413, r.text
    assert r.json()["reason"] == "RequestEntityTooLarge"
    assert httpx.get(fake_cluster.url + "/v1/deployments").json()["items"] == []


def test_a_body_just_under_the_limit_is_read(fake_cluster: FakeCluster) -> None:
    body = b'{"pad": "' + b"a" * (MAX_BODY_BYTES - 20) + b'"}'
    r = httpx.put(fake_cluster.url + "/v1/deployments/bc", content=body, headers=AUTH)
    assert r.status_code == 400  # read and judged: not a Deployment
    assert r.json()["reason"] in ("Invalid", "BadRequest")


@pytest.fixture
def strict_api(fake_cluster: FakeCluster) -> Iterator[str]:
    limits = HttpLimits(head_timeout=0.5, body_timeout=0.5, idle_timeout=0.5, max_connections=4)
    with serve_api(create_app(fake_cluster.service, token=TOKEN), limits) as url:
        yield url


def test_a_head_sent_one_byte_at_a_time_is_cut_off_by_the_deadline(strict_api: str) -> None:
    with socket.create_connection(_host_port(strict_api), timeout=10) as sock:
        sock.sendall(b"GET /v1/deploy")  # and nothing more
        answer = sock.recv(65536)
        assert _status(answer) == 408
        assert sock.recv(65536) == b""  # closed


def test_connections_beyond_the_cap_are_refused_and_idle_ones_are_reaped(
    strict_api: str,
) -> None:
    idle = [socket.create_connection(_host_port(strict_api), timeout=10) for _ in range(4)]
    try:
        extra = _exchange(strict_api, b"")  # refused on accept, before any request
        assert _status(extra) == 503
        for sock in idle:  # the idle deadline closes each, freeing the slots
            assert sock.recv(65536) == b""
    finally:
        for sock in idle:
            sock.close()

    def answers() -> bool:
        return httpx.get(strict_api + "/v1/deployments").status_code == 200

    wait_for(answers, timeout=10, what="the API to answer once the idle connections closed")
