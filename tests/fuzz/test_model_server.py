"""Fuzzing a real model-server process: V2 infer (JSON), KServe V1 ``:predict``, MLflow
``/invocations`` and the feedback endpoint, with structured and raw bodies and raw header
blocks.

One ``python -m loopline.cli.serve_process`` (the process the local engine starts) serves a
small scikit-learn bundle on 127.0.0.1 for the whole module, checked against its digest:
``tab``, a frame with an integer, a float and a string column (one model, so that MLflow's
``/invocations`` answers too), with batching and prediction logging on (the feedback endpoint
needs the log). Float-array models are fuzzed in-process by ``tests/serving/test_fuzz.py``.
Properties: never a 5xx (503 only when overloaded), every error a JSON body naming the
problem, the worker process stays the same one, and its memory stays bounded.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from tests.fuzz.mutations import FUZZ, WEIRD_NUMBERS, WEIRD_TEXT

from loopline.bundle import infer_signature, save_model, tree_digest

RSS_GROWTH_LIMIT = 200 * 1024 * 1024
"""How much the worker's resident memory may grow over the whole module (bytes): far above
what serving a few hundred small requests needs, far below what a leak per request of the
request's size, or an unbounded buffer, would take."""


@dataclass
class Server:
    url: str
    supervisor: subprocess.Popen[str]
    worker: int
    rss_at_start: int

    def check_alive(self) -> None:
        assert self.supervisor.poll() is None, "the server process exited"
        assert _worker_pid(self.supervisor.pid) == self.worker, "the worker was replaced"


def _worker_pid(supervisor: int) -> int | None:
    children = Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split()
    return int(children[0]) if children else None


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"process {pid} reports no VmRSS")


