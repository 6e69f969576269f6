"""The binary tensor data extension on a real server (uvicorn on 127.0.0.1): every datatype
through tritonclient.http, mixed JSON/binary tensors, binary outputs on request, raw binary
requests, compressed bodies, and every malformed body answered 4xx with a message."""

from __future__ import annotations

import gzip
import struct
import zlib
from collections.abc import Iterator
from typing import Any

import httpx
import ml_dtypes
import numpy as np
import orjson
import pytest
import tritonclient.http as th
from tests.serving.echo_model import DTYPES, columns_model, echo_model
from tritonclient.utils import InferenceServerException

from loopline.serving import ServedModel, ServerOptions

LIMIT = 200_000
SERVED_AS = {
    "float64": "FP64",
    "float32": "FP32",
    "int64": "INT64",
    "bool": "BOOL",
    "string": "BYTES",
}
INTS = ["INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64"]
SENT_AS = {
    "float64": ["FP64", "FP32", "FP16", "BF16", *INTS],
    "float32": ["FP32", "FP64", "FP16", "BF16", *INTS],
    "int64": INTS,
    "bool": ["BOOL"],
    "string": ["BYTES"],
}
VALUES = np.array([[1, 0, 3], [127, 2, 0]])
NUMPY = {
    "FP64": np.float64, "FP32": np.float32, "FP16": np.float16, "BF16": ml_dtypes.bfloat16,
    "INT8": np.int8, "INT16": np.int16, "INT32": np.int32, "INT64": np.int64,
    "UINT8": np.uint8, "UINT16": np.uint16, "UINT32": np.uint32, "UINT64": np.uint64,
}  # fmt: skip
CASES = [(dtype, wire) for dtype in DTYPES for wire in SENT_AS[dtype]]


def sent(wire: str) -> np.ndarray[Any, Any]:
    if wire == "BOOL":
        return VALUES.astype(bool)
    if wire == "BYTES":
        return np.array([["a", "bé", ""], ["名前", "x" * 300, "\x00"]], dtype=object)
    return VALUES.astype(NUMPY[wire])


