"""Tensors of the gRPC ``ModelInfer`` messages ↔ NumPy arrays.

:func:`decode_infer_request` reads a ``ModelInferRequest``'s inputs — typed ``contents`` or
``raw_input_contents`` (flattened row-major elements, little-endian; BYTES elements each
prefixed by their 4-byte little-endian length; FP16 and BF16 only raw) — into
``{input name: array}`` for :func:`loopline.bundle.coerce_batch`. :func:`encode_outputs`
writes outputs into a ``ModelInferResponse``: raw contents when the request's inputs were raw
(what tritonclient reads), typed contents otherwise. Every malformed request raises
InvalidInputError naming the field (``inputs[0].shape``) and the input.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from loopline.bundle import Signature, TensorSpec
from loopline.errors import InvalidInputError
from loopline.serving import binary
from loopline.serving.binary import WIRE_DTYPE
from loopline.serving.protocols import V2_ACCEPTS, V2_DATATYPE

Array = np.ndarray[Any, Any]

#: The typed ``InferTensorContents`` field of each V2 datatype (FP16 and BF16 have none: they
#: travel only raw).
CONTENTS_FIELD: dict[str, str | None] = {
    "BOOL": "bool_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "FP16": None,
    "BF16": None,
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}
_FIELD_DTYPE: dict[str, np.dtype[Any]] = {  # each typed field's element type, as declared
    "uint_contents": np.dtype(np.uint32),
    "uint64_contents": np.dtype(np.uint64),
    "int_contents": np.dtype(np.int32),
    "int64_contents": np.dtype(np.int64),
    "fp32_contents": np.dtype(np.float32),
    "fp64_contents": np.dtype(np.float64),
}
_NARROW = ("INT8", "INT16", "UINT8", "UINT16")  # typed contents carry them as 32-bit ints
_SHARED_MEMORY = "shared_memory_region"


def decode_infer_request(request: Any, signature: Signature) -> tuple[dict[str, Array], list[str]]:
    """The inputs of a ``ModelInferRequest`` as arrays shaped as sent, and the names of the
    requested outputs (empty: all).

    Raises:
        InvalidInputError: an unknown, repeated or malformed input or requested output; the
            message names the field.
    """
    inputs = request.inputs
    if not inputs:
        raise InvalidInputError("Field 'inputs' must hold at least one input tensor.")
    raws: Sequence[bytes] = request.raw_input_contents
    if raws and len(raws) != len(inputs):
        raise InvalidInputError(
            f"Field 'raw_input_contents' has {len(raws)} entries but 'inputs' has "
            f"{len(inputs)}; send one raw content per input, in the order of 'inputs'."
        )
    specs = {s.name: s for s in signature.inputs}
    arrays: dict[str, Array] = {}
    for i, tensor in enumerate(inputs):
        spec = specs.get(tensor.name)
        if spec is None:
            raise InvalidInputError(
                f"Unknown input {tensor.name!r} (inputs[{i}].name); the model takes "
                f"{list(specs)}."
            )
        if spec.name in arrays:
            raise InvalidInputError(f"Input {spec.name!r} appears twice in 'inputs'.")
        if _SHARED_MEMORY in tensor.parameters:
            raise InvalidInputError(
                f"Input {spec.name!r} (inputs[{i}]) is in a shared-memory region, which this "
                "server does not read; send its data in the request."
            )
        datatype = _datatype(tensor.datatype, spec, f"inputs[{i}].datatype")
        shape = _shape(tensor.shape, spec, f"inputs[{i}].shape")
        count = math.prod(shape)
        if raws:
            if tensor.HasField("contents"):
                raise InvalidInputError(
                    f"Input {spec.name!r} has typed contents (inputs[{i}].contents) while the "
                    "request uses raw_input_contents; send every input one way."
                )
            values = _from_raw(raws[i], datatype, count, spec, i)
        else:
            values = _from_contents(tensor.contents, datatype, count, spec, i)
        if spec.dtype == "int64":
            binary.check_int64(spec.name, values)
        try:
            arrays[spec.name] = values.reshape(shape)
        except ValueError as exc:  # a dimension past NumPy's range, with 0 elements
            raise InvalidInputError(
                f"Input {spec.name!r} cannot take shape {shape} (inputs[{i}].shape)."
            ) from exc
    return arrays, _requested_outputs(request.outputs, signature)


def _datatype(datatype: str, spec: TensorSpec, field: str) -> str:
    if datatype not in CONTENTS_FIELD:
        raise InvalidInputError(
            f"Input {spec.name!r} has unknown datatype {datatype!r} ({field}); use one of "
            f"{sorted(CONTENTS_FIELD)}."
        )
    if datatype not in V2_ACCEPTS[spec.dtype] and not (
        datatype == "BF16" and spec.dtype.startswith("float")  # raw only, as HTTP binary data
    ):
        raise InvalidInputError(
            f"Input {spec.name!r} has datatype {datatype} ({field}) but the model expects "
            f"{V2_DATATYPE[spec.dtype]}."
        )
    return datatype


def _shape(shape: Sequence[int], spec: TensorSpec, field: str) -> list[int]:
    dims = list(shape)
    if not dims or any(d < 0 for d in dims):
        raise InvalidInputError(
            f"Input {spec.name!r} needs a shape of non-negative dimensions ({field}), not "
            f"{dims}."
        )
    return dims


def _from_raw(raw: bytes, datatype: str, count: int, spec: TensorSpec, i: int) -> Array:
    """The elements of ``raw_input_contents[i]`` (the binary tensor layout of
    :mod:`loopline.serving.binary`), checked against the shape's element ``count``."""
    field = f"raw_input_contents[{i}]"
    if datatype == "BYTES":
        found = binary.count_bytes_elements(spec.name, raw)
        if found != count:
            raise InvalidInputError(
                f"Input {spec.name!r} has {found} BYTES elements in {field} but its shape "
                f"needs {count}."
            )
        return np.asarray(binary.decode_bytes(spec.name, raw, count), dtype=object)
    size = WIRE_DTYPE[datatype].itemsize
    if len(raw) != count * size:
        raise InvalidInputError(
            f"Input {spec.name!r} has {len(raw)} bytes in {field} but its shape needs "
            f"{count} × {size} = {count * size} bytes of {datatype}."
        )
    return binary.decode_tensor(spec.name, datatype, [count], raw)


