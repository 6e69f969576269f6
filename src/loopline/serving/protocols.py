"""Wire formats of the MLflow / KServe V1 / TF Serving adapters (and, re-exported, the Open
Inference Protocol V2 of :mod:`loopline.serving.v2`).

Decoders turn a parsed JSON body into ``{input name: values}`` for
:func:`loopline.bundle.coerce_batch`; encoders turn outputs into response bytes. Every
malformed body raises InvalidInputError naming the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import orjson

from loopline.bundle import Signature
from loopline.errors import InvalidInputError
from loopline.serving.v2 import (
    MAX_REQUEST_ID,
    V2_ACCEPTS,
    V2_DATATYPE,
    V2Request,
    check_request_id,
    decode_v2,
    encode_v2,
    encode_v2_binary,
    parse_v2,
    parse_v2_raw,
    v2_metadata,
)
from loopline.serving.v2 import need_object as _need_dict

Raw = dict[str, Any]
_NP = orjson.OPT_SERIALIZE_NUMPY


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


__all__ = [
    "MAX_REQUEST_ID",
    "V2_ACCEPTS",
    "V2_DATATYPE",
    "V2Request",
    "check_request_id",
    "decode_columns",
    "decode_mlflow",
    "decode_predict",
    "decode_rows",
    "decode_v2",
    "encode_predictions",
    "encode_v2",
    "encode_v2_binary",
    "parse_v2",
    "parse_v2_raw",
    "v2_metadata",
]
