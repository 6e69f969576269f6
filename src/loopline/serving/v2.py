"""The Open Inference Protocol (V2, KServe / Triton) wire format of the model server.

:func:`parse_v2` turns a ``$inference_request`` — all JSON, or JSON plus binary tensor data
(:mod:`loopline.serving.binary`) — into ``{input name: values}`` for
:func:`loopline.bundle.coerce_batch` and the response options; :func:`encode_v2` and
:func:`encode_v2_binary` write the ``$inference_response``; :func:`v2_metadata` the model
metadata. Every malformed request raises InvalidInputError naming the field.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from loopline.bundle import Signature, TensorSpec, coerce_array
from loopline.errors import InvalidInputError
from loopline.serving import binary
from loopline.serving.binary import Tensors
from loopline.serving.typed_batch import json_array

Raw = dict[str, Any]
_NP = orjson.OPT_SERIALIZE_NUMPY

#: V2 datatype of each signature dtype, and the V2 datatypes accepted for it.
V2_DATATYPE = {
    "float64": "FP64",
    "float32": "FP32",
    "int64": "INT64",
    "bool": "BOOL",
    "string": "BYTES",
}
_INTS = {"INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64"}
V2_ACCEPTS = {
    "float64": {"FP64", "FP32", "FP16"} | _INTS,
    "float32": {"FP64", "FP32", "FP16"} | _INTS,
    "int64": _INTS,
    "bool": {"BOOL"},
    "string": {"BYTES"},
}
_ALL_V2 = {"BOOL", "FP16", "FP32", "FP64", "BF16", "BYTES"} | _INTS
#: As binary data a float input also takes BF16 (which has no JSON form).
_BINARY_ACCEPTS = {k: v | {"BF16"} if k.startswith("float") else v for k, v in V2_ACCEPTS.items()}


def need_object(body: Any, what: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InvalidInputError(
            f"The {what} body must be a JSON object, not {type(body).__name__}."
        )
    return body


@dataclass(frozen=True, slots=True)
class V2Request:
    """A decoded V2 ``$inference_request``.

    ``outputs`` are the requested output names (None: every output). An output is answered
    as binary data (the binary tensor data extension) when it is in ``binary``, or, when it
    was not requested by name with a ``binary_data`` parameter, if ``binary_default`` (the
    request's ``binary_data_output``) is true. ``parameters`` are the request's own.
    """

    inputs: Raw
    outputs: tuple[str, ...] | None = None
    id: str | None = None
    binary: frozenset[str] = frozenset()
    binary_default: bool = False
    explicit: frozenset[str] = frozenset()
    parameters: Mapping[str, Any] = field(default_factory=dict)

    def binary_outputs(self, names: Iterable[str]) -> frozenset[str]:
        """Which of the answered output ``names`` go back as binary data."""
        if not self.binary_default:
            return self.binary
        return frozenset(n for n in names if n in self.binary or n not in self.explicit)


def decode_v2(body: Any, signature: Signature) -> tuple[Raw, list[str] | None, str | None]:
    """Decode an all-JSON V2 ``$inference_request``; return (inputs, requested outputs,
    request id). :func:`parse_v2` is the full form (binary data, output parameters)."""
    request = parse_v2(body, signature)
    outputs = None if request.outputs is None else list(request.outputs)
    return request.inputs, outputs, request.id


def parse_v2(body: Any, signature: Signature, tensors: Tensors | None = None) -> V2Request:
    """Decode a V2 ``$inference_request`` whose binary part (if any) is ``tensors``.

    Raises:
        InvalidInputError: names the field: a malformed tensor, an unknown input or output,
            a ``binary_data_size`` that does not match the shape or the bytes left, bytes
            that no input claims, a parameter of the wrong type.
    """
    body = need_object(body, "inference request")
    inputs = body.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise InvalidInputError("Field 'inputs' must be a non-empty list of tensors.")
    specs = {s.name: s for s in signature.inputs}
    raw: Raw = {}
    for i, tensor in enumerate(inputs):
        if not isinstance(tensor, dict):
            raise InvalidInputError(f"inputs[{i}] must be an object with name/shape/datatype/data.")
        name = tensor.get("name")
        if not isinstance(name, str):
            raise InvalidInputError(f"inputs[{i}].name must be a string.")
        spec = specs.get(name)
        if spec is None:
            raise InvalidInputError(f"Unknown input {name!r}; the model takes {list(specs)}.")
        if name in raw:
            raise InvalidInputError(f"Input {name!r} appears twice in 'inputs'.")
        params = _parameters(tensor.get("parameters"), f"inputs[{i}].parameters")
        size = params.get("binary_data_size")
        if "shared_memory_region" in params:
            raise InvalidInputError(
                f"Input {name!r} names a shared-memory region; this server does not take the "
                "shared-memory extension: send the tensor as JSON 'data' or binary data."
            )
        if size is None:
            raw[name] = _v2_tensor(tensor, spec)
        else:
            raw[name] = _binary_tensor(tensor, spec, size, tensors)
    if tensors is not None:
        tensors.finish()
    params = _parameters(body.get("parameters"), "parameters")
    binary_default = params.get("binary_data_output", False)
    if not isinstance(binary_default, bool):
        raise InvalidInputError("parameters.binary_data_output must be true or false.")
    outputs, binary, explicit = _requested_outputs(body.get("outputs"), signature)
    rid = body.get("id")
    if rid is not None:
        if not isinstance(rid, str):
            raise InvalidInputError("Field 'id' must be a string.")
        check_request_id(rid, "Field 'id'")
    return V2Request(raw, outputs, rid, binary, binary_default, explicit, params)


def parse_v2_raw(tensors: Tensors, signature: Signature) -> V2Request:
    """Decode a raw binary request (``Inference-Header-Content-Length: 0``): the whole body
    is the one input's data, in the input's own datatype, any number of rows; every output
    comes back as binary data.

    Raises:
        InvalidInputError: the model has several inputs, or the bytes are not whole rows.
    """
    if len(signature.inputs) != 1:
        raise InvalidInputError(
            "A raw binary request (Inference-Header-Content-Length: 0) is for models with one "
            f"input; this model takes {[s.name for s in signature.inputs]}: send a JSON part "
            "naming each input."
        )
    spec = signature.inputs[0]
    datatype = V2_DATATYPE[spec.dtype]
    data = tensors.take(spec.name, tensors.remaining)
    row = math.prod(spec.shape[1:])
    if datatype == "BYTES":
        count = binary.count_bytes_elements(spec.name, data)
    else:
        itemsize = binary.WIRE_DTYPE[datatype].itemsize
        count = len(data) // itemsize
        if len(data) % (row * itemsize):
            raise InvalidInputError(
                f"The raw binary body ({len(data)} bytes) is not a whole number of rows of "
                f"input {spec.name!r} ({row} × {datatype}, {row * itemsize} bytes each)."
            )
    if count % row:
        raise InvalidInputError(
            f"The raw binary body holds {count} BYTES elements, not a whole number of rows of "
            f"input {spec.name!r} ({row} each)."
        )
    shape = [count // row, *spec.shape[1:]]
    arr = binary.decode_tensor(spec.name, datatype, shape, data)
    return V2Request({spec.name: arr}, binary_default=True)


def _parameters(value: Any, field_name: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidInputError(f"{field_name} must be an object of named parameters.")
    return value


def _requested_outputs(
    req: Any, signature: Signature
) -> tuple[tuple[str, ...] | None, frozenset[str], frozenset[str]]:
    """(names, binary names, names with an explicit ``binary_data``) of ``outputs``."""
    if req is None:
        return None, frozenset(), frozenset()
    if not isinstance(req, list) or not all(
        isinstance(o, dict) and isinstance(o.get("name"), str) for o in req
    ):
        raise InvalidInputError("Field 'outputs' must be a list of objects with a 'name'.")
    known = [s.name for s in signature.outputs]
    names = []
    binary = set()
    explicit = set()
    for i, o in enumerate(req):
        name = o["name"]
        if name not in known:
            raise InvalidInputError(f"Unknown output {name!r}; the model has outputs {known}.")
        params = _parameters(o.get("parameters"), f"outputs[{i}].parameters")
        for unsupported in ("shared_memory_region", "classification"):
            if unsupported in params:
                raise InvalidInputError(
                    f"Output {name!r} asks for {unsupported!r}; this server does not take that "
                    "extension: drop the parameter."
                )
        flag = params.get("binary_data")
        if flag is not None:
            if not isinstance(flag, bool):
                raise InvalidInputError(
                    f"outputs[{i}].parameters.binary_data must be true or false."
                )
            explicit.add(name)
            if flag:
                binary.add(name)
        names.append(name)
    return tuple(names), frozenset(binary), frozenset(explicit)


#: A request id (V2 ``id``, ``X-Request-ID``) is echoed in a response header: 1-128 printable
#: ASCII characters, so it can never break or inject a header.
MAX_REQUEST_ID = 128


def check_request_id(rid: str, what: str) -> None:
    """Raise InvalidInputError unless ``rid`` is empty or 1-128 printable ASCII characters."""
    if len(rid) > MAX_REQUEST_ID or not (rid.isascii() and rid.isprintable()):
        raise InvalidInputError(
            f"{what} ({rid[:40]!r}{'…' if len(rid) > 40 else ''}, {len(rid)} characters) must "
            f"be at most {MAX_REQUEST_ID} printable ASCII characters (no control characters); "
            "it is echoed in the x-request-id response header."
        )


def _shape_and_datatype(
    tensor: dict[str, Any], spec: TensorSpec, *, binary: bool
) -> tuple[list[int], str]:
    name = spec.name
    shape = tensor.get("shape")
    if (
        not isinstance(shape, list)
        or not shape
        or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
    ):
        raise InvalidInputError(
            f"Input {name!r} needs 'shape', a non-empty list of non-negative integers."
        )
    datatype = tensor.get("datatype")
    if datatype not in _ALL_V2:
        raise InvalidInputError(f"Input {name!r} has unknown datatype {datatype!r}.")
    if datatype not in (_BINARY_ACCEPTS if binary else V2_ACCEPTS)[spec.dtype]:
        raise InvalidInputError(
            f"Input {name!r} has datatype {datatype} but the model expects "
            f"{V2_DATATYPE[spec.dtype]}."
            + (" BF16 tensors must be sent as binary data." if datatype == "BF16" else "")
        )
    return shape, datatype


def _v2_tensor(tensor: dict[str, Any], spec: TensorSpec) -> np.ndarray[Any, Any]:
    name = spec.name
    shape, _ = _shape_and_datatype(tensor, spec, binary=False)
    data = tensor.get("data")
    if not isinstance(data, list):
        raise InvalidInputError(
            f"Input {name!r} needs 'data', a list of values (or, as binary data, "
            "parameters.binary_data_size and an Inference-Header-Content-Length header)."
        )
    fast = json_array(spec, shape, data)
    if fast is not None:
        return fast
    arr = coerce_array(spec, data)
    size = binary.element_count(shape)
    if arr.size != size:
        raise InvalidInputError(
            f"Input {name!r} has {arr.size} values but shape {shape} needs {size}."
        )
    return arr.reshape(shape)


def _binary_tensor(
    tensor: dict[str, Any], spec: TensorSpec, size: Any, tensors: Tensors | None
) -> np.ndarray[Any, Any]:
    name = spec.name
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise InvalidInputError(
            f"Input {name!r}: parameters.binary_data_size must be a non-negative integer "
            f"(the tensor's size in bytes), not {size!r}."
        )
    if "data" in tensor:
        raise InvalidInputError(
            f"Input {name!r} has both 'data' and parameters.binary_data_size; send its values "
            "one way: as JSON 'data' or as binary data."
        )
    if tensors is None:
        raise InvalidInputError(
            f"Input {name!r} has parameters.binary_data_size but the request has no binary "
            "data: send the Inference-Header-Content-Length header (the length of the JSON "
            "part) and the tensor's bytes after the JSON."
        )
    shape, datatype = _shape_and_datatype(tensor, spec, binary=True)
    expected = binary.byte_size(datatype, shape)
    if expected is not None and size != expected:
        raise InvalidInputError(
            f"Input {name!r} has parameters.binary_data_size {size} but shape {shape} of "
            f"{datatype} takes {expected} bytes."
        )
    arr = binary.decode_tensor(name, datatype, shape, tensors.take(name, size))
    if spec.dtype == "int64":
        binary.check_int64(name, arr)
    return arr  # coerce_batch converts it to the input's dtype (no copy when it is already)


def encode_v2(
    model: str,
    version: str,
    rid: str | None,
    outputs: Mapping[str, np.ndarray[Any, Any]],
    signature: Signature,
) -> bytes:
    """An all-JSON ``$inference_response``."""
    out = []
    for name, arr in outputs.items():
        spec = signature.output(name)
        data: Any = arr.reshape(-1)
        if data.dtype.kind == "O":
            data = data.tolist()
        out.append(
            {
                "name": name,
                "datatype": V2_DATATYPE[spec.dtype],
                "shape": list(arr.shape),
                "data": data,
            }
        )
    return _response(model, version, rid, out)


def encode_v2_binary(
    model: str,
    version: str,
    rid: str | None,
    outputs: Mapping[str, np.ndarray[Any, Any]],
    signature: Signature,
    binary_outputs: AbstractSet[str],
) -> tuple[bytes, int]:
    """A ``$inference_response`` with the outputs in ``binary_outputs`` as binary data after
    the JSON part (binary tensor data extension); return (body, length of the JSON part)."""
    out = []
    blocks = []
    for name, arr in outputs.items():
        spec = signature.output(name)
        datatype = V2_DATATYPE[spec.dtype]
        tensor: dict[str, Any] = {"name": name, "datatype": datatype, "shape": list(arr.shape)}
        if name in binary_outputs:
            block = binary.encode_tensor(arr, datatype)
            tensor["parameters"] = {"binary_data_size": len(block)}
            blocks.append(block)
        else:
            data: Any = arr.reshape(-1)
            tensor["data"] = data.tolist() if data.dtype.kind == "O" else data
        out.append(tensor)
    head = _response(model, version, rid, out)
    return b"".join([head, *blocks]), len(head)


def _response(model: str, version: str, rid: str | None, outputs: list[dict[str, Any]]) -> bytes:
    body: dict[str, Any] = {"model_name": model, "model_version": version, "outputs": outputs}
    if rid is not None:
        body["id"] = rid
    return orjson.dumps(body, option=_NP)


def v2_metadata(name: str, versions: Sequence[str], signature: Signature) -> bytes:
    def spec(s: TensorSpec) -> dict[str, Any]:
        return {"name": s.name, "datatype": V2_DATATYPE[s.dtype], "shape": list(s.shape)}

    return orjson.dumps(
        {
            "name": name,
            "versions": list(versions),
            "platform": "loopline_sklearn",
            "inputs": [spec(s) for s in signature.inputs],
            "outputs": [spec(s) for s in signature.outputs],
        }
    )


__all__ = [
    "MAX_REQUEST_ID",
    "V2_ACCEPTS",
    "V2_DATATYPE",
    "V2Request",
    "check_request_id",
    "decode_v2",
    "encode_v2",
    "encode_v2_binary",
    "need_object",
    "parse_v2",
    "parse_v2_raw",
    "v2_metadata",
]
