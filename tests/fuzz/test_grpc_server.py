"""Fuzzing KServe's gRPC inference service: structured ``ModelInferRequest`` messages (any
names, datatypes, shapes, typed contents, raw contents, parameters and requested outputs),
valid messages with flipped, inserted, deleted or cut bytes, and arbitrary bytes to every
method.

Most messages go to one worker's real stack (uvicorn + the gRPC listener) in a thread of
this process, serving a float tensor model with and without batching, a frame with int,
float, bool and string columns, and string and bool echo models; a smaller share goes to a
real ``loopline serve --grpc-port`` process. Properties: only the status codes the service
documents (never INTERNAL or UNKNOWN; UNAVAILABLE only with ``retry-after``), every error
with a message and no stack trace, every OK answer a well-formed response, the worker
process stays the same one with bounded memory. 10,300 generated messages in all (1,500 +
1,000 + 800 + 6,000 in process, 1,000 to the process).
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from tests.fuzz.mutations import FUZZ, WEIRD_TEXT
from tests.serving.echo_model import columns_model, echo_model
from tests.serving.grpc_harness import GrpcServer

from loopline.bundle import infer_signature, load_model, save_model
from loopline.serving import ServedModel, ServerOptions, create_app
from loopline.serving import grpc_predict_v2_pb2 as pb
from loopline.testing.artifacts import wait_for

LIMIT = 100_000
RSS_GROWTH_LIMIT = 200 * 1024 * 1024
pytestmark = pytest.mark.filterwarnings(
    "ignore:overflow encountered:RuntimeWarning",
    "ignore:invalid value encountered:RuntimeWarning",
    "ignore:divide by zero encountered:RuntimeWarning",
)
"""Tensors carry any float (1e308, inf, NaN) to the model; NumPy warns when scaling such
values overflows. A server runs with Python's default filters (the warning is printed), so
the in-process worker runs under the same rule here."""

ALLOWED = {
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.PERMISSION_DENIED,
}
METHODS = [m.name for m in pb.SERVICE.methods]
REQUESTS = {m.name: getattr(pb, m.input_type.name) for m in pb.SERVICE.methods}
RESPONSES = {m.name: getattr(pb, m.output_type.name) for m in pb.SERVICE.methods}


def check(method: str, code: grpc.StatusCode, details: str, trailing: Any, body: Any) -> None:
    """Only documented codes; errors say what is wrong; an OK answer parses."""
    assert code in ALLOWED, f"{method}: {code} {details}"
    if code == grpc.StatusCode.OK:
        response = RESPONSES[method].FromString(body)
        if method == "ModelInfer" and response.raw_output_contents:
            assert len(response.raw_output_contents) == len(response.outputs)
        return
    assert details.strip() and "Traceback" not in details, details
    if code == grpc.StatusCode.UNAVAILABLE:  # overloaded or not ready, never a dead worker
        assert any(key == "retry-after" for key, _ in trailing or ()), details


def call_sync(channel: grpc.Channel, method: str, data: bytes) -> None:
    stub = channel.unary_unary(f"/{pb.SERVICE_NAME}/{method}")
    try:
        body, call = stub.with_call(data, timeout=60)
        check(method, call.code(), call.details() or "", call.trailing_metadata(), body)
    except grpc.RpcError as exc:
        check(method, exc.code(), exc.details() or "", exc.trailing_metadata(), None)


# ------------------------------------------------------------------ the messages
ROWS = load_breast_cancer().data[:3]
DATATYPES = ["BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64",
             "FP16", "BF16", "FP32", "FP64", "BYTES", "fp64", "", "STRING"]  # fmt: skip
ITEM = {"BOOL": 1, "UINT8": 1, "UINT16": 2, "UINT32": 4, "UINT64": 8, "INT8": 1, "INT16": 2,
        "INT32": 4, "INT64": 8, "FP16": 2, "BF16": 2, "FP32": 4, "FP64": 8}  # fmt: skip
MODELS = ["lr", "lr", "columns", "echo-string", "echo-bool", "", "nope", "lr/1"]
VERSIONS = ["", "", "1", "2", "champion", "0", "x" * 200]
NAMES = ["input", "x", "f", "i", "b", "s", "", "nope", "input\n"]

floats = st.floats(width=64) | st.sampled_from([1e308, -1e308, 2.0**63])
CONTENTS = {
    "bool_contents": st.booleans(),
    "int_contents": st.integers(-(2**31), 2**31 - 1),
    "int64_contents": st.integers(-(2**63), 2**63 - 1),
    "uint_contents": st.integers(0, 2**32 - 1),
    "uint64_contents": st.integers(0, 2**64 - 1),
    "fp32_contents": st.floats(width=32),
    "fp64_contents": floats,
    "bytes_contents": st.binary(max_size=12) | st.sampled_from([t.encode() for t in WEIRD_TEXT]),
}
parameter_values = st.one_of(
    st.booleans().map(lambda v: ("bool_param", v)),
    st.integers(-(2**63), 2**63 - 1).map(lambda v: ("int64_param", v)),
    st.text(max_size=12).map(lambda v: ("string_param", v)),
    floats.map(lambda v: ("double_param", v)),
    st.integers(0, 2**64 - 1).map(lambda v: ("uint64_param", v)),
)
parameters = st.dictionaries(
    st.sampled_from(["binary_data", "classification", "shared_memory_region", "priority",
                     "timeout", "sequence_id", "x", ""]) | st.text(max_size=6),
    parameter_values,
    max_size=3,
)  # fmt: skip
shapes = st.lists(
    st.integers(-2, 40) | st.sampled_from([30, 2**31, 2**62, 2**63 - 1, -(2**63)]), max_size=4
)


def _set(params: Any, values: dict[str, tuple[str, Any]]) -> None:
    for key, (field, value) in values.items():
        setattr(params[key], field, value)


@st.composite
def tensors(draw: st.DrawFn, raw: bool) -> tuple[dict[str, Any], bytes | None]:
    shape = draw(shapes)
    datatype = draw(st.sampled_from(DATATYPES))
    tensor: dict[str, Any] = {"name": draw(st.sampled_from(NAMES)), "datatype": datatype,
                              "shape": shape, "parameters": draw(parameters)}  # fmt: skip
    if not raw:
        fields = draw(st.lists(st.sampled_from(sorted(CONTENTS)), max_size=2))
        tensor["contents"] = {f: draw(st.lists(CONTENTS[f], max_size=40)) for f in fields}
        return tensor, None
    count = int(np.prod(shape)) if shape and all(0 <= d <= 64 for d in shape) else 1
    count = count if count <= 256 else 1  # the right size only for small tensors
    if datatype in ITEM and draw(st.booleans()):  # the right size half the time
        return tensor, draw(st.binary(min_size=count * ITEM[datatype],
                                      max_size=count * ITEM[datatype]))  # fmt: skip
    if datatype == "BYTES" and draw(st.booleans()):
        items = draw(st.lists(st.binary(max_size=8), min_size=count, max_size=count))
        return tensor, b"".join(len(i).to_bytes(4, "little") + i for i in items)
    return tensor, draw(st.binary(max_size=300))


@st.composite
def infer_requests(draw: st.DrawFn) -> bytes:
    raw = draw(st.booleans())
    drawn = draw(st.lists(tensors(raw), max_size=4))
    request = pb.ModelInferRequest(
        model_name=draw(st.sampled_from(MODELS)),
        model_version=draw(st.sampled_from(VERSIONS)),
        id=draw(st.sampled_from(WEIRD_TEXT) | st.text(max_size=20)),
    )
    _set(request.parameters, draw(parameters))
    for spec, content in drawn:
        tensor = request.inputs.add(name=spec["name"], datatype=spec["datatype"],
                                    shape=spec["shape"])  # fmt: skip
        _set(tensor.parameters, spec["parameters"])
        for field, values in spec.get("contents", {}).items():
            getattr(tensor.contents, field).extend(values)
        if content is not None:
            request.raw_input_contents.append(content)
    if raw and draw(st.booleans()):
        request.raw_input_contents.extend(draw(st.lists(st.binary(max_size=16), max_size=2)))
    for _ in range(draw(st.integers(0, 3))):
        output = request.outputs.add(name=draw(st.sampled_from(
            ["predict", "predict_proba", "f", "s", "", "nope"])))  # fmt: skip
        _set(output.parameters, draw(parameters))
    return bytes(request.SerializeToString())


#: Each served model's inputs: (name, inner shape, the datatypes it accepts).
FLOATS = ["FP64", "FP32", "FP16", "BF16", "INT8", "INT32", "INT64", "UINT8", "UINT64"]
SIGNATURES: dict[str, list[tuple[str, list[int], list[str]]]] = {
    "lr": [("input", [30], FLOATS)],
    "columns": [("f", [], FLOATS), ("i", [], ["INT8", "INT16", "INT64", "UINT32", "UINT64"]),
                ("b", [], ["BOOL"]), ("s", [], ["BYTES"])],
    "echo-string": [("x", [3], ["BYTES"])],
    "echo-bool": [("x", [3], ["BOOL"])],
}  # fmt: skip
NP = {"FP64": "<f8", "FP32": "<f4", "FP16": "<f2", "BF16": "<u2", "INT8": "i1", "INT16": "<i2",
      "INT32": "<i4", "INT64": "<i8", "UINT8": "u1", "UINT32": "<u4", "UINT64": "<u8",
      "BOOL": "u1"}  # fmt: skip
TYPED = {"FP64": "fp64_contents", "FP32": "fp32_contents", "INT8": "int_contents",
         "INT16": "int_contents", "INT32": "int_contents", "INT64": "int64_contents",
         "UINT8": "uint_contents", "UINT32": "uint_contents", "UINT64": "uint64_contents",
         "BOOL": "bool_contents", "BYTES": "bytes_contents"}  # fmt: skip


@st.composite
def near_valid_requests(draw: st.DrawFn) -> bytes:
    """A request the model takes — right names, accepted datatypes, consistent shapes — with
    any values (NaN, inf, extremes, any bytes), raw or typed, sometimes with one fault."""
    model = draw(st.sampled_from(sorted(SIGNATURES)))
    rows = draw(st.integers(1, 4))
    raw = draw(st.booleans())
    request = pb.ModelInferRequest(model_name=model, model_version=draw(st.sampled_from(
        ["", "", "1", "champion", "2"] if model == "lr" else ["", "1"])))  # fmt: skip
    for name, inner, accepted in SIGNATURES[model]:
        datatype = draw(st.sampled_from(accepted if raw else [a for a in accepted if a in TYPED]))
        shape = [rows, *inner]
        count = int(np.prod(shape))
        tensor = request.inputs.add(name=name, datatype=datatype, shape=shape)
        if datatype == "BYTES":
            items = draw(st.lists(CONTENTS["bytes_contents"], min_size=count, max_size=count))
            if raw:
                request.raw_input_contents.append(
                    b"".join(len(i).to_bytes(4, "little") + i for i in items))
            else:
                tensor.contents.bytes_contents.extend(items)
        elif raw:
            size = count * np.dtype(NP[datatype]).itemsize
            data = draw(st.binary(min_size=size, max_size=size))
            if datatype == "BOOL" and draw(st.booleans()):
                data = bytes(b & 1 for b in data)
            request.raw_input_contents.append(data)
        else:
            field = TYPED[datatype]
            pool = CONTENTS[field]
            if datatype in ("INT8", "UINT8"):
                pool = st.integers(-128, 127) if datatype == "INT8" else st.integers(0, 255)
            getattr(tensor.contents, field).extend(
                draw(st.lists(pool, min_size=count, max_size=count)))  # fmt: skip
    fault = draw(st.sampled_from([None, None, None, "rows", "drop", "twice", "shape"]))
    if fault == "rows" and len(request.inputs) > 1:
        request.inputs[-1].shape[0] = rows + 1
    elif fault == "drop":
        del request.inputs[0]
        if request.raw_input_contents:
            del request.raw_input_contents[0]
    elif fault == "twice":
        request.inputs.append(request.inputs[0])
        if request.raw_input_contents:
            request.raw_input_contents.append(request.raw_input_contents[0])
    elif fault == "shape":
        request.inputs[0].shape.append(1)
    return bytes(request.SerializeToString())


def _valid() -> list[bytes]:
    def message(model: str, *inputs: tuple[str, str, list[int], bytes], **kw: Any) -> bytes:
        request = pb.ModelInferRequest(model_name=model, id="v-1", **kw)
        for name, datatype, shape, data in inputs:
            request.inputs.add(name=name, datatype=datatype, shape=shape)
            request.raw_input_contents.append(data)
        return bytes(request.SerializeToString())

    strings = b"".join(len(s).to_bytes(4, "little") + s for s in (b"a", "é".encode(), b""))
    typed = pb.ModelInferRequest(model_name="lr", model_version="2")
    typed.inputs.add(name="input", datatype="FP32", shape=[2, 30]).contents.fp32_contents.extend(
        ROWS[:2].ravel().tolist())  # fmt: skip
    typed.outputs.add(name="predict_proba")
    return [
        message("lr", ("input", "FP64", [3, 30], ROWS.tobytes())),
        bytes(typed.SerializeToString()),
        message("columns", ("f", "FP64", [2], np.array([0.5, 2.0]).tobytes()),
                ("i", "INT8", [2], b"\x01\xfe"), ("b", "BOOL", [2], b"\x01\x00"),
                ("s", "BYTES", [2], strings[:11])),
        message("echo-string", ("x", "BYTES", [1, 3], strings)),
        message("echo-bool", ("x", "BOOL", [2, 3], b"\x01\x00\x01\x00\x00\x01")),
    ]


VALID = _valid()


def damage(rng: random.Random, data: bytes) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        at = rng.randrange(len(out)) if out else 0
        kind = rng.randrange(4)
        if kind == 0 and out:
            out[at] = rng.randrange(256)
        elif kind == 1:
            out[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif kind == 2:
            del out[at : at + rng.randint(1, 8)]
        else:
            out = out[:at]
    return bytes(out)


@st.composite
def damaged(draw: st.DrawFn) -> bytes:
    return damage(random.Random(draw(st.integers(0, 2**32))), draw(st.sampled_from(VALID)))


# ------------------------------------------------------------- the worker in process
@pytest.fixture(scope="module")
def lr_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    x, y = load_breast_cancer(return_X_y=True)
    lr = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(x, y)
    return save_model(lr, tmp_path_factory.mktemp("lr") / "lr", signature=infer_signature(x, y),
                      methods=("predict", "predict_proba"), input_example=x[:2])  # fmt: skip


@pytest.fixture(scope="module")
def worker(lr_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GrpcServer]:
    root = tmp_path_factory.mktemp("echo")
    lr = load_model(lr_bundle)
    served = [
        ServedModel("lr", "1", lr, aliases=("champion",)),
        ServedModel("lr", "2", lr, batching=True),
        ServedModel("columns", "1", columns_model(root)),
        ServedModel("echo-string", "1", echo_model(root, "string")),
        ServedModel("echo-bool", "1", echo_model(root, "bool"), batching=True),
    ]
    app = create_app(served, options=ServerOptions(max_body_bytes=LIMIT))
    with GrpcServer(app) as server:
        yield server


@pytest.fixture(scope="module")
def channel(worker: GrpcServer) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(worker.target) as ch:
        yield ch


def test_the_messages_the_fuzzers_distort_are_answered(channel: grpc.Channel) -> None:
    infer = channel.unary_unary(f"/{pb.SERVICE_NAME}/ModelInfer")
    for data in VALID:
        response = pb.ModelInferResponse.FromString(infer(data, timeout=60))
        assert response.outputs


@settings(FUZZ, max_examples=1_500)
@given(data=infer_requests() | near_valid_requests())
def test_structured_infer_requests_get_only_documented_codes(
    channel: grpc.Channel, data: bytes
) -> None:
    call_sync(channel, "ModelInfer", data)


@settings(FUZZ, max_examples=1_000)
@given(data=damaged())
def test_valid_requests_with_damaged_bytes_get_only_documented_codes(
    channel: grpc.Channel, data: bytes
) -> None:
    call_sync(channel, "ModelInfer", data)


@settings(FUZZ, max_examples=800)
@given(method=st.sampled_from(METHODS), data=st.binary(max_size=400))
def test_arbitrary_bytes_to_any_method_get_only_documented_codes(
    channel: grpc.Channel, method: str, data: bytes
) -> None:
    call_sync(channel, method, data)


def test_a_seeded_sweep_of_damaged_and_oversized_requests_gets_only_documented_codes(
    worker: GrpcServer,
) -> None:
    """6,000 messages, 32 at a time (seeded: the same every run): valid requests damaged at
    random, some grown past the server's message limit."""
    rng = random.Random(12)
    messages = []
    for i in range(6_000):
        data = damage(rng, VALID[i % len(VALID)])
        if i % 100 == 0:
            data += b"\x3a" + b"\xff" * LIMIT  # past max_receive_message_length
        messages.append(data)

    async def sweep() -> None:
        async with grpc.aio.insecure_channel(worker.target) as ch:
            infer = ch.unary_unary(f"/{pb.SERVICE_NAME}/ModelInfer")
            gate = asyncio.Semaphore(32)

            async def one(data: bytes) -> None:
                async with gate:
                    call = infer(data, timeout=60)
                    try:
                        body = await call
                    except grpc.aio.AioRpcError as exc:
                        check("ModelInfer", exc.code(), exc.details() or "",
                              exc.trailing_metadata(), None)  # fmt: skip
                        return
                    check("ModelInfer", await call.code(), "", (), body)

            await asyncio.gather(*(one(m) for m in messages))

    asyncio.run(sweep())


