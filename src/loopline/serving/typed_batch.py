"""A decoded request's values as the typed batch a model takes, converting each value once.

:func:`loopline.bundle.coerce_batch` converts every input with
:func:`~loopline.bundle.coerce_array` and checks its shape and the row counts. The V2 decoder
(:mod:`.v2`) has already converted every JSON tensor with ``coerce_array`` to the input's dtype,
so running ``coerce_batch`` on its result converted each of them twice. :func:`typed_batch`
gives exactly what ``coerce_batch`` gives (the same arrays, the same errors) but skips the
conversion of an array that already has its input's numeric dtype, which ``coerce_array``
would return unchanged.

:func:`json_array` is the decoder's fast path for the common JSON tensor: numbers that
``np.asarray`` reads as a rectangular float64 array for a float input (FP64/FP32 values), or as
int64 for an int64 input, with as many elements as the shape — flat or nested. It returns
what ``coerce_array(...).reshape(shape)`` returns without its per-dtype checks, or None for
anything else (integers for a float input, booleans, nulls, strings, ragged rows, a count
that does not match the shape), so that the general path answers, with its usual error.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from loopline.bundle import DTYPES, Batch, Signature, TensorSpec, coerce_array, coerce_batch
from loopline.bundle.batch import check_shape

#: Input dtype → the dtype ``np.asarray`` gives its common JSON values (floats; integers).
_READ_AS: dict[str, np.dtype[Any]] = {
    "float64": np.dtype(np.float64),
    "float32": np.dtype(np.float64),  # JSON numbers are doubles; cast after, as coerce_array
    "int64": np.dtype(np.int64),
}


def json_array(
    spec: TensorSpec, shape: Sequence[int], data: list[Any]
) -> np.ndarray[Any, Any] | None:
    """``data`` (a JSON tensor's values) as ``spec``'s array of ``shape``, or None when it is
    not the common case (see the module docstring): the caller then takes the general path.

    Exactly ``coerce_array(spec, data).reshape(shape)`` when it answers: ``np.asarray``
    reading ``data`` as a rectangular float64 (int64) array is what coerce_array accepts for
    a float (int64) input without a further check, and the cast is the one coerce_array does.
    """
    read_as = _READ_AS.get(spec.dtype)
    if read_as is None or not data:
        return None
    try:
        arr = np.asarray(data)
    except (ValueError, TypeError, OverflowError):  # ragged or odd: the general path says so
        return None
    if arr.dtype != read_as or arr.size != math.prod(shape):
        return None
    if read_as != DTYPES[spec.dtype]:
        arr = arr.astype(DTYPES[spec.dtype])
    return arr.reshape(shape)


def typed_batch(signature: Signature, raw: Mapping[str, Any]) -> tuple[Batch, int]:
    """What ``coerce_batch(signature, raw)`` returns, converting only the values that are not
    already arrays of their input's numeric dtype.

    Raises:
        InvalidInputError: exactly as :func:`loopline.bundle.coerce_batch` (an unknown or
            missing input, a wrong dtype or shape, inputs of different lengths, no rows).
    """
    specs = signature.inputs
    if len(raw) != len(specs) or any(s.name not in raw for s in specs):
        return coerce_batch(signature, raw)  # raises its unknown / missing input error
    batch: Batch = {}
    rows = -1
    for spec in specs:
        arr = raw[spec.name]
        if type(arr) is not np.ndarray or spec.dtype == "string" or arr.dtype != DTYPES[spec.dtype]:
            arr = coerce_array(spec, arr)
        arr = check_shape(spec, arr)
        n = int(arr.shape[0])
        if rows == -1:
            rows = n
        elif n != rows:
            return coerce_batch(signature, raw)  # raises its row-count error
        batch[spec.name] = arr
    if rows <= 0:
        return coerce_batch(signature, raw)  # raises its no-rows error
    return batch, rows


__all__ = ["json_array", "typed_batch"]
