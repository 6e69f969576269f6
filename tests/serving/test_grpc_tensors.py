"""gRPC ModelInfer tensors ↔ arrays: every datatype raw and typed, and every malformed input
refused with a message naming the field."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from loopline.bundle import Signature, TensorSpec
from loopline.errors import InvalidInputError
from loopline.serving import grpc_predict_v2_pb2 as pb
from loopline.serving.grpc_tensors import CONTENTS_FIELD, decode_infer_request, encode_outputs

SIG = Signature(
    inputs=(
        TensorSpec("score", "float64", (-1,)),
        TensorSpec("ratio", "float32", (-1,)),
        TensorSpec("count", "int64", (-1,)),
        TensorSpec("flag", "bool", (-1,)),
        TensorSpec("city", "string", (-1,)),
    ),
    outputs=(
        TensorSpec("label", "string", (-1,)),
        TensorSpec("proba", "float64", (-1, 2)),
        TensorSpec("n", "int64", (-1,)),
        TensorSpec("ok", "bool", (-1,)),
        TensorSpec("f", "float32", (-1,)),
    ),
)
TENSOR = Signature(inputs=(TensorSpec("input", "float64", (-1, 3)),))

NUMERIC = ["FP64", "FP32", "FP16", "INT8", "INT16", "INT32", "INT64"]
NUMERIC += ["UINT8", "UINT16", "UINT32", "UINT64"]
NP_TYPE = {"FP64": "<f8", "FP32": "<f4", "FP16": "<f2", "INT8": "i1", "INT16": "<i2",
           "INT32": "<i4", "INT64": "<i8", "UINT8": "u1", "UINT16": "<u2", "UINT32": "<u4",
           "UINT64": "<u8", "BOOL": "u1"}  # fmt: skip


def request(*inputs: tuple[str, str, list[int]], raw: list[bytes] | None = None) -> Any:
    r = pb.ModelInferRequest(model_name="m")
    for name, datatype, shape in inputs:
        r.inputs.add(name=name, datatype=datatype, shape=shape)
    if raw is not None:
        r.raw_input_contents.extend(raw)
    return r


def bytes_elements(*items: bytes) -> bytes:
    return b"".join(len(i).to_bytes(4, "little") + i for i in items)


@pytest.mark.parametrize("datatype", NUMERIC)
@pytest.mark.parametrize("column", ["score", "ratio"])
def test_a_float_input_takes_every_numeric_datatype_raw(column: str, datatype: str) -> None:
    values = np.array([1, 2, 3], dtype=NP_TYPE[datatype])
    r = request((column, datatype, [3]), raw=[values.tobytes()])
    arrays, outputs = decode_infer_request(r, SIG)
    assert arrays[column].tolist() == [1, 2, 3]
    assert outputs == []


@pytest.mark.parametrize("datatype", [d for d in NUMERIC if d != "FP16"])
def test_a_float_input_takes_every_typed_datatype(datatype: str) -> None:
    r = request(("score", datatype, [2]))
    getattr(r.inputs[0].contents, CONTENTS_FIELD[datatype] or "").extend([4, 5])
    arrays, _ = decode_infer_request(r, SIG)
    assert arrays["score"].tolist() == [4, 5]


@pytest.mark.parametrize("datatype", [d for d in NUMERIC if d.startswith(("INT", "UINT"))])
def test_an_int64_input_takes_every_integer_datatype_raw_and_typed(datatype: str) -> None:
    raw = request(("count", datatype, [2]), raw=[np.array([7, 9], NP_TYPE[datatype]).tobytes()])
    typed = request(("count", datatype, [2]))
    getattr(typed.inputs[0].contents, CONTENTS_FIELD[datatype] or "").extend([7, 9])
    for r in (raw, typed):
        assert decode_infer_request(r, SIG)[0]["count"].tolist() == [7, 9]


def test_bool_and_bytes_inputs_raw_and_typed() -> None:
    raw = request(("flag", "BOOL", [3]), ("city", "BYTES", [3]),
                  raw=[b"\x01\x00\x01", bytes_elements(b"nice", "é".encode(), b"")])  # fmt: skip
    typed = request(("flag", "BOOL", [3]), ("city", "BYTES", [3]))
    typed.inputs[0].contents.bool_contents.extend([True, False, True])
    typed.inputs[1].contents.bytes_contents.extend([b"nice", "é".encode(), b""])
    for r in (raw, typed):
        arrays, _ = decode_infer_request(r, SIG)
        assert arrays["flag"].tolist() == [True, False, True]
        assert arrays["city"].tolist() == ["nice", "é", ""]


@pytest.mark.parametrize("column", ["score", "ratio"])
def test_a_float_input_takes_bf16_raw_as_the_upper_half_of_a_float32(column: str) -> None:
    halves = (np.array([1.5, -2.0], "<f4").view("<u4") >> 16).astype("<u2")
    arrays, _ = decode_infer_request(request((column, "BF16", [2]), raw=[halves.tobytes()]), SIG)
    assert arrays[column].tolist() == [1.5, -2.0]
    with pytest.raises(InvalidInputError, match="datatype BF16 .* but the model expects INT64"):
        decode_infer_request(request(("count", "BF16", [2]), raw=[halves.tobytes()]), SIG)
    with pytest.raises(InvalidInputError, match="BF16 .* travels only in raw_input_contents"):
        decode_infer_request(request((column, "BF16", [2])), SIG)


def test_a_tensor_input_keeps_the_shape_sent() -> None:
    x = np.arange(6, dtype="<f8")
    arrays, _ = decode_infer_request(request(("input", "FP64", [2, 3]), raw=[x.tobytes()]), TENSOR)
    assert arrays["input"].shape == (2, 3)


def test_requested_outputs_are_named_once_each_in_order() -> None:
    r = request(("input", "FP64", [1, 3]), raw=[np.zeros(3).tobytes()])
    outputs = (TensorSpec("a", "int64", (-1,)), TensorSpec("b", "int64", (-1,)))
    sig = Signature(TENSOR.inputs, outputs)
    for name in ("b", "a", "b"):
        r.outputs.add(name=name)
    assert decode_infer_request(r, sig)[1] == ["b", "a"]


def _with(r: Any, change: Any) -> Any:
    change(r)
    return r


def _shared_memory(r: Any) -> None:
    r.inputs[0].parameters["shared_memory_region"].string_param = "region"


def _classification(r: Any) -> None:
    r.outputs.add(name="label").parameters["classification"].int64_param = 2


def _mixed(r: Any) -> None:
    r.inputs[0].contents.fp64_contents.append(1.0)


BAD = [
    (pb.ModelInferRequest(model_name="m"), "Field 'inputs' must hold at least one input"),
    (request(("nope", "FP64", [1])), r"Unknown input 'nope' \(inputs\[0\].name\); the model"),
    (request(("score", "FP64", [1]), ("score", "FP64", [1]), raw=[b"\0" * 8] * 2),
     "'score' appears twice"),
    (request(("score", "FP99", [1])), r"unknown datatype 'FP99' \(inputs\[0\].datatype\)"),
    (request(("score", "BYTES", [1])), r"datatype BYTES \(inputs\[0\].datatype\) but the model "
     "expects FP64"),
    (request(("count", "FP64", [1])), "datatype FP64 .* but the model expects INT64"),
    (request(("score", "FP64", [])), r"shape of non-negative dimensions \(inputs\[0\].shape\)"),
    (request(("score", "FP64", [-1])), r"shape of non-negative dimensions .*\[-1\]"),
    (request(("score", "FP64", [3])), r"has 0 values in inputs\[0\].contents.fp64_contents but "
     "its shape needs 3"),
    (request(("score", "FP16", [1])), "datatype FP16 .* travels only in raw_input_contents"),
    (request(("score", "FP64", [2]), raw=[b"\0" * 8]), r"has 8 bytes in raw_input_contents\[0\] "
     "but its shape needs 2 × 8 = 16 bytes of FP64"),
    (request(("score", "FP64", [1]), ("city", "BYTES", [1]), raw=[b"\0" * 8]),
     "'raw_input_contents' has 1 entries but 'inputs' has 2"),
    (_with(request(("score", "FP64", [1]), raw=[b"\0" * 8]), _mixed),
     r"typed contents \(inputs\[0\].contents\) while the request uses raw_input_contents"),
    (request(("flag", "BOOL", [2]), raw=[b"\x01\x02"]), "BOOL but holds a byte other than 0 or 1"),
    (request(("city", "BYTES", [2]), raw=[bytes_elements(b"a")]),
     r"has 1 BYTES elements in raw_input_contents\[0\] but its shape needs 2"),
    (request(("city", "BYTES", [1]), raw=[b"\x09\0\0\0abc"]), "claims 9 bytes, past the end"),
    (request(("city", "BYTES", [1]), raw=[b"\x01\0"]), "fewer than 4 bytes are left"),
    (request(("city", "BYTES", [1]), raw=[bytes_elements(b"\xff")]), "is not UTF-8 text"),
    (_with(request(("city", "BYTES", [1])),
           lambda r: r.inputs[0].contents.bytes_contents.append(b"\xff")),
     r"element 0 of inputs\[0\].contents.bytes_contents is not UTF-8 text"),
    (_with(request(("count", "INT8", [1])),
           lambda r: r.inputs[0].contents.int_contents.append(300)),
     r"outside the INT8 range \[-128, 127\] in inputs\[0\].contents.int_contents"),
    (request(("count", "UINT64", [1]), raw=[np.array([2**64 - 1], "<u8").tobytes()]),
     "UINT64 value above 9223372036854775807"),
    (request(("score", "FP64", [0, 2**62]), raw=[b""]),
     r"cannot take shape \[0, 4611686018427387904\]"),
    (_with(request(("score", "FP64", [1]), raw=[b"\0" * 8]), _shared_memory),
     r"'score' \(inputs\[0\]\) is in a shared-memory region"),
    (_with(request(("score", "FP64", [1]), raw=[b"\0" * 8]),
           lambda r: r.outputs.add(name="nope")),
     r"Unknown output 'nope' \(outputs\[0\].name\); the model has outputs \['label'"),
    (_with(request(("score", "FP64", [1]), raw=[b"\0" * 8]), _classification),
     r"asks for 'classification' \(outputs\[0\].parameters\), which this server does not"),
]  # fmt: skip


@pytest.mark.parametrize(("r", "match"), BAD, ids=range(len(BAD)))
def test_a_malformed_request_is_refused_naming_the_field(r: Any, match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        decode_infer_request(r, SIG)


OUTPUTS = {
    "label": np.array(["yes", "né"], dtype=object),
    "proba": np.array([[0.25, 0.75], [1.0, 0.0]]),
    "n": np.array([3, -4], dtype=np.int64),
    "ok": np.array([True, False]),
    "f": np.array([0.5, 1.5], dtype=np.float32),
}


def test_raw_outputs_are_the_binary_layout_with_datatype_and_shape() -> None:
    response = pb.ModelInferResponse()
    encode_outputs(response, OUTPUTS, SIG, raw=True)
    meta = [(o.name, o.datatype, list(o.shape)) for o in response.outputs]
    assert meta == [("label", "BYTES", [2]), ("proba", "FP64", [2, 2]), ("n", "INT64", [2]),
                    ("ok", "BOOL", [2]), ("f", "FP32", [2])]  # fmt: skip
    label, proba, n, ok, f = response.raw_output_contents
    assert label == bytes_elements(b"yes", "né".encode())
    assert np.frombuffer(proba, "<f8").tolist() == [0.25, 0.75, 1.0, 0.0]
    assert np.frombuffer(n, "<i8").tolist() == [3, -4]
    assert ok == b"\x01\x00"
    assert np.frombuffer(f, "<f4").tolist() == [0.5, 1.5]
    assert not any(o.HasField("contents") for o in response.outputs)


def test_typed_outputs_fill_the_datatypes_field() -> None:
    response = pb.ModelInferResponse()
    encode_outputs(response, OUTPUTS, SIG, raw=False)
    label, proba, n, ok, f = response.outputs
    assert list(label.contents.bytes_contents) == [b"yes", "né".encode()]
    assert list(proba.contents.fp64_contents) == [0.25, 0.75, 1.0, 0.0]
    assert list(n.contents.int64_contents) == [3, -4]
    assert list(ok.contents.bool_contents) == [True, False]
    assert list(f.contents.fp32_contents) == [0.5, 1.5]
    assert not response.raw_output_contents