# ------------------------------------------------------------------- a real process
@pytest.fixture(scope="module")
def process(lr_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    root = tmp_path_factory.mktemp("grpc-process")
    argv = [sys.executable, "-m", "loopline.cli.serve_process", str(lr_bundle), "--name", "lr",
            "--allow-unverified", "--port", "0", "--grpc-port", "0", "--batching",
            "--max-body-bytes", str(LIMIT), "--log-dir", str(root / "logs")]  # fmt: skip
    env = {**os.environ, "LOOPLINE_HOME": str(root / "home")}
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env=env)  # fmt: skip
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "gRPC on " in line, f"the server did not start: {line!r}"
        url = line.split("listening on ")[1].split()[0]
        target = line.rstrip("\n").rsplit("; gRPC on ", 1)[1]

        def ready() -> bool:
            try:
                return httpx.get(f"{url}/v2/health/ready", timeout=5).status_code == 200
            except httpx.TransportError:
                return False

        wait_for(ready, timeout=60, what="the model server to be ready")
        with grpc.insecure_channel(target) as ch:
            live = ch.unary_unary(f"/{pb.SERVICE_NAME}/ServerLive")
            wait_for(lambda: _answers(live), timeout=30, what="the gRPC listener")
            worker = _worker_pid(proc.pid)
            assert worker is not None
            yield ch, proc, worker, _rss(worker)
    finally:
        proc.terminate()
        proc.wait(30)
        if proc.stdout is not None:
            proc.stdout.close()


