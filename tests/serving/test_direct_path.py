"""The direct inference path (small V2 infer requests answered by the connection, without
ASGI) answers byte for byte what the ASGI app answers, on a real server on 127.0.0.1.

Each request is sent twice on raw sockets: as a client sends it (Content-Length: the direct
path) and with the same body chunked (Transfer-Encoding: chunked, which always goes through
the ASGI app). The app counts the HTTP requests that reach it, so each case also proves
which path answered."""

from __future__ import annotations

import gzip
import re
import socket
import struct
from collections.abc import Iterator
from typing import Any

import numpy as np
import orjson
import pytest
from tests.serving.conftest import ThreadedServer

from loopline.serving import ServedModel, ServerOptions
from loopline.serving.app import ModelServerApp
from loopline.serving.direct import DIRECT_BODY_MAX
from loopline.serving.http import Receive, Scope, Send

LIMIT = 8192
_DATE = re.compile(rb"^date: [^\r]*\r\n", re.MULTILINE)


class CountingApp(ModelServerApp):
    """The model server app, counting the HTTP requests that reach it through ASGI."""

    asgi_requests = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.asgi_requests += 1
        await super().__call__(scope, receive, send)


@pytest.fixture(scope="module")
def server(models: Any) -> Iterator[ThreadedServer]:
    served = [
        ServedModel("lr", "1", models.lr, aliases=("champion",)),
        ServedModel("lr", "2", models.lr_v2, aliases=("challenger",), batching=True),
        ServedModel("rf", "1", models.rf, batching=True),
    ]
    app = CountingApp(served, ServerOptions(max_body_bytes=LIMIT))
    with ThreadedServer(app) as s:
        yield s


def read_response(sock: socket.socket, buffered: bytearray) -> bytes:
    """One whole response from ``sock`` (``buffered`` holds bytes read past earlier ones)."""
    while b"\r\n\r\n" not in buffered:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed mid-response: {bytes(buffered)!r}")
        buffered += chunk
    head_end = buffered.index(b"\r\n\r\n") + 4
    length = int(re.search(rb"content-length: (\d+)", bytes(buffered[:head_end])).group(1))
    while len(buffered) < head_end + length:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError("connection closed mid-body")
        buffered += chunk
    response = bytes(buffered[: head_end + length])
    del buffered[: head_end + length]
    return response


def exchange(port: int, request: bytes, answers: int = 1) -> list[bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        buffered = bytearray()
        return [_DATE.sub(b"", read_response(sock, buffered)) for _ in range(answers)]


def request(path: str, body: bytes, headers: dict[str, str], *, chunked: bool) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if chunked:
        lines.append("Transfer-Encoding: chunked")
        payload = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body) if body else b"0\r\n\r\n"
    else:
        lines.append(f"Content-Length: {len(body)}")
        payload = body
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


def v2(x: np.ndarray[Any, Any], **extra: Any) -> bytes:
    tensor = {"name": "input", "shape": list(x.shape), "datatype": "FP64",
              "data": x.ravel().tolist()}  # fmt: skip
    return orjson.dumps({"inputs": [tensor], **extra})


def binary_request(x: np.ndarray[Any, Any]) -> tuple[bytes, dict[str, str]]:
    raw = np.ascontiguousarray(x, dtype=np.float64).tobytes()
    head = orjson.dumps({
        "inputs": [{"name": "input", "shape": list(x.shape), "datatype": "FP64",
                    "parameters": {"binary_data_size": len(raw)}}],
        "parameters": {"binary_data_output": True},
    })  # fmt: skip
    headers = {"Content-Type": "application/octet-stream",
               "Inference-Header-Content-Length": str(len(head))}  # fmt: skip
    return head + raw, headers


