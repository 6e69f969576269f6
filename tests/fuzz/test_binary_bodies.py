"""Fuzzing the binary tensor data extension: V2 inference bodies with an
``Inference-Header-Content-Length`` — structured requests with wrong sizes, shapes, datatypes
and parameters, valid requests with flipped, cut or inserted bytes, arbitrary bytes under
arbitrary header values, compressed or not.

Most requests go to the ASGI app in process (no sockets: thousands per second), the app
serving a float tensor model with and without batching, a frame with int, float, bool and
string columns, and string and bool echo models. A smaller share goes to a real
``loopline serve`` process over HTTP. Properties: never a 5xx (a 503 only with Retry-After),
every error a JSON body with a message, every 200 framed as it says (the binary sizes in the
JSON part add up to the bytes after it), the worker process stays the same one. 10,300
generated requests in all (1,500 + 1,500 + 1,000 + 6,000 in process, 300 over HTTP).
"""

from __future__ import annotations

import asyncio
import gzip
import itertools
import json
import random
import subprocess
import sys
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from tests.fuzz.mutations import FUZZ, WEIRD_NUMBERS, WEIRD_TEXT
from tests.serving.echo_model import columns_model, echo_model

from loopline.bundle import infer_signature, load_model, save_model, tree_digest
from loopline.serving import ServedModel, ServerOptions, create_app
from loopline.serving.app import ModelServerApp
from loopline.testing.artifacts import wait_for

LIMIT = 100_000
pytestmark = pytest.mark.filterwarnings(
    "ignore:overflow encountered:RuntimeWarning",
    "ignore:invalid value encountered:RuntimeWarning",
    "ignore:divide by zero encountered:RuntimeWarning",
)
"""Binary tensors carry any float (1e308, inf, NaN) to the model. NumPy warns when scaling
such values overflows; the server runs with Python's default warning filters, where a
warning is printed, not raised, so the in-process app runs under the same rule here (pytest
would turn it into an exception, and the app into a 500 that no server answers)."""
Headers = list[tuple[bytes, bytes]]


@dataclass
class Answer:
    status: int
    headers: dict[bytes, bytes]
    body: bytes


def check(answer: Answer) -> None:
    """Below 500 (503 only with Retry-After); errors are JSON with a message; a binary 200
    adds up."""
    assert answer.status < 500 or answer.status == 503, answer.body[:500]
    if answer.status == 503:
        assert b"retry-after" in answer.headers
    header = answer.headers.get(b"inference-header-content-length")
    if header is None:
        doc = orjson.loads(answer.body)
        if answer.status >= 400:
            assert isinstance(doc["error"], str) and doc["error"].strip(), doc
            assert "Traceback" not in doc["error"]
        return
    assert answer.status == 200
    assert answer.headers[b"content-type"] == b"application/octet-stream"
    n = int(header)
    head = orjson.loads(answer.body[:n])
    sizes = [o["parameters"]["binary_data_size"] for o in head["outputs"] if "parameters" in o]
    assert sum(sizes) == len(answer.body) - n and sizes