def _answers(live: Any) -> bool:
    try:
        live(b"", timeout=5)
        return True
    except grpc.RpcError:
        return False


def _worker_pid(supervisor: int) -> int | None:
    children = Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split()
    return int(children[0]) if children else None


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"process {pid} reports no VmRSS")


@settings(FUZZ, max_examples=1_000)
@given(
    call=st.one_of(
        st.tuples(st.just("ModelInfer"), infer_requests() | near_valid_requests() | damaged()),
        st.tuples(st.sampled_from(METHODS), st.binary(max_size=200)),
    )
)
def test_a_real_server_answers_only_documented_codes_and_keeps_its_worker(
    process: Any, call: tuple[str, bytes]
) -> None:
    channel, proc, worker, _ = process
    call_sync(channel, *call)
    assert proc.poll() is None and _worker_pid(proc.pid) == worker


def test_the_real_server_survived_with_bounded_memory_and_still_answers(process: Any) -> None:
    """Runs after the fuzz tests of this module (pytest keeps the file's order)."""
    channel, proc, worker, rss_at_start = process
    assert proc.poll() is None and _worker_pid(proc.pid) == worker
    grown = _rss(worker) - rss_at_start
    assert grown < RSS_GROWTH_LIMIT, f"the worker's RSS grew by {grown} bytes"
    infer = channel.unary_unary(f"/{pb.SERVICE_NAME}/ModelInfer")
    assert pb.ModelInferResponse.FromString(infer(VALID[0], timeout=60)).outputs
