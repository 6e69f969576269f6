"""Wire formats: Open Inference Protocol (V2) and the MLflow / KServe V1 / TF Serving adapters.

Decoders turn a parsed JSON body into ``{input name: values}`` for
:func:`loopline.bundle.coerce_batch`; encoders turn outputs into response bytes. Every
malformed body raises InvalidInputError naming the field.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import orjson

from loopline.bundle import Signature, TensorSpec
from loopline.errors import InvalidInputError

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


def _need_dict(body: Any, what: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InvalidInputError(
            f"The {what} body must be a JSON object, not {type(body).__name__}."
        )
    return body


# ---------------------------------------------------------------------------- V2
def decode_v2(body: Any, signature: Signature) -> tuple[Raw, list[str] | None, str | None]:
    """Decode a V2 ``$inference_request``; return (inputs, requested outputs, request id)."""
    body = _need_dict(body, "inference request")
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
        raw[name] = _v2_tensor(tensor, spec)
    outputs = None
    if body.get("outputs") is not None:
        req = body["outputs"]
        if not isinstance(req, list) or not all(
            isinstance(o, dict) and isinstance(o.get("name"), str) for o in req
        ):
            raise InvalidInputError("Field 'outputs' must be a list of objects with a 'name'.")
        outputs = [o["name"] for o in req]
        known = [s.name for s in signature.outputs]
        for o in outputs:
            if o not in known:
                raise InvalidInputError(f"Unknown output {o!r}; the model has outputs {known}.")
    rid = body.get("id")
    if rid is not None:
        if not isinstance(rid, str):
            raise InvalidInputError("Field 'id' must be a string.")
        check_request_id(rid, "Field 'id'")
    return raw, outputs, rid


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


def _v2_tensor(tensor: dict[str, Any], spec: TensorSpec) -> np.ndarray[Any, Any]:
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
    if datatype not in V2_ACCEPTS[spec.dtype]:
        raise InvalidInputError(
            f"Input {name!r} has datatype {datatype} but the model expects "
            f"{V2_DATATYPE[spec.dtype]}."
        )
    data = tensor.get("data")
    if not isinstance(data, list):
        raise InvalidInputError(f"Input {name!r} needs 'data', a list of values.")
    from loopline.bundle import coerce_array

    arr = coerce_array(spec, data)
    size = int(np.prod(shape))
    if arr.size != size:
        raise InvalidInputError(
            f"Input {name!r} has {arr.size} values but shape {shape} needs {size}."
        )
    return arr.reshape(shape)


def encode_v2(
    model: str,
    version: str,
    rid: str | None,
    outputs: Mapping[str, np.ndarray[Any, Any]],
    signature: Signature,
) -> bytes:
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
    body: dict[str, Any] = {"model_name": model, "model_version": version, "outputs": out}
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


# ------------------------------------------------------------------ row / column forms
def decode_rows(rows: Any, signature: Signature, field: str) -> Raw:
    """``[[...], ...]`` or ``[{col: v}, ...]`` (TF ``instances``, MLflow records) → columns."""
    if not isinstance(rows, list) or not rows:
        raise InvalidInputError(f"Field {field!r} must be a non-empty list of rows.")
    if signature.is_tensor:
        return {signature.inputs[0].name: rows}
    names = [s.name for s in signature.inputs]
    if all(isinstance(r, dict) for r in rows):
        for i, r in enumerate(rows):
            for k in r:
                if k not in names:
                    raise InvalidInputError(
                        f"{field}[{i}] has unknown input {k!r}; the model takes {names}."
                    )
            for n in names:
                if n not in r:
                    raise InvalidInputError(f"{field}[{i}] is missing input {n!r}.")
        return {n: [r[n] for r in rows] for n in names}
    if all(isinstance(r, list) for r in rows):
        for i, r in enumerate(rows):
            if len(r) != len(names):
                raise InvalidInputError(
                    f"{field}[{i}] has {len(r)} values but the model takes {len(names)} "
                    f"inputs {names}."
                )
        cols = list(zip(*rows, strict=True))
        return {n: list(c) for n, c in zip(names, cols, strict=True)}
    raise InvalidInputError(f"Field {field!r} must hold rows that are all lists or all objects.")


def decode_columns(cols: Any, signature: Signature, field: str) -> Raw:
    """``{input: values}`` (TF/MLflow columnar ``inputs``) or a list of rows."""
    if isinstance(cols, dict):
        return dict(cols)
    if isinstance(cols, list):
        return decode_rows(cols, signature, field)
    raise InvalidInputError(f"Field {field!r} must be an object of columns or a list of rows.")


# ------------------------------------------------------------------------- MLflow
_MLFLOW_KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")


def decode_mlflow(body: Any, signature: Signature) -> Raw:
    """Decode MLflow's ``/invocations`` JSON (exactly one of the four documented keys)."""
    body = _need_dict(body, "invocations")
    keys = [k for k in _MLFLOW_KEYS if k in body]
    if len(keys) != 1:
        raise InvalidInputError(
            f"The body must hold exactly one of {list(_MLFLOW_KEYS)}; it holds "
            f"{keys or sorted(body)}."
        )
    key = keys[0]
    value = body[key]
    if key == "dataframe_split":
        split = _need_dict(value, "dataframe_split")
        columns, data = split.get("columns"), split.get("data")
        if not isinstance(data, list) or not data:
            raise InvalidInputError("dataframe_split.data must be a non-empty list of rows.")
        if signature.is_tensor:
            return {signature.inputs[0].name: data}
        if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
            raise InvalidInputError("dataframe_split.columns must be a list of column names.")
        if not all(isinstance(r, list) and len(r) == len(columns) for r in data):
            raise InvalidInputError(
                f"Every dataframe_split.data row must have {len(columns)} values (one per column)."
            )
        if len(set(columns)) != len(columns):
            raise InvalidInputError("dataframe_split.columns has duplicate names.")
        return {c: list(v) for c, v in zip(columns, zip(*data, strict=True), strict=True)}
    if key == "dataframe_records":
        if not isinstance(value, list) or not all(isinstance(r, dict) for r in value):
            raise InvalidInputError("dataframe_records must be a list of objects.")
        return decode_rows(value, signature, key)
    if key == "instances":
        return decode_rows(value, signature, key)
    return decode_columns(value, signature, key)


def encode_predictions(
    outputs: Mapping[str, np.ndarray[Any, Any]], key: str = "predictions"
) -> bytes:
    """``{"predictions": [...]}`` with the first served method's output."""
    first = next(iter(outputs.values()))
    data: Any = first.tolist() if first.dtype.kind == "O" else first
    return orjson.dumps({key: data}, option=_NP)


# ------------------------------------------------------------- KServe V1 / TF Serving
def decode_predict(body: Any, signature: Signature) -> tuple[Raw, str]:
    """KServe V1 / TF Serving ``:predict``: ``instances`` (→ predictions) or ``inputs``
    (TF columnar → outputs). Returns (inputs, response key)."""
    body = _need_dict(body, "predict")
    sig_name = body.get("signature_name")
    if sig_name is not None and sig_name != "serving_default":
        raise InvalidInputError(
            f"signature_name {sig_name!r} is unknown; loopline models serve 'serving_default'."
        )
    if ("instances" in body) == ("inputs" in body):
        raise InvalidInputError("The body must hold exactly one of 'instances' or 'inputs'.")
    if "instances" in body:
        return decode_rows(body["instances"], signature, "instances"), "predictions"
    return decode_columns(body["inputs"], signature, "inputs"), "outputs"