def _bundle(root: Path) -> Path:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "age": rng.integers(18, 90, 100).astype(np.int64),
            "fare": rng.random(100) * 100,
            "city": rng.choice(["paris", "lyon", "nice"], 100).astype(object),
        }
    )
    target = (frame.fare > 50).astype(np.int64)
    tab = make_pipeline(
        ColumnTransformer(
            [
                ("num", StandardScaler(), ["age", "fare"]),
                ("cat", OneHotEncoder(handle_unknown="ignore"), ["city"]),
            ]
        ),
        LogisticRegression(),
    ).fit(frame, target)
    return save_model(
        tab,
        root / "tab",
        signature=infer_signature(frame, target),
        methods=("predict", "predict_proba"),
        input_example=frame.head(2),
        metadata={"name": "tab", "version": "3"},
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("fuzz-server")
    bundle = _bundle(root)
    argv = [
        sys.executable, "-m", "loopline.cli.serve_process", str(bundle),
        "--expected-digest", tree_digest(bundle), "--port", "0", "--batching",
        "--max-body-bytes", "200000", "--log-dir", str(root / "logs"),
    ]  # fmt: skip
    env = {**os.environ, "LOOPLINE_HOME": str(root / "home")}
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "listening on" in line, f"the server did not start: {line!r}"
        url = line.split("listening on ")[1].split()[0]
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/v2/health/ready", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server was not ready within 60 s"
            time.sleep(0.1)
        worker = _worker_pid(proc.pid)
        assert worker is not None
        yield Server(url, proc, worker, rss_bytes(worker))
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()


ENDPOINTS = (
    "/v2/models/tab/infer",
    "/v2/models/tab/versions/3/infer",
    "/v1/models/tab:predict",
    "/invocations",
    "/v2/models/tab/feedback",
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(),  # NaN and Infinity too: Python's json writes them as bare words
    st.text(max_size=8),
    st.sampled_from(WEIRD_NUMBERS),
    st.sampled_from(WEIRD_TEXT),
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=25,
)
tensors = st.fixed_dictionaries(
    {
        "name": st.sampled_from(["input", "age", "fare", "city", "x", "", "nl\n"]),
        "shape": st.one_of(st.lists(st.integers(-2, 40), max_size=3), json_values),
        "datatype": st.sampled_from(
            ["FP64", "FP32", "INT64", "INT8", "BOOL", "BYTES", "UINT64", "FP16", "BF16", "x"]
        ),
        "data": st.one_of(
            st.lists(scalars, max_size=20),
            st.lists(st.lists(scalars, max_size=5), max_size=5),
            json_values,
        ),
    },
    optional={"parameters": json_values},
)
v2_bodies = st.fixed_dictionaries(
    {"inputs": st.one_of(st.lists(tensors, max_size=4), json_values)},
    optional={
        "id": st.one_of(st.sampled_from(WEIRD_TEXT), json_values),
        "outputs": json_values,
        "parameters": json_values,
    },
)
columns = st.sampled_from(["age", "fare", "city", "", "x"])
other_bodies = st.one_of(
    st.fixed_dictionaries({"instances": json_values}),
    st.fixed_dictionaries({"instances": st.lists(st.dictionaries(columns, scalars), max_size=4)}),
    st.fixed_dictionaries({"inputs": json_values}),
    st.fixed_dictionaries(
        {"dataframe_split": st.fixed_dictionaries({"columns": json_values, "data": json_values})}
    ),
    st.fixed_dictionaries({"dataframe_records": st.lists(st.dictionaries(columns, scalars))}),
    st.fixed_dictionaries(
        {"request_id": json_values, "labels": json_values},
        optional={"label": json_values, "labels_by_output": json_values},
    ),
    st.fixed_dictionaries(
        {
            "feedback": st.lists(
                st.fixed_dictionaries(
                    {"request_id": st.one_of(st.sampled_from(WEIRD_TEXT), json_values)},
                    optional={"label": scalars, "labels": json_values},
                ),
                max_size=4,
            )
        }
    ),
    json_values,
)


def check_answer(r: httpx.Response) -> None:
    """Below 500 (503 only when overloaded), JSON, and an error body names the problem."""
    assert r.status_code < 500 or r.status_code == 503, r.text
    if r.status_code == 503:  # overloaded or not ready: the client is told when to retry
        assert "retry-after" in r.headers, r.text
    body = r.json()
    if r.status_code >= 400:
        message = body.get("error") or body.get("message")
        assert isinstance(message, str) and message.strip(), body
        assert "Traceback" not in message


@pytest.fixture(scope="module")
def http(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


ROWS = [{"age": 30, "fare": 12.5, "city": "nice"}, {"age": 61, "fare": 80.0, "city": "lyon"}]
V2_BODY = {
    "id": "r-1",
    "inputs": [{"name": "age", "shape": [2], "datatype": "INT64", "data": [30, 61]},
               {"name": "fare", "shape": [2], "datatype": "FP64", "data": [12.5, 80.0]},
               {"name": "city", "shape": [2], "datatype": "BYTES", "data": ["nice", "lyon"]}],
}  # fmt: skip
VALID = (
    ("/v2/models/tab/infer", V2_BODY),
    ("/v1/models/tab:predict", {"instances": ROWS}),
    ("/invocations", {"dataframe_records": ROWS}),
    ("/invocations", {"dataframe_split": {"columns": ["age", "fare", "city"],
                                          "data": [[30, 12.5, "nice"]]}}),
    ("/v2/models/tab/feedback", {"request_id": "r-1", "labels": [0, 1]}),
)  # fmt: skip


@pytest.mark.parametrize(("endpoint", "body"), VALID)
def test_the_bodies_the_fuzzers_distort_are_answered(
    http: httpx.Client, endpoint: str, body: Any
) -> None:
    r = http.post(endpoint, json=body)
    assert r.status_code == 200, r.text


@settings(FUZZ, max_examples=300)
@given(body=st.one_of(v2_bodies, other_bodies), endpoint=st.sampled_from(ENDPOINTS))
def test_structured_bodies_never_get_a_5xx(
    server: Server, http: httpx.Client, body: Any, endpoint: str
) -> None:
    check_answer(http.post(endpoint, content=json.dumps(body, allow_nan=True)))
    server.check_alive()


@settings(FUZZ, max_examples=60)
@given(request_id=st.one_of(st.sampled_from(WEIRD_TEXT), st.text(max_size=200), json_values))
@example(request_id="a\nb")  # dropped the connection before issue #11
def test_any_v2_id_on_a_valid_request_gets_a_json_answer_below_500(
    server: Server, http: httpx.Client, request_id: Any
) -> None:
    body = {**V2_BODY, "id": request_id}
    r = http.post("/v2/models/tab/infer", content=json.dumps(body, allow_nan=True))
    check_answer(r)
    if r.status_code == 200 and request_id:  # an empty id is no id: the server makes one
        assert r.json()["id"] == request_id
    server.check_alive()


@settings(FUZZ, max_examples=150)
@given(raw=st.binary(max_size=400), endpoint=st.sampled_from(ENDPOINTS))
def test_raw_bytes_never_get_a_5xx(
    server: Server, http: httpx.Client, raw: bytes, endpoint: str
) -> None:
    check_answer(http.post(endpoint, content=raw))
    server.check_alive()


header_names = st.one_of(
    st.sampled_from(
        ["content-type", "content-length", "x-request-id", "transfer-encoding", "accept", "host"]
    ),
    st.from_regex(r"[A-Za-z0-9!#$%&'*+.^_`|~-]{1,20}", fullmatch=True),
)
header_values = st.one_of(
    st.sampled_from(["", "-1", "1e9", "chunked", "application/json", "a\x00b", "é", "x" * 300]),
    st.binary(max_size=40).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"")),
)