# ------------------------------------------------------------------- in process
class InProcess:
    """The app driven by ASGI calls on one event loop, body sent in up to three chunks."""

    def __init__(self, app: ModelServerApp) -> None:
        self.app = app
        self.loop = asyncio.new_event_loop()
        self.loop.run_until_complete(app.startup())

    def post(self, path: str, headers: Headers, body: bytes, chunks: int = 1) -> Answer:
        return self.loop.run_until_complete(self._post(path, headers, body, chunks))

    async def _post(self, path: str, headers: Headers, body: bytes, chunks: int) -> Answer:
        cut = sorted({0, len(body), *(len(body) * k // chunks for k in range(1, chunks))})
        parts = [body[a:b] for a, b in itertools.pairwise(cut)] or [b""]
        messages = [
            {"type": "http.request", "body": p, "more_body": i < len(parts) - 1}
            for i, p in enumerate(parts)
        ]
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return messages.pop(0) if messages else {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {
            "type": "http",
            "method": "POST",
            "path": path,
            "headers": [(b"content-length", b"%d" % len(body)), *headers],
        }
        await self.app(scope, receive, send)
        start, done = sent
        return Answer(start["status"], dict(start["headers"]), done["body"])

    def close(self) -> None:
        self.loop.run_until_complete(self.app.shutdown())
        self.loop.close()


@pytest.fixture(scope="module")
def lr_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    x, y = load_breast_cancer(return_X_y=True)
    lr = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(x, y)
    return save_model(lr, tmp_path_factory.mktemp("lr") / "lr", signature=infer_signature(x, y),
                      methods=("predict", "predict_proba"), input_example=x[:2])  # fmt: skip


@pytest.fixture(scope="module")
def app(lr_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcess]:
    root = tmp_path_factory.mktemp("echo")
    lr = load_model(lr_bundle)
    served = [
        ServedModel("lr", "1", lr),
        ServedModel("lr", "2", lr, batching=True),
        ServedModel("columns", "1", columns_model(root)),
        ServedModel("echo-string", "1", echo_model(root, "string")),
        ServedModel("echo-bool", "1", echo_model(root, "bool")),
    ]
    driver = InProcess(create_app(served, options=ServerOptions(max_body_bytes=LIMIT)))
    yield driver
    driver.close()


# ------------------------------------------------------------------ the requests
def framed(header: Any, *blocks: bytes) -> tuple[bytes, Headers]:
    head = orjson.dumps(header)
    return head + b"".join(blocks), [(b"inference-header-content-length", b"%d" % len(head))]


ROWS = load_breast_cancer().data[:3]
STRINGS = b"".join(len(s).to_bytes(4, "little") + s for s in (b"a", "é".encode(), b"", b"xyz"))
VALID: list[tuple[str, bytes, Headers]] = [
    ("/v2/models/lr/infer", *framed({
        "id": "v-1",
        "inputs": [{"name": "input", "shape": [3, 30], "datatype": "FP64",
                    "parameters": {"binary_data_size": 720}}],
        "outputs": [{"name": "predict", "parameters": {"binary_data": True}},
                    {"name": "predict_proba"}],
    }, ROWS.tobytes())),
    ("/v2/models/lr/versions/2/infer", *framed({
        "inputs": [{"name": "input", "shape": [1, 30], "datatype": "FP32",
                    "parameters": {"binary_data_size": 120}}],
        "parameters": {"binary_data_output": True},
    }, ROWS[:1].astype(np.float32).tobytes())),
    ("/v2/models/columns/infer", *framed({
        "inputs": [
            {"name": "f", "shape": [2], "datatype": "FP64", "parameters": {"binary_data_size": 16}},
            {"name": "i", "shape": [2], "datatype": "INT8", "data": [1, -2]},
            {"name": "b", "shape": [2], "datatype": "BOOL", "parameters": {"binary_data_size": 2}},
            {"name": "s", "shape": [2], "datatype": "BYTES",
             "parameters": {"binary_data_size": 11}},
        ],
        "parameters": {"binary_data_output": True},
        "outputs": [{"name": "s"}, {"name": "f", "parameters": {"binary_data": False}}],
    }, np.array([0.5, 2.0]).tobytes(), b"\x01\x00", STRINGS[:11])),
    ("/v2/models/echo-string/infer", *framed({
        "inputs": [{"name": "x", "shape": [1, 3], "datatype": "BYTES",
                    "parameters": {"binary_data_size": 15}}],
        "parameters": {"binary_data_output": True},
    }, STRINGS[:15])),
    ("/v2/models/echo-bool/infer", *framed({
        "inputs": [{"name": "x", "shape": [2, 3], "datatype": "BOOL",
                    "parameters": {"binary_data_size": 6}}],
        "outputs": [{"name": "predict", "parameters": {"binary_data": True}}],
    }, b"\x01\x00\x01\x00\x00\x01")),
    ("/v2/models/lr/infer", ROWS[:2].tobytes(), [(b"inference-header-content-length", b"0")]),
]  # fmt: skip
PATHS = sorted({path for path, _, _ in VALID} | {"/v1/models/lr:predict"})


def test_the_bodies_the_fuzzers_distort_are_answered(app: InProcess) -> None:
    for path, body, headers in VALID:
        answer = app.post(path, headers, body)
        assert answer.status == 200, answer.body
        check(answer)


weird = st.one_of(st.sampled_from(WEIRD_NUMBERS), st.sampled_from(WEIRD_TEXT), st.none())
sizes = st.one_of(st.integers(-8, 800), weird, st.just(2**63), st.lists(st.integers(), max_size=2))
params = st.one_of(
    st.fixed_dictionaries({}, optional={"binary_data_size": sizes, "shared_memory_region": weird}),
    weird,
)
datatypes = st.sampled_from(
    ["FP64", "FP32", "FP16", "BF16", "INT8", "INT64", "UINT64", "UINT8", "BOOL", "BYTES", "x"]
)
tensor = st.fixed_dictionaries(
    {
        "name": st.sampled_from(["input", "x", "f", "i", "b", "s", "nope", ""]),
        "shape": st.one_of(st.lists(st.integers(-1, 40), max_size=3), weird),
        "datatype": datatypes,
    },
    optional={"parameters": params, "data": st.lists(st.integers(-3, 3), max_size=8)},
)
outputs = st.lists(
    st.fixed_dictionaries(
        {"name": st.sampled_from(["predict", "predict_proba", "f", "s", "b", "nope"])},
        optional={"parameters": st.fixed_dictionaries({}, optional={"binary_data": weird})},
    ),
    max_size=3,
)
requests = st.fixed_dictionaries(
    {"inputs": st.lists(tensor, max_size=4)},
    optional={
        "outputs": outputs,
        "id": st.sampled_from(WEIRD_TEXT),
        "parameters": st.one_of(st.fixed_dictionaries({"binary_data_output": weird}), weird),
    },
)
content_types = st.sampled_from(
    [
        None,
        b"application/octet-stream",
        b"application/json",
        b"text/plain",
        b"APPLICATION/Octet-Stream; q=1",
    ]
)


@st.composite
def structured(draw: st.DrawFn) -> tuple[str, bytes, Headers]:
    """A JSON part from ``requests``, binary blocks of plausible and implausible sizes, a
    header length that is right, off by a little or not a number, and a content type."""
    header = draw(requests)
    head = json.dumps(header).encode()  # NaN, Infinity and 2**70 as Python writes them
    blocks = draw(st.lists(st.binary(max_size=800), max_size=4))
    body = head + b"".join(blocks)
    length = draw(
        st.one_of(
            st.just(b"%d" % len(head)),
            st.integers(-2, 2).map(lambda d: b"%d" % (len(head) + d)),
            st.sampled_from([b"0", b"", b"x", b"1e3", b"%d" % len(body), b"%d" % (len(body) + 1)]),
        )
    )
    headers = [(b"inference-header-content-length", length)]
    content_type = draw(content_types)
    if content_type is not None:
        headers.append((b"content-type", content_type))
    return draw(st.sampled_from(PATHS)), body, headers


@st.composite
def mutated_valid(draw: st.DrawFn) -> tuple[str, bytes, Headers]:
    """A valid request with 1-4 bytes flipped, inserted, deleted or cut off anywhere."""
    path, body, headers = draw(st.sampled_from(VALID))
    data = bytearray(body)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "cut"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[at] = draw(st.integers(0, 255))
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=4))
        elif op == "delete" and data:
            del data[at]
        elif op == "cut":
            del data[at:]
    return path, bytes(data), headers


@settings(FUZZ, max_examples=1_500)
@given(request=structured(), chunks=st.integers(1, 3))
def test_structured_binary_requests_never_get_a_5xx(
    app: InProcess, request: tuple[str, bytes, Headers], chunks: int
) -> None:
    path, body, headers = request
    check(app.post(path, headers, body, chunks))


@settings(FUZZ, max_examples=1_500)
@given(request=mutated_valid(), chunks=st.integers(1, 3))
def test_valid_binary_requests_with_damaged_bytes_never_get_a_5xx(
    app: InProcess, request: tuple[str, bytes, Headers], chunks: int
) -> None:
    path, body, headers = request
    check(app.post(path, headers, body, chunks))


@settings(FUZZ, max_examples=1_000)
@given(
    raw=st.binary(max_size=600),
    length=st.one_of(st.integers(0, 700).map(lambda n: b"%d" % n), st.binary(max_size=12)),
    encoding=st.sampled_from([None, b"gzip", b"deflate", b"identity", b"br", b"GZIP "]),
    path=st.sampled_from(PATHS),
)
def test_arbitrary_bytes_under_any_header_and_encoding_never_get_a_5xx(
    app: InProcess, raw: bytes, length: bytes, encoding: bytes | None, path: str
) -> None:
    headers = [(b"inference-header-content-length", length)]
    if encoding is not None:
        headers.append((b"content-encoding", encoding))
    check(app.post(path, headers, raw))


def _damage(rng: random.Random, body: bytes) -> bytes:
    data = bytearray(body)
    for _ in range(rng.randint(1, 6)):
        at = rng.randrange(len(data)) if data else 0
        op = rng.random()
        if op < 0.5 and data:
            data[at] = rng.randrange(256)
        elif op < 0.7:
            data[at:at] = rng.randbytes(rng.randint(1, 8))
        elif op < 0.9 and data:
            del data[at : at + rng.randint(1, 8)]
        else:
            del data[at:]
    return bytes(data)


def test_a_seeded_sweep_of_damaged_and_compressed_requests_never_gets_a_5xx(
    app: InProcess,
) -> None:
    """6,000 requests: each valid body damaged at random (seeded, the same every run), with
    the header length kept, moved or dropped, and every fifth one compressed."""
    rng = random.Random(12)
    for i in range(6_000):
        path, body, headers = VALID[i % len(VALID)]
        body = _damage(rng, body)
        headers = list(headers)
        if i % 7 == 3:
            headers = [(b"inference-header-content-length", b"%d" % rng.randint(0, len(body) + 2))]
        elif i % 11 == 5:
            headers = []
        if i % 5 == 0:
            coding = rng.choice([b"gzip", b"deflate"])
            body = gzip.compress(body) if coding == b"gzip" else zlib.compress(body)
            headers.append((b"content-encoding", coding))
        check(app.post(path, headers, body, chunks=1 + i % 3))


# --------------------------------------------------------------- a real process
@pytest.fixture(scope="module")
def process(lr_bundle: Path) -> Iterator[tuple[httpx.Client, subprocess.Popen[str], int]]:
    argv = [sys.executable, "-m", "loopline.cli.serve_process", str(lr_bundle), "--name", "lr",
            "--expected-digest", tree_digest(lr_bundle), "--port", "0", "--batching",
            "--max-body-bytes", str(LIMIT)]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "listening on" in line, f"the server did not start: {line!r}"
        url = line.split("listening on ")[1].split()[0]
        client = httpx.Client(base_url=url, timeout=30)

        def ready() -> bool:
            try:
                return client.get("/v2/health/ready").status_code == 200
            except httpx.TransportError:
                return False

        wait_for(ready, timeout=60, what="the model server to be ready")
        worker = _worker_pid(proc.pid)
        assert worker is not None
        yield client, proc, worker
        client.close()
    finally:
        proc.terminate()
        proc.wait(30)
        if proc.stdout is not None:
            proc.stdout.close()


def _worker_pid(supervisor: int) -> int | None:
    children = Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split()
    return int(children[0]) if children else None


def over_http(client: httpx.Client, path: str, headers: Headers, body: bytes) -> Answer:
    r = client.post(path, content=body, headers=headers)
    return Answer(r.status_code, {k: v for k, v in r.headers.raw}, r.content)


LR_PATH = "/v2/models/lr/infer"  # the process serves one version of lr


@settings(FUZZ, max_examples=300)
@given(request=st.one_of(structured(), mutated_valid()).map(lambda r: (LR_PATH, *r[1:])))
def test_a_real_server_answers_binary_requests_below_500_and_keeps_its_worker(
    process: tuple[httpx.Client, subprocess.Popen[str], int],
    request: tuple[str, bytes, Headers],
) -> None:
    client, proc, worker = process
    path, body, headers = request
    check(over_http(client, path, headers, body))
    assert proc.poll() is None and _worker_pid(proc.pid) == worker


def test_the_real_server_still_answers_a_valid_binary_request(
    process: tuple[httpx.Client, subprocess.Popen[str], int],
) -> None:
    client, _, _ = process
    for path, body, headers in VALID:
        if path != LR_PATH:
            continue
        answer = over_http(client, path, headers, body)
        assert answer.status == 200, answer.body
        check(answer)
