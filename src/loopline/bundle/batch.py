"""Check and convert a batch of request values against a model's input signature."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from loopline.bundle.signature import DTYPES, Signature, TensorSpec
from loopline.errors import InvalidInputError

Batch = dict[str, np.ndarray[Any, Any]]

_ACCEPTED_KINDS = {
    "float64": "fiu",
    "float32": "fiu",
    "int64": "iu",
    "bool": "b",
    "string": "U",
}
_KIND_WORDS = {
    "f": "floats",
    "i": "integers",
    "u": "integers",
    "b": "booleans",
    "U": "strings",
    "S": "bytes",
    "O": "mixed or null values",
}


def coerce_array(spec: TensorSpec, values: Any) -> np.ndarray[Any, Any]:
    """Convert ``values`` (list or array) to ``spec``'s dtype, refusing lossy or mixed data.

    Raises:
        InvalidInputError: names the field and what was wrong (type, nulls, ragged rows).
    """
    try:
        arr = values if isinstance(values, np.ndarray) else np.asarray(values)
    except (ValueError, TypeError, OverflowError) as exc:
        raise InvalidInputError(
            f"Input {spec.name!r} is not a rectangular array of {spec.dtype} values ({exc})."
        ) from exc
    kind = arr.dtype.kind
    if arr.size == 0:  # an empty list has no element type to check
        return arr.astype(DTYPES[spec.dtype])
    if kind == "O" and spec.dtype == "string" and all(isinstance(v, str) for v in arr.flat):
        return arr
    if kind not in _ACCEPTED_KINDS[spec.dtype]:
        if kind == "O" and any(v is None for v in arr.flat):
            got = "null (missing) values"
        else:
            got = _KIND_WORDS.get(kind, f"values of type {arr.dtype}")
        raise InvalidInputError(f"Input {spec.name!r} expects {spec.dtype} values but got {got}.")
    if spec.dtype == "string":
        return arr.astype(object)
    try:
        return arr.astype(spec.dtype, copy=False)
    except (ValueError, OverflowError) as exc:  # pragma: no cover - guarded by the kind check
        raise InvalidInputError(f"Input {spec.name!r} cannot be read as {spec.dtype}.") from exc


def check_shape(spec: TensorSpec, arr: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Reshape a column to 1-D / check a tensor's inner dimensions against ``spec``."""
    if len(spec.shape) == 1:
        if arr.ndim == 2 and arr.shape[1] == 1:
            arr = arr.reshape(-1)
        if arr.ndim != 1:
            raise InvalidInputError(
                f"Input {spec.name!r} must be a column (shape [-1]) but has shape "
                f"{list(arr.shape)}."
            )
        return arr
    if arr.ndim == len(spec.shape) - 1 and tuple(arr.shape) == spec.shape[1:]:
        arr = arr.reshape(1, *spec.shape[1:])  # one row sent without its batch dimension
    if arr.ndim != len(spec.shape) or tuple(arr.shape[1:]) != spec.shape[1:]:
        raise InvalidInputError(
            f"Input {spec.name!r} has shape {list(arr.shape)} but the model expects "
            f"{list(spec.shape)} (-1 = any number of rows)."
        )
    return arr


def coerce_batch(signature: Signature, raw: Mapping[str, Any]) -> tuple[Batch, int]:
    """Validate named values against ``signature``; return typed arrays and the row count.

    Raises:
        InvalidInputError: an unknown or missing input, a wrong dtype or shape, or inputs of
            different lengths. The message names the field.
    """
    known = {s.name for s in signature.inputs}
    unknown = [k for k in raw if k not in known]
    if unknown:
        raise InvalidInputError(
            f"Unknown input {unknown[0]!r}; the model takes {[s.name for s in signature.inputs]}."
        )
    missing = [s.name for s in signature.inputs if s.name not in raw]
    if missing:
        raise InvalidInputError(
            f"Missing input {missing[0]!r}"
            + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
            + "; the request must give every input of the signature."
        )
    batch: Batch = {}
    rows = -1
    for spec in signature.inputs:
        arr = check_shape(spec, coerce_array(spec, raw[spec.name]))
        if rows == -1:
            rows = int(arr.shape[0])
        elif arr.shape[0] != rows:
            raise InvalidInputError(
                f"Input {spec.name!r} has {arr.shape[0]} rows but the inputs before it have "
                f"{rows}; every input needs the same number of rows."
            )
        batch[spec.name] = arr
    if rows == 0:
        raise InvalidInputError("The request holds no rows; send at least one.")
    return batch, rows