def _raw_request(url: str, head: bytes, body: bytes, *, half_close: bool = False) -> bytes:
    """Send one request on a new connection and read until the server closes it.

    ``half_close`` shuts the sending side after the request, for framing the fuzzer broke
    (the server would wait for body bytes that never come; at the end of input the server
    drops the request unanswered, like a client that went away)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as s:
        s.sendall(head + body)
        if half_close:
            s.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


@settings(FUZZ, max_examples=150)
@given(
    headers=st.lists(st.tuples(header_names, header_values), max_size=6),
    endpoint=st.sampled_from(ENDPOINTS),
)
def test_raw_header_blocks_never_get_a_5xx(
    server: Server, headers: list[tuple[str, bytes | str]], endpoint: str
) -> None:
    body = json.dumps(V2_BODY).encode()  # a valid request: only the headers are distorted
    lines = [f"POST {endpoint} HTTP/1.1".encode(), b"Host: 127.0.0.1", b"Connection: close"]
    for name, value in headers:
        raw = value if isinstance(value, bytes) else value.encode("utf-8")
        lines.append(name.encode() + b": " + raw)
    framed = any(name.lower() in ("content-length", "transfer-encoding") for name, _ in headers)
    if not framed:
        lines.append(f"Content-Length: {len(body)}".encode())
    head = b"\r\n".join(lines) + b"\r\n\r\n"
    answer = _raw_request(server.url, head, body, half_close=framed)
    if answer:  # a request the parser refuses may be closed without an answer
        status = int(answer.split(b" ", 2)[1])
        assert status < 500 or status == 503, answer[:500]
        if status >= 400 and b"application/json" in answer.split(b"\r\n\r\n", 1)[0].lower():
            json.loads(answer.split(b"\r\n\r\n", 1)[1] or b"null")
    server.check_alive()


EDGE_BODIES = (
    b"[" * 100_000,  # deeper than any JSON parser recurses
    b'{"inputs": ' + b"[" * 5_000 + b"]" * 5_000 + b"}",
    b"1e999999",
    b'{"inputs": [{"name": "age", "shape": [1], "datatype": "INT64", "data": [1e999]}]}',
    b'{"inputs": [{"name": "age", "shape": [99999999999], "datatype": "INT64", "data": [1]}]}',
    b'{"inputs": [{"name": "age", "shape": [-1, -1], "datatype": "INT64", "data": []}]}',
    b'{"id": "a\nb", "inputs": []}',
    b'{"id": "' + b"x" * 5_000 + b'", "inputs": []}',
    b'{"inputs": [], "inputs": []}',
    b"\xef\xbb\xbf{}",  # a byte-order mark
    b'"' + b"x" * 150_000 + b'"',
    b"[" + b"1," * 120_000 + b"1]",  # over the server's 200 000-byte body cap
)


@pytest.mark.parametrize("body", EDGE_BODIES, ids=range(len(EDGE_BODIES)))
@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_edge_bodies_get_a_json_error_below_500(
    server: Server, http: httpx.Client, endpoint: str, body: bytes
) -> None:
    r = http.post(endpoint, content=body)
    check_answer(r)
    assert r.status_code >= 400, r.text
    server.check_alive()


request_paths = st.one_of(
    st.sampled_from(ENDPOINTS).map(lambda e: e.encode()),
    st.binary(min_size=1, max_size=60).map(
        lambda b: b"/v2/models/" + b.replace(b" ", b"").replace(b"\r", b"").replace(b"\n", b"")
    ),
    st.from_regex(rb"/(v1|v2)/models/[A-Za-z0-9%:/._~-]{0,40}", fullmatch=True),
)


@settings(FUZZ, max_examples=100)
@given(path=request_paths, method=st.sampled_from([b"GET", b"POST", b"PUT", b"DELETE"]))
def test_any_request_path_gets_an_answer_below_500(
    server: Server, path: bytes, method: bytes
) -> None:
    body = b'{"inputs": []}'
    head = (
        method + b" " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n"
    )
    answer = _raw_request(server.url, head, body)
    if answer:  # a request line the parser refuses may be closed without an answer
        status = int(answer.split(b" ", 2)[1])
        assert status < 500 or status == 503, answer[:500]
    server.check_alive()


def test_the_worker_survived_the_fuzzing_with_bounded_memory(server: Server) -> None:
    """Runs after the fuzz tests of this module (pytest keeps the file's order)."""
    server.check_alive()
    grown = rss_bytes(server.worker) - server.rss_at_start
    assert grown < RSS_GROWTH_LIMIT, f"the worker's RSS grew by {grown} bytes"
    with httpx.Client(base_url=server.url, timeout=30) as client:
        r = client.post("/v2/models/tab/infer", json=V2_BODY)
    assert r.status_code == 200, r.text