def _from_contents(contents: Any, datatype: str, count: int, spec: TensorSpec, i: int) -> Array:
    name = CONTENTS_FIELD[datatype]
    if name is None:
        raise InvalidInputError(
            f"Input {spec.name!r} has datatype {datatype} (inputs[{i}].datatype), which travels "
            "only in raw_input_contents: there is no typed field for it."
        )
    field = f"inputs[{i}].contents.{name}"
    values = getattr(contents, name)
    if len(values) != count:
        raise InvalidInputError(
            f"Input {spec.name!r} has {len(values)} values in {field} but its shape needs "
            f"{count}."
        )
    if datatype == "BYTES":
        return _text(values, spec, field)
    if datatype == "BOOL":
        return np.array(values, dtype=np.bool_)
    array = np.array(values, dtype=_FIELD_DTYPE[name])
    if datatype in _NARROW and array.size:
        info = np.iinfo(np.dtype(datatype.lower()))
        low, high = int(array.min()), int(array.max())
        if low < info.min or high > info.max:
            raise InvalidInputError(
                f"Input {spec.name!r} has a value outside the {datatype} range "
                f"[{info.min}, {info.max}] in {field}."
            )
    return array


def _text(values: Sequence[bytes], spec: TensorSpec, field: str) -> Array:
    out = np.empty(len(values), dtype=object)
    for j, item in enumerate(values):
        try:
            out[j] = item.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidInputError(
                f"Input {spec.name!r}: element {j} of {field} is not UTF-8 text; the model "
                "takes strings."
            ) from None
    return out


def _requested_outputs(requested: Sequence[Any], signature: Signature) -> list[str]:
    known = [s.name for s in signature.outputs]
    names: list[str] = []
    for i, output in enumerate(requested):
        if output.name not in known:
            raise InvalidInputError(
                f"Unknown output {output.name!r} (outputs[{i}].name); the model has outputs "
                f"{known}."
            )
        for parameter in ("classification", _SHARED_MEMORY):
            if parameter in output.parameters:
                raise InvalidInputError(
                    f"Output {output.name!r} asks for {parameter!r} (outputs[{i}].parameters), "
                    "which this server does not support; request the output without it."
                )
        if output.name not in names:
            names.append(output.name)
    return names


def encode_outputs(
    response: Any, outputs: Mapping[str, Array], signature: Signature, *, raw: bool
) -> None:
    """Append ``outputs`` to a ``ModelInferResponse``: ``raw_output_contents`` if ``raw``,
    else typed ``contents``, with each output's V2 datatype and shape."""
    for name, array in outputs.items():
        datatype = V2_DATATYPE[signature.output(name).dtype]
        tensor = response.outputs.add(name=name, datatype=datatype, shape=array.shape)
        if raw:
            response.raw_output_contents.append(binary.encode_tensor(array, datatype))
        elif datatype == "BYTES":
            tensor.contents.bytes_contents.extend(
                v if isinstance(v, bytes) else str(v).encode("utf-8") for v in array.flat
            )
        else:  # every output datatype (FP64, FP32, INT64, BOOL) has a typed field
            field = CONTENTS_FIELD[datatype]
            assert field is not None
            getattr(tensor.contents, field).extend(array.reshape(-1).tolist())
