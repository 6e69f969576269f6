"""KServe's inference.GRPCInferenceService on a real worker (uvicorn + the gRPC listener on
127.0.0.1, in a thread): tritonclient.grpc with its defaults (raw tensors) and with typed
contents, every datatype, each RPC, and each error's status code and message."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np
import pytest
import tritonclient.grpc as tg
from tests.serving.echo_model import DTYPES, EXAMPLES, columns_model, echo_model
from tests.serving.faulty_model import BUG, SLOW, faulty_model
from tests.serving.grpc_harness import GrpcServer
from tritonclient.utils import InferenceServerException

from loopline.serving import (
    BatchingOptions,
    HttpLimits,
    LogOptions,
    ServedModel,
    ServerOptions,
    create_app,
    find_request,
)
from loopline.serving import grpc_predict_v2_pb2 as pb
from loopline.testing.artifacts import wait_for

LIMIT = 200_000
INTS = ["INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64"]
SENT_AS = {
    "float64": ["FP64", "FP32", "FP16", "BF16", *INTS],
    "float32": ["FP32", "FP64", "FP16", "BF16", *INTS],
    "int64": INTS,
    "bool": ["BOOL"],
    "string": ["BYTES"],
}
SERVED_AS = {"float64": "FP64", "float32": "FP32", "int64": "INT64", "bool": "BOOL",
             "string": "BYTES"}  # fmt: skip
CASES = [(dtype, wire) for dtype in DTYPES for wire in SENT_AS[dtype]]
VALUES = np.array([[1, 0, 3], [127, 2, 0]])
TYPED_FIELD = {"FP64": "fp64_contents", "FP32": "fp32_contents", "INT64": "int64_contents",
               "INT8": "int_contents", "INT16": "int_contents", "INT32": "int_contents",
               "UINT8": "uint_contents", "UINT16": "uint_contents", "UINT32": "uint_contents",
               "UINT64": "uint64_contents", "BOOL": "bool_contents",
               "BYTES": "bytes_contents"}  # fmt: skip


def sent(wire: str) -> np.ndarray[Any, Any]:
    """The values sent as ``wire`` (what tritonclient's set_data_from_numpy takes)."""
    if wire == "BOOL":
        return VALUES.astype(bool)
    if wire == "BYTES":
        return np.array([["a", "bé", ""], ["名前", "x" * 300, "\x00"]], dtype=object)
    if wire == "BF16":
        import ml_dtypes

        return VALUES.astype(ml_dtypes.bfloat16)
    return VALUES.astype(tg.triton_to_np_dtype(wire))


@pytest.fixture(scope="module")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("grpc-logs")


@pytest.fixture(scope="module")
def server(
    models: Any, log_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GrpcServer]:
    root = tmp_path_factory.mktemp("grpc-models")
    served = [
        ServedModel("lr", "1", models.lr, aliases=("champion",)),
        ServedModel("lr", "2", models.lr_v2, aliases=("challenger",), batching=True),
        ServedModel("tab", "3", models.tab),
        ServedModel("columns", "1", columns_model(root)),
        ServedModel("faulty", "1", (faulty := faulty_model(root))),
        ServedModel("faulty", "2", faulty, batching=True),
        *(ServedModel(f"echo-{d}", "1", echo_model(root, d), batching=True) for d in DTYPES),
    ]
    options = ServerOptions(
        max_body_bytes=LIMIT,
        batching=BatchingOptions(max_queue_rows=64),
        log=LogOptions(log_dir, flush_rows=1, flush_seconds=0.05),
    )
    with GrpcServer(create_app(served, options=options)) as s:
        yield s


@pytest.fixture(scope="module")
def triton(server: GrpcServer) -> Iterator[tg.InferenceServerClient]:
    client = tg.InferenceServerClient(server.target)
    yield client
    client.close()


@pytest.fixture(scope="module")
def channel(server: GrpcServer) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(server.target) as ch:
        yield ch


def call(channel: grpc.Channel, method: str, request: Any, response: Any = None) -> Any:
    """One RPC of the service with our message classes (or raw bytes)."""
    stub = channel.unary_unary(
        f"/{pb.SERVICE_NAME}/{method}",
        request_serializer=None if isinstance(request, bytes) else type(request).SerializeToString,
        response_deserializer=None if response is None else response.FromString,
    )
    return stub(request, timeout=30)


def status(error: pytest.ExceptionInfo[Any]) -> tuple[grpc.StatusCode, str]:
    exc = error.value
    if isinstance(exc, InferenceServerException):
        code = exc.status().removeprefix("StatusCode.")
        return getattr(grpc.StatusCode, code), exc.message()
    return exc.code(), exc.details()


# ---- health and metadata -----------------------------------------------------------------------


def test_server_live_ready_and_metadata(triton: tg.InferenceServerClient) -> None:
    assert triton.is_server_live()
    assert triton.is_server_ready()
    meta = triton.get_server_metadata()
    assert meta.name == "loopline"
    assert list(meta.extensions) == ["model_repository", "model_repository_versions"]


def test_model_ready_by_name_version_and_alias(triton: tg.InferenceServerClient) -> None:
    assert triton.is_model_ready("lr")
    assert triton.is_model_ready("lr", "2")
    assert triton.is_model_ready("lr", "champion")


def test_model_metadata_is_the_http_document(
    triton: tg.InferenceServerClient, server: GrpcServer
) -> None:
    meta = triton.get_model_metadata("lr", "challenger", as_json=True)
    doc = httpx.get(f"{server.url}/v2/models/lr/versions/challenger").json()
    assert meta["name"] == doc["name"] == "lr"
    assert meta["versions"] == doc["versions"] == ["1", "2"]
    assert meta["platform"] == doc["platform"]
    for side in ("inputs", "outputs"):
        assert [(t["name"], t["datatype"], [int(d) for d in t["shape"]]) for t in meta[side]] == [
            (t["name"], t["datatype"], t["shape"]) for t in doc[side]
        ]


@pytest.mark.parametrize(
    ("ask", "match"),
    [
        (lambda c: c.is_model_ready("nope"), "Unknown model 'nope'; this server serves"),
        (lambda c: c.get_model_metadata("lr", "7"), "Model 'lr' has no version or alias '7'"),
        (lambda c: c.get_model_metadata(""), "Field 'name' must name a model"),
    ],
)
def test_metadata_of_an_unknown_model_or_version_is_not_found(
    triton: tg.InferenceServerClient, ask: Any, match: str
) -> None:
    with pytest.raises(InferenceServerException) as error:
        ask(triton)
    code, message = status(error)
    expected = grpc.StatusCode.INVALID_ARGUMENT if "Field" in match else grpc.StatusCode.NOT_FOUND
    assert code == expected
    assert match in message


# ---- inference -----------------------------------------------------------------------------------


def test_tritonclient_defaults_raw_in_raw_out(
    triton: tg.InferenceServerClient, models: Any
) -> None:
    x = models.x[:3]
    data = tg.InferInput("input", list(x.shape), "FP64").set_data_from_numpy(x)
    result = triton.infer("lr", [data], model_version="champion", request_id="req-1")
    expected = models.lr.predict(x)
    assert result.as_numpy("predict").tolist() == expected["predict"].tolist()
    np.testing.assert_array_equal(result.as_numpy("predict_proba"), expected["predict_proba"])
    response = result.get_response()
    assert (response.model_name, response.model_version, response.id) == ("lr", "1", "req-1")
    assert len(response.raw_output_contents) == 2


def test_typed_contents_in_typed_out(triton: tg.InferenceServerClient, models: Any) -> None:
    x = models.x[:2]
    data = tg.InferInput("input", list(x.shape), "FP64")
    data._get_tensor().contents.fp64_contents.extend(x.ravel().tolist())
    response = triton.infer("lr", [data]).get_response()
    assert not response.raw_output_contents
    predict, proba = response.outputs
    assert list(predict.contents.int64_contents) == models.lr.predict(x)["predict"].tolist()
    assert list(proba.shape) == [2, 2]
    expected = models.lr.predict(x)["predict_proba"].ravel().tolist()
    assert list(proba.contents.fp64_contents) == expected
    assert len(response.id) == 32  # generated when the request has none


@pytest.mark.parametrize(("dtype", "wire"), CASES)
def test_every_datatype_round_trips_raw(
    triton: tg.InferenceServerClient, dtype: str, wire: str
) -> None:
    values = sent(wire)
    data = tg.InferInput("x", list(values.shape), wire).set_data_from_numpy(values)
    result = triton.infer(f"echo-{dtype}", [data])
    out = result.as_numpy("predict")
    assert result.get_output("predict").datatype == SERVED_AS[dtype]
    if dtype == "string":
        assert [[v.decode() for v in row] for row in out] == values.tolist()
    else:
        assert out.tolist() == values.astype(EXAMPLES[dtype].dtype).tolist()


@pytest.mark.parametrize(("dtype", "wire"), [c for c in CASES if c[1] not in ("FP16", "BF16")])
def test_every_datatype_round_trips_typed(
    triton: tg.InferenceServerClient, dtype: str, wire: str
) -> None:
    values = sent(wire)
    data = tg.InferInput("x", list(values.shape), wire)
    flat = values.ravel().tolist()
    if wire == "BYTES":
        flat = [v.encode() for v in flat]
    getattr(data._get_tensor().contents, TYPED_FIELD[wire]).extend(flat)
    (output,) = triton.infer(f"echo-{dtype}", [data]).get_response().outputs
    assert (output.datatype, list(output.shape)) == (SERVED_AS[dtype], [2, 3])
    got = list(getattr(output.contents, TYPED_FIELD[SERVED_AS[dtype]]))
    expected = values.astype(EXAMPLES[dtype].dtype).ravel().tolist()
    assert got == ([v.encode() for v in expected] if dtype == "string" else expected)


def test_columns_of_every_type_in_one_request(triton: tg.InferenceServerClient) -> None:
    columns = {
        "f": ("FP64", np.array([1.5, -2.0])),
        "i": ("INT32", np.array([7, -8], dtype=np.int32)),
        "b": ("BOOL", np.array([True, False])),
        "s": ("BYTES", np.array(["x", "ÿ"], dtype=object)),
    }
    inputs = [tg.InferInput(n, [2], t).set_data_from_numpy(v) for n, (t, v) in columns.items()]
    outputs = [tg.InferRequestedOutput("s"), tg.InferRequestedOutput("i")]
    result = triton.infer("columns", inputs, outputs=outputs)
    assert [o.name for o in result.get_response().outputs] == ["s", "i"]
    assert result.as_numpy("s").tolist() == [b"x", "ÿ".encode()]
    assert result.as_numpy("i").tolist() == [7, -8]


def test_request_parameters_are_passed_back(triton: tg.InferenceServerClient, models: Any) -> None:
    data = tg.InferInput("input", [1, 30], "FP64").set_data_from_numpy(models.x[:1])
    response = triton.infer(
        "lr", [data], parameters={"tag": "a", "n": 3, "on": True, "w": 0.5}
    ).get_response()
    assert response.parameters["tag"].string_param == "a"
    assert response.parameters["n"].int64_param == 3
    assert response.parameters["on"].bool_param is True
    assert response.parameters["w"].double_param == 0.5


def test_a_grpc_request_is_logged_and_counted_under_protocol_grpc(
    triton: tg.InferenceServerClient, server: GrpcServer, models: Any, log_dir: Path
) -> None:
    data = tg.InferInput("input", [2, 30], "FP64").set_data_from_numpy(models.x[:2])
    triton.infer("lr", [data], model_version="2", request_id="logged-over-grpc")
    with pytest.raises(InferenceServerException):
        triton.infer("lr", [tg.InferInput("input", [1, 29], "FP64").set_data_from_numpy(
            models.x[:1, :29])])  # fmt: skip

    def logged() -> bool:
        try:
            return find_request(log_dir, "logged-over-grpc").rows == 2
        except LookupError:
            return False

    wait_for(logged, timeout=30, what="the gRPC request in the prediction log")
    metrics = httpx.get(f"{server.url}/metrics").text
    assert 'loopline_requests_total{model="lr",version="2",protocol="grpc",code="200"}' in metrics
    assert 'loopline_requests_total{model="lr",version="1",protocol="grpc",code="400"}' in metrics


# ---- errors ------------------------------------------------------------------------------------


def _infer_error(triton: tg.InferenceServerClient, model: str, inputs: list[Any], **kw: Any) -> Any:
    with pytest.raises(InferenceServerException) as error:
        triton.infer(model, inputs, **kw)
    return status(error)


def test_a_bad_input_is_invalid_argument_naming_the_field(
    triton: tg.InferenceServerClient, models: Any
) -> None:
    short = tg.InferInput("input", [1, 29], "FP64").set_data_from_numpy(models.x[:1, :29])
    assert _infer_error(triton, "lr", [short]) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "Input 'input' has shape [1, 29] but the model expects [-1, 30] (-1 = any number of rows).",
    )
    named = tg.InferInput("nope", [1], "FP64").set_data_from_numpy(np.zeros(1))
    code, message = _infer_error(triton, "lr", [named])
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "Unknown input 'nope' (inputs[0].name); the model takes ['input']" in message
    data = tg.InferInput("input", [1, 30], "FP64").set_data_from_numpy(models.x[:1])
    code, message = _infer_error(triton, "lr", [data], request_id="a\nb")
    assert code == grpc.StatusCode.INVALID_ARGUMENT and message.startswith("Field 'id'")
    classes = [tg.InferRequestedOutput("predict", class_count=2)]
    code, message = _infer_error(triton, "lr", [data], outputs=classes)
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "'classification'" in message