@pytest.fixture(scope="module")
def server(
    models: Any, serve_models: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    root = tmp_path_factory.mktemp("echo")
    served = [
        ServedModel("lr", "1", models.lr),
        ServedModel("lr", "2", models.lr_v2, batching=True),
        ServedModel("columns", "1", columns_model(root)),
        *(ServedModel(f"echo-{d}", "1", echo_model(root, d)) for d in DTYPES),
    ]
    with serve_models(served, ServerOptions(max_body_bytes=LIMIT)) as s:
        yield s


@pytest.fixture(scope="module")
def triton(server: Any) -> Iterator[th.InferenceServerClient]:
    client = th.InferenceServerClient(f"127.0.0.1:{server.port}")
    yield client
    client.close()


@pytest.fixture()
def http(server: Any) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as c:
        yield c


def binary_body(
    header: dict[str, Any], *blocks: bytes, length: int | None = None
) -> tuple[bytes, dict[str, str]]:
    head = orjson.dumps(header)
    n = len(head) if length is None else length
    return head + b"".join(blocks), {"Inference-Header-Content-Length": str(n)}


def split_response(r: httpx.Response) -> tuple[dict[str, Any], bytes]:
    n = int(r.headers["inference-header-content-length"])
    return orjson.loads(r.content[:n]), r.content[n:]


def test_the_server_metadata_declares_the_extension(triton: th.InferenceServerClient) -> None:
    assert "binary_tensor_data" in triton.get_server_metadata()["extensions"]


@pytest.mark.parametrize("binary_out", [True, False], ids=["binary-out", "json-out"])
@pytest.mark.parametrize(("dtype", "wire"), CASES, ids=[f"{d}<-{w}" for d, w in CASES])
def test_every_datatype_round_trips_through_tritonclient(
    triton: th.InferenceServerClient, dtype: str, wire: str, binary_out: bool
) -> None:
    values = sent(wire)
    tensor = th.InferInput("x", list(values.shape), wire)
    tensor.set_data_from_numpy(values, binary_data=True)
    out = th.InferRequestedOutput("predict", binary_data=binary_out)
    result = triton.infer(f"echo-{dtype}", [tensor], outputs=[out])
    got = result.as_numpy("predict")
    assert result.get_output("predict")["datatype"] == SERVED_AS[dtype]
    if dtype == "string":
        expected = values.tolist()
        if binary_out:  # tritonclient hands binary BYTES back as bytes
            expected = [[v.encode() for v in row] for row in expected]
        assert got.tolist() == expected
    else:
        np.testing.assert_array_equal(got, values.astype(got.dtype))
        assert got.dtype == (np.bool_ if dtype == "bool" else np.dtype(dtype))


def test_mixed_json_and_binary_inputs_and_outputs_in_one_request(http: httpx.Client) -> None:
    f = np.array([1.5, -2.0, 3.25])
    b = np.array([True, False, True])
    header = {
        "id": "mixed-1",
        "inputs": [
            {"name": "f", "shape": [3], "datatype": "FP64", "parameters": {"binary_data_size": 24}},
            {"name": "i", "shape": [3], "datatype": "INT32", "data": [4, -5, 6]},
            {"name": "b", "shape": [3], "datatype": "BOOL", "parameters": {"binary_data_size": 3}},
            {"name": "s", "shape": [3], "datatype": "BYTES", "data": ["x", "yé", ""]},
        ],
        "outputs": [
            {"name": "f"},
            {"name": "s", "parameters": {"binary_data": True}},
            {"name": "b", "parameters": {"binary_data": False}},
            {"name": "i", "parameters": {"binary_data": True}},
        ],
    }
    body, headers = binary_body(header, f.tobytes(), b.tobytes())
    r = http.post("/v2/models/columns/infer", content=body, headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/octet-stream"
    assert r.headers["x-request-id"] == "mixed-1"
    head, tail = split_response(r)
    assert head["id"] == "mixed-1" and head["model_name"] == "columns"
    out = {o["name"]: o for o in head["outputs"]}
    assert [o["name"] for o in head["outputs"]] == ["f", "s", "b", "i"]
    assert out["f"]["data"] == f.tolist() and out["b"]["data"] == b.tolist()
    strings = struct.pack("<I", 1) + b"x" + struct.pack("<I", 3) + "yé".encode() + b"\0" * 4
    assert out["s"]["parameters"] == {"binary_data_size": len(strings)}
    assert out["i"] == {
        "name": "i", "datatype": "INT64", "shape": [3], "parameters": {"binary_data_size": 24},
    }  # fmt: skip
    assert tail == strings + np.array([4, -5, 6], dtype="<i8").tobytes()


def test_binary_data_output_applies_to_every_output_unless_one_says_otherwise(
    http: httpx.Client, models: Any
) -> None:
    x = models.x[:2]
    header = {
        "inputs": [{"name": "input", "shape": [2, 30], "datatype": "FP64", "data": x.tolist()}],
        "outputs": [
            {"name": "predict"},
            {"name": "predict_proba", "parameters": {"binary_data": False}},
        ],
        "parameters": {"binary_data_output": True},
    }
    r = http.post("/v2/models/lr/infer", json=header)  # all JSON in, binary out
    assert r.status_code == 200, r.text
    head, tail = split_response(r)
    expected = models.lr.predict(x)
    assert tail == expected["predict"].astype("<i8").tobytes()
    proba = head["outputs"][1]
    assert "parameters" not in proba
    np.testing.assert_allclose(proba["data"], expected["predict_proba"].ravel())


def test_without_binary_outputs_the_answer_is_plain_json(http: httpx.Client, models: Any) -> None:
    x = models.x[:1]
    header = {"inputs": [{"name": "input", "shape": [1, 30], "datatype": "FP64",
                          "parameters": {"binary_data_size": 240}}]}  # fmt: skip
    body, headers = binary_body(header, x.tobytes())
    r = http.post("/v2/models/lr/infer", content=body, headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    assert "inference-header-content-length" not in r.headers
    assert r.json()["outputs"][0]["data"] == models.lr.predict(x)["predict"].tolist()


def test_a_batching_model_reads_binary_inputs_that_start_at_any_offset(
    triton: th.InferenceServerClient, models: Any
) -> None:
    for n in (1, 3, 7):  # the JSON part's length moves the tensor's offset in the body
        x = models.x[:n]
        tensor = th.InferInput("input", [n, 30], "FP64").set_data_from_numpy(x)
        result = triton.infer("lr", [tensor], model_version="2", request_id="r" * n)
        assert result.get_response()["id"] == "r" * n
        np.testing.assert_array_equal(
            result.as_numpy("predict"), models.lr_v2.predict(x)["predict"]
        )


def test_a_raw_binary_request_is_the_one_inputs_rows_and_answers_binary(
    http: httpx.Client, models: Any
) -> None:
    x = models.x[:3]
    r = http.post(
        "/v2/models/lr/infer",
        content=x.tobytes(),
        headers={
            "Inference-Header-Content-Length": "0",
            "Content-Type": "application/octet-stream",
        },
    )
    assert r.status_code == 200, r.text
    head, tail = split_response(r)
    sizes = [o["parameters"]["binary_data_size"] for o in head["outputs"]]
    assert sizes == [24, 48]
    assert tail[:24] == models.lr.predict(x)["predict"].astype("<i8").tobytes()


def test_a_raw_binary_request_of_strings_counts_its_elements(http: httpx.Client) -> None:
    values = ["a", "b", "c", "d", "e", "f"]
    data = b"".join(struct.pack("<I", len(v)) + v.encode() for v in values)
    r = http.post(
        "/v2/models/echo-string/infer",
        content=data,
        headers={"Inference-Header-Content-Length": "0"},
    )
    assert r.status_code == 200, r.text
    head, tail = split_response(r)
    assert head["outputs"][0]["shape"] == [2, 3] and tail == data


def test_tritonclient_compressed_requests_are_read(
    triton: th.InferenceServerClient, models: Any
) -> None:
    x = models.x[:2]
    for algorithm in ("gzip", "deflate"):
        tensor = th.InferInput("input", [2, 30], "FP64").set_data_from_numpy(x)
        result = triton.infer("lr", [tensor], request_compression_algorithm=algorithm)
        np.testing.assert_array_equal(result.as_numpy("predict"), models.lr.predict(x)["predict"])


def error(r: httpx.Response, status: int) -> str:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    message = r.json()["error"]
    assert isinstance(message, str)
    return message


LR_HEADER = {
    "inputs": [{"name": "input", "shape": [1, 30], "datatype": "FP64",
                "parameters": {"binary_data_size": 240}}],
}  # fmt: skip
ROW = np.zeros(30).tobytes()


def post(
    http: httpx.Client, body: bytes, headers: dict[str, str], path: str = "/v2/models/lr/infer"
) -> httpx.Response:
    return http.post(path, content=body, headers=headers)


def test_a_header_length_past_the_body_is_a_400_naming_both_lengths(http: httpx.Client) -> None:
    body, _ = binary_body(LR_HEADER, ROW)
    r = post(http, body, {"Inference-Header-Content-Length": str(len(body) + 1)})
    assert f"({len(body) + 1}) is larger than the request body ({len(body)} bytes)" in error(r, 400)


def test_a_header_that_is_not_a_length_is_a_400(http: httpx.Client) -> None:
    body, _ = binary_body(LR_HEADER, ROW)
    r = post(http, body, {"Inference-Header-Content-Length": "ten"})
    assert "must be the length in bytes of the body's JSON part" in error(r, 400)


def test_a_binary_size_that_does_not_match_the_shape_is_a_400(http: httpx.Client) -> None:
    header = {"inputs": [{**LR_HEADER["inputs"][0], "parameters": {"binary_data_size": 232}}]}
    body, headers = binary_body(header, ROW[:232])
    message = error(post(http, body, headers), 400)
    assert "binary_data_size 232 but shape [1, 30] of FP64 takes 240 bytes" in message


def test_an_input_with_neither_data_nor_binary_data_size_is_a_400(http: httpx.Client) -> None:
    header = {"inputs": [{"name": "input", "shape": [1, 30], "datatype": "FP64"}]}
    body, headers = binary_body(header, ROW)
    message = error(post(http, body, headers), 400)
    assert "'input' needs 'data'" in message and "binary_data_size" in message


def test_binary_data_size_without_the_header_is_a_400(http: httpx.Client) -> None:
    message = error(http.post("/v2/models/lr/infer", json=LR_HEADER), 400)
    assert "has parameters.binary_data_size but the request has no binary data" in message


def test_data_and_binary_data_size_together_are_a_400(http: httpx.Client) -> None:
    header = {"inputs": [{**LR_HEADER["inputs"][0], "data": [0.0] * 30}]}
    body, headers = binary_body(header, ROW)
    assert "both 'data' and parameters.binary_data_size" in error(post(http, body, headers), 400)


def test_trailing_bytes_after_the_last_binary_input_are_a_400(http: httpx.Client) -> None:
    body, headers = binary_body(LR_HEADER, ROW, b"\x00\x01")
    assert "2 bytes of binary data after the last binary input" in error(
        post(http, body, headers), 400
    )


def test_a_binary_input_longer_than_the_bytes_left_is_a_400(http: httpx.Client) -> None:
    body, headers = binary_body(LR_HEADER, ROW[:100])
    assert "binary_data_size 240 but only 100 bytes" in error(post(http, body, headers), 400)


def test_a_bytes_element_that_overruns_its_tensor_is_a_400(http: httpx.Client) -> None:
    data = struct.pack("<I", 1) + b"a" + struct.pack("<I", 2) + b"bc" + struct.pack("<I", 50) + b"d"
    header = {"inputs": [{"name": "x", "shape": [1, 3], "datatype": "BYTES",
                          "parameters": {"binary_data_size": len(data)}}]}  # fmt: skip
    body, headers = binary_body(header, data)
    message = error(post(http, body, headers, "/v2/models/echo-string/infer"), 400)
    assert "BYTES element 2 claims 50 bytes but only 1 are left" in message


def test_binary_tensors_labelled_as_json_are_a_415(http: httpx.Client) -> None:
    body, headers = binary_body(LR_HEADER, ROW)
    r = post(http, body, {**headers, "Content-Type": "application/json"})
    assert "Content-Type is 'application/json'" in error(r, 415)


def test_an_unknown_content_encoding_is_a_415_naming_the_ones_read(http: httpx.Client) -> None:
    r = post(http, b"{}", {"Content-Encoding": "br"})
    assert "'br' is not supported; send the body as gzip, deflate or identity" in error(r, 415)
    assert r.headers["accept-encoding"] == "gzip, deflate"


def test_a_body_that_is_not_its_content_encoding_is_a_400(http: httpx.Client) -> None:
    r = post(http, b"{}", {"Content-Encoding": "gzip"})
    assert "not valid gzip data" in error(r, 400)
    r = post(http, gzip.compress(b"{}")[:-4], {"Content-Encoding": "gzip"})
    assert "not one complete gzip stream" in error(r, 400)


def test_a_compressed_body_that_expands_past_the_limit_is_a_413(http: httpx.Client) -> None:
    bomb = zlib.compress(b" " * (LIMIT + 1))
    assert len(bomb) < 1000
    r = post(http, bomb, {"Content-Encoding": "deflate"})
    assert "larger than the server's limit of 200000 bytes" in error(r, 413)


def test_a_binary_body_past_the_limit_is_a_413(http: httpx.Client) -> None:
    rows = LIMIT // 240 + 1
    header = {"inputs": [{"name": "input", "shape": [rows, 30], "datatype": "FP64",
                          "parameters": {"binary_data_size": rows * 240}}]}  # fmt: skip
    body, headers = binary_body(header, np.zeros((rows, 30)).tobytes())
    assert "larger than the server's limit" in error(post(http, body, headers), 413)


@pytest.mark.parametrize("path", ["/v1/models/lr:predict", "/v1/models/lr/versions/2:predict"])
def test_the_header_on_a_non_v2_endpoint_is_a_400(http: httpx.Client, path: str) -> None:
    body = orjson.dumps({"instances": [[0.0] * 30]})
    r = post(http, body, {"Inference-Header-Content-Length": str(len(body))}, path)
    assert "read by V2 inference only" in error(r, 400)


def test_a_bool_byte_that_is_not_0_or_1_is_a_400(http: httpx.Client) -> None:
    header = {"inputs": [{"name": "x", "shape": [1, 3], "datatype": "BOOL",
                          "parameters": {"binary_data_size": 3}}]}  # fmt: skip
    body, headers = binary_body(header, b"\x01\x00\x07")
    message = error(post(http, body, headers, "/v2/models/echo-bool/infer"), 400)
    assert "holds a byte other than 0 or 1" in message


def test_a_uint64_past_int64_is_a_400_for_an_int64_model(http: httpx.Client) -> None:
    header = {"inputs": [{"name": "x", "shape": [1, 3], "datatype": "UINT64",
                          "parameters": {"binary_data_size": 24}}]}  # fmt: skip
    body, headers = binary_body(header, np.array([1, 2, 2**63], dtype="<u8").tobytes())
    message = error(post(http, body, headers, "/v2/models/echo-int64/infer"), 400)
    assert "UINT64 value above" in message


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"parameters": {"binary_data_output": "yes"}}, "binary_data_output must be true or false"),
        ({"parameters": [1]}, "parameters must be an object"),
        ({"outputs": [{"name": "predict", "parameters": {"binary_data": 1}}]},
         r"outputs\[0\].parameters.binary_data must be true or false"),
        ({"outputs": [{"name": "predict", "parameters": {"classification": 2}}]},
         "asks for 'classification'; this server does not take that extension"),
    ],
)  # fmt: skip
def test_extension_parameters_of_the_wrong_type_are_a_400(
    http: httpx.Client, change: dict[str, Any], message: str
) -> None:
    body, headers = binary_body({**LR_HEADER, **change}, ROW)
    assert message.replace("\\", "") in error(post(http, body, headers), 400)