def cases(x: np.ndarray[Any, Any]) -> list[tuple[str, str, bytes, dict[str, str], int, bool]]:
    """(case, path, body, headers, expected status, answered directly)."""
    rid = {"X-Request-ID": "req-1"}
    binary_body, binary_headers = binary_request(x[:2])
    big = v2(np.zeros((LIMIT // 8, 30)))
    return [
        ("one row", "/v2/models/lr/infer", v2(x[:1]), rid, 200, True),
        ("id, parameters and chosen outputs", "/v2/models/lr/infer",
         v2(x[:3], id="abc", parameters={"k": 1},
            outputs=[{"name": "predict_proba"}]), {}, 200, True),
        ("a version", "/v2/models/lr/versions/2/infer", v2(x[:2]), rid, 200, True),
        ("an alias, batching", "/v2/models/lr/versions/challenger/infer", v2(x[:1]), rid, 200,
         True),
        ("a batching forest", "/v2/models/rf/infer", v2(x[:4]), rid, 200, True),
        ("binary tensors in and out", "/v2/models/lr/infer", binary_body,
         {**binary_headers, **rid}, 200, True),
        ("gzip body", "/v2/models/lr/infer", gzip.compress(v2(x[:1])),
         {"Content-Encoding": "gzip", **rid}, 200, True),
        ("connection: close", "/v2/models/lr/infer", v2(x[:1]),
         {"Connection": "close", **rid}, 200, True),
        ("not JSON", "/v2/models/lr/infer", b"{nope", {}, 400, True),
        ("a wrong shape", "/v2/models/lr/infer", v2(x[:1, :5]), {}, 400, True),
        ("a bad request id", "/v2/models/lr/infer", v2(x[:1]), {"X-Request-ID": "x" * 200},
         400, True),
        ("an unknown content encoding", "/v2/models/lr/infer", v2(x[:1]),
         {"Content-Encoding": "br"}, 415, True),
        ("a body over the limit", "/v2/models/lr/infer", big, {}, 413,
         len(big) <= DIRECT_BODY_MAX),
        ("a header length past the body", "/v2/models/lr/infer", b"{}",
         {"Inference-Header-Content-Length": "99"}, 400, True),
        ("an unknown model", "/v2/models/nope/infer", v2(x[:1]), {}, 404, False),
        ("an unknown version", "/v2/models/lr/versions/9/infer", v2(x[:1]), {}, 404, False),
    ]  # fmt: skip


def test_the_direct_path_answers_byte_for_byte_what_the_asgi_app_answers(
    server: ThreadedServer, models: Any
) -> None:
    app = server.app
    assert isinstance(app, CountingApp)
    for case, path, body, headers, status, direct in cases(models.x):
        before = app.asgi_requests
        (fast,) = exchange(server.port, request(path, body, headers, chunked=False))
        through_asgi = app.asgi_requests - before
        (slow,) = exchange(server.port, request(path, body, headers, chunked=True))
        assert app.asgi_requests - before == through_asgi + 1, case
        assert through_asgi == (0 if direct else 1), case
        assert fast.startswith(b"HTTP/1.1 %d " % status), (case, fast[:300])
        assert fast == slow, case


def test_the_answers_carry_uvicorns_default_headers_in_asgis_order(
    server: ThreadedServer, models: Any
) -> None:
    headers = {"X-Request-ID": "order"}
    (fast,) = exchange(
        server.port, request("/v2/models/lr/infer", v2(models.x[:1]), headers, chunked=False)
    )
    head = fast.split(b"\r\n\r\n")[0].split(b"\r\n")
    names = [line.split(b":")[0] for line in head[1:]]
    assert names == [b"server", b"content-type", b"content-length", b"x-request-id"]


def test_pipelined_requests_mixing_the_direct_path_and_asgi_are_answered_in_order(
    server: ThreadedServer, models: Any
) -> None:
    infer = request("/v2/models/lr/versions/2/infer", v2(models.x[:1]),
                    {"X-Request-ID": "p1"}, chunked=False)  # fmt: skip
    live = b"GET /v2/health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    second = request("/v2/models/rf/infer", v2(models.x[:2]), {"X-Request-ID": "p2"},
                     chunked=False)  # fmt: skip
    first, middle, last = exchange(server.port, infer + live + second, answers=3)
    assert b"x-request-id: p1" in first
    assert middle.endswith(b'{"live":true}')
    assert b"x-request-id: p2" in last


def test_a_body_sent_in_pieces_is_waited_for_on_the_direct_path(
    server: ThreadedServer, models: Any
) -> None:
    app = server.app
    assert isinstance(app, CountingApp)
    body = v2(models.x[:1])
    raw = request("/v2/models/lr/infer", body, {"X-Request-ID": "slow"}, chunked=False)
    before = app.asgi_requests
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(raw[: len(raw) - len(body) // 2])
        sock.settimeout(0.2)
        with pytest.raises(TimeoutError):
            sock.recv(1)  # no answer before the body is complete
        sock.settimeout(10)
        sock.sendall(raw[len(raw) - len(body) // 2 :])
        answer = read_response(sock, bytearray())
    assert answer.startswith(b"HTTP/1.1 200 OK")
    assert b"x-request-id: slow" in answer
    assert app.asgi_requests == before


def test_direct_answers_are_counted_in_the_metrics(server: ThreadedServer, models: Any) -> None:
    metrics = b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    pattern = rb'loopline_requests_total\{model="rf",version="1",protocol="v2",code="200"\} (\S+)'

    def count() -> float:
        (answer,) = exchange(server.port, metrics)
        found = re.search(pattern, answer)
        return float(found.group(1)) if found else 0.0

    before = count()
    exchange(server.port, request("/v2/models/rf/infer", v2(models.x[:1]), {}, chunked=False))
    assert count() == before + 1


def test_a_binary_answer_on_the_direct_path_holds_the_model_outputs(
    server: ThreadedServer, models: Any
) -> None:
    body, headers = binary_request(models.x[:2])
    (answer,) = exchange(server.port, request("/v2/models/lr/infer", body, headers,
                                              chunked=False))  # fmt: skip
    head, payload = answer.split(b"\r\n\r\n", 1)
    json_len = int(re.search(rb"inference-header-content-length: (\d+)", head).group(1))
    document = orjson.loads(payload[:json_len])
    (out,) = [o for o in document["outputs"] if o["name"] == "predict"]
    size = out["parameters"]["binary_data_size"]
    offset = json_len
    for o in document["outputs"]:
        if o["name"] == "predict":
            break
        offset += o["parameters"]["binary_data_size"]
    labels = struct.unpack(f"<{size // 8}q", payload[offset : offset + size])
    assert list(labels) == [int(v) for v in models.lr.predict(models.x[:2])["predict"]]