def test_a_value_the_model_rejects_is_invalid_argument(triton: tg.InferenceServerClient) -> None:
    data = tg.InferInput("input", [1, 30], "FP64").set_data_from_numpy(np.full((1, 30), np.nan))
    code, message = _infer_error(triton, "lr", [data])
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert message.startswith("The model rejected the input:")


def test_an_unknown_model_or_version_is_not_found(
    triton: tg.InferenceServerClient, models: Any
) -> None:
    data = tg.InferInput("input", [1, 30], "FP64").set_data_from_numpy(models.x[:1])
    assert _infer_error(triton, "nope", [data])[0] == grpc.StatusCode.NOT_FOUND
    code, message = _infer_error(triton, "lr", [data], model_version="9")
    assert code == grpc.StatusCode.NOT_FOUND
    assert message == (
        "Model 'lr' has no version or alias '9'; served: ['1', 'champion', '2', 'challenger']."
    )


def test_an_overloaded_model_is_unavailable_with_retry_after(
    channel: grpc.Channel, models: Any
) -> None:
    request = pb.ModelInferRequest(model_name="lr", model_version="2")
    x = np.tile(models.x[:1], (65, 1))  # more rows than the queue holds (64)
    request.inputs.add(name="input", datatype="FP64", shape=list(x.shape))
    request.raw_input_contents.append(x.tobytes())
    with pytest.raises(grpc.RpcError) as error:
        call(channel, "ModelInfer", request, pb.ModelInferResponse)
    assert status(error)[0] == grpc.StatusCode.UNAVAILABLE
    assert "The batch queue holds 0 rows, its limit is 64" in status(error)[1]
    assert ("retry-after", "1") in error.value.trailing_metadata()