def test_a_binary_size_that_is_not_a_count_of_bytes_is_a_400(http: httpx.Client) -> None:
    for size in (-1, 2.5, True, "240"):
        header = {"inputs": [{**LR_HEADER["inputs"][0], "parameters": {"binary_data_size": size}}]}
        body, headers = binary_body(header, ROW)
        assert "binary_data_size must be a non-negative integer" in error(
            post(http, body, headers), 400
        )


def test_shared_memory_inputs_are_refused_by_name(http: httpx.Client) -> None:
    shm = {"shared_memory_region": "r", "shared_memory_byte_size": 240}
    header = {"inputs": [{**LR_HEADER["inputs"][0], "parameters": shm}]}
    assert "does not take the shared-memory extension" in error(
        http.post("/v2/models/lr/infer", json=header), 400
    )


def test_bf16_as_json_is_a_400_that_says_to_send_it_as_binary(http: httpx.Client) -> None:
    header = {
        "inputs": [{"name": "input", "shape": [1, 30], "datatype": "BF16", "data": [0.0] * 30}]
    }
    assert "BF16 tensors must be sent as binary data" in error(
        http.post("/v2/models/lr/infer", json=header), 400
    )


def test_a_raw_binary_request_to_a_model_with_several_inputs_is_a_400(http: httpx.Client) -> None:
    r = post(
        http, b"\x00" * 8, {"Inference-Header-Content-Length": "0"}, "/v2/models/columns/infer"
    )
    assert "is for models with one input" in error(r, 400)


def test_a_raw_binary_request_that_is_not_whole_rows_is_a_400(http: httpx.Client) -> None:
    r = post(http, b"\x00" * 250, {"Inference-Header-Content-Length": "0"})
    assert "(250 bytes) is not a whole number of rows" in error(r, 400)


def test_tritonclient_reports_the_servers_message_for_a_bad_request(
    triton: th.InferenceServerClient,
) -> None:
    tensor = th.InferInput("input", [1, 29], "FP64").set_data_from_numpy(np.zeros((1, 29)))
    with pytest.raises(InferenceServerException, match="input") as info:
        triton.infer("lr", [tensor])
    assert info.value.status() == "400"