def test_a_model_that_is_not_ready_is_unavailable(
    triton: tg.InferenceServerClient, server: GrpcServer, models: Any
) -> None:
    entry = server.app.table.get("lr", "1")
    data = tg.InferInput("input", [1, 30], "FP64").set_data_from_numpy(models.x[:1])
    entry.ready = False  # as a model whose warm-up failed
    try:
        assert not triton.is_model_ready("lr", "1")
        code, message = _infer_error(triton, "lr", [data], model_version="1")
    finally:
        entry.ready = True
    assert (code, message) == (grpc.StatusCode.UNAVAILABLE, "Model 'lr' version 1 is not ready.")


def test_a_message_over_the_body_limit_is_resource_exhausted(
    triton: tg.InferenceServerClient,
) -> None:
    big = np.zeros((LIMIT // 8 // 3 + 1, 3))
    data = tg.InferInput("x", list(big.shape), "FP64").set_data_from_numpy(big)
    code, message = _infer_error(triton, "echo-float64", [data])
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert str(LIMIT) in message


def test_a_bug_in_a_model_is_internal_with_an_error_reference(
    triton: tg.InferenceServerClient, server: GrpcServer
) -> None:
    data = tg.InferInput("x", [1, 1], "FP64").set_data_from_numpy(np.array([[BUG]]))
    code, message = _infer_error(triton, "faulty", [data])
    assert code == grpc.StatusCode.INTERNAL
    assert message.startswith("Internal error while predicting (ref ")
    assert "Traceback" not in message and "unlucky" not in message
    metrics = httpx.get(f"{server.url}/metrics").text
    key = 'loopline_requests_total{model="faulty",version="1",protocol="grpc",code="500"}'
    assert key in metrics


def test_a_call_past_its_deadline_is_cancelled_on_the_worker_and_counted_499(
    channel: grpc.Channel, server: GrpcServer
) -> None:
    request = pb.ModelInferRequest(model_name="faulty", model_version="2")
    request.inputs.add(name="x", datatype="FP64", shape=[1, 1])
    request.raw_input_contents.append(np.array([[SLOW]]).tobytes())  # a second in the model
    infer = channel.unary_unary(f"/{pb.SERVICE_NAME}/ModelInfer")
    with pytest.raises(grpc.RpcError) as error:
        infer(request.SerializeToString(), timeout=0.2)
    assert error.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    key = 'loopline_requests_total{model="faulty",version="2",protocol="grpc",code="499"} 1'
    wait_for(lambda: key in httpx.get(f"{server.url}/metrics").text, timeout=30,
             what="the cancelled call in the metrics")  # fmt: skip
    entry = server.app.table.get("faulty", "2")
    wait_for(lambda: entry.in_flight == 0, timeout=30, what="the call to leave the worker")


@pytest.mark.parametrize("method", [m.name for m in pb.SERVICE.methods])
def test_bytes_that_are_not_the_message_are_invalid_argument(
    channel: grpc.Channel, method: str
) -> None:
    with pytest.raises(grpc.RpcError) as error:
        call(channel, method, b"\xff\xff\xff")
    code, message = status(error)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert message.startswith(f"The request is not a valid inference.{method}Request message")


def test_repository_changes_are_off_without_a_token(channel: grpc.Channel) -> None:
    for method, message in (
        ("RepositoryModelLoad", pb.RepositoryModelLoadRequest(model_name="lr")),
        ("RepositoryModelUnload", pb.RepositoryModelUnloadRequest(model_name="lr")),
    ):
        with pytest.raises(grpc.RpcError) as error:
            call(channel, method, message)
        code, details = status(error)
        assert code == grpc.StatusCode.PERMISSION_DENIED
        assert "is off on this server: start it with --repository-token-file" in details


# ---- connection limits ---------------------------------------------------------------------------


def _live(channel: grpc.Channel) -> bool:
    return bool(call(channel, "ServerLive", pb.ServerLiveRequest(), pb.ServerLiveResponse).live)


def test_a_connection_past_max_connections_is_closed(models: Any) -> None:
    options = ServerOptions(http=HttpLimits(max_connections=2, idle_timeout=300))
    app = create_app([ServedModel("lr", "1", models.lr)], options=options)
    local = [("grpc.use_local_subchannel_pool", 1)]  # a connection per channel
    with GrpcServer(app) as server:
        channels = [grpc.insecure_channel(server.target, options=local) for _ in range(3)]
        try:
            assert _live(channels[0]) and _live(channels[1])
            with pytest.raises(grpc.RpcError) as error:
                _live(channels[2])
            assert error.value.code() == grpc.StatusCode.UNAVAILABLE
            assert _live(channels[0])  # the open ones keep working
        finally:
            for ch in channels:
                ch.close()


def test_an_idle_connection_is_closed_and_the_client_reconnects(models: Any) -> None:
    options = ServerOptions(http=HttpLimits(idle_timeout=0.5))
    app = create_app([ServedModel("lr", "1", models.lr)], options=options)
    with GrpcServer(app) as server, grpc.insecure_channel(server.target) as channel:
        states: list[grpc.ChannelConnectivity] = []
        channel.subscribe(states.append)
        assert _live(channel)
        wait_for(
            lambda: grpc.ChannelConnectivity.READY in states
            and states[-1] == grpc.ChannelConnectivity.IDLE,
            timeout=30,
            what="the server to close the idle connection",
        )
        assert _live(channel)  # on a new connection
