"""The typed interface of a saved model: named, typed, shaped inputs and outputs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from loopline.errors import InvalidInputError

#: The element types a signature may name, with their NumPy dtype.
DTYPES: dict[str, np.dtype[Any]] = {
    "float64": np.dtype(np.float64),
    "float32": np.dtype(np.float32),
    "int64": np.dtype(np.int64),
    "bool": np.dtype(np.bool_),
    "string": np.dtype(object),
}


@dataclass(frozen=True, slots=True)
class TensorSpec:
    """One input or output: ``name``, element ``dtype`` and ``shape`` (``-1`` = any length).

    Column inputs have shape ``(-1,)``; a single tensor input has shape ``(-1, n)``.
    """

    name: str
    dtype: str
    shape: tuple[int, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise InvalidInputError(f"Tensor name {self.name!r} must be a non-empty string.")
        if self.dtype not in DTYPES:
            raise InvalidInputError(
                f"Tensor {self.name!r} has dtype {self.dtype!r}; use one of {sorted(DTYPES)}."
            )
        if (
            not self.shape
            or any(not isinstance(d, int) or isinstance(d, bool) for d in self.shape)
            or self.shape[0] != -1
            or any(d < 1 for d in self.shape[1:])
        ):
            raise InvalidInputError(
                f"Tensor {self.name!r} has shape {list(self.shape)}; the first dimension must "
                "be -1 (the batch) and the others positive integers, as in [-1] or [-1, 30]."
            )

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype, "shape": list(self.shape)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TensorSpec:
        try:
            return cls(name=data["name"], dtype=data["dtype"], shape=tuple(data["shape"]))
        except (KeyError, TypeError) as exc:
            raise InvalidInputError(
                f"Tensor spec {dict(data)!r} needs 'name', 'dtype' and a list 'shape'."
            ) from exc


@dataclass(frozen=True, slots=True)
class Signature:
    """Inputs and outputs of a model.

    Either every input is a column (shape ``(-1,)``) and the model receives a data frame with
    the columns in signature order, or there is exactly one input of shape ``(-1, n)`` and the
    model receives a 2-D array.
    """

    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...] = ()

    def __post_init__(self) -> None:
        if not self.inputs:
            raise InvalidInputError("A signature needs at least one input.")
        for group, specs in (("input", self.inputs), ("output", self.outputs)):
            names = [s.name for s in specs]
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise InvalidInputError(f"Signature has duplicate {group} names {dupes}.")
        if len(self.inputs) > 1 and any(len(s.shape) != 1 for s in self.inputs):
            raise InvalidInputError(
                "A signature with several inputs takes columns of shape [-1] only; "
                "use one input of shape [-1, n] for a tensor model."
            )

    @property
    def is_tensor(self) -> bool:
        """True if the model takes one 2-D (or higher) array rather than named columns."""
        return len(self.inputs) == 1 and len(self.inputs[0].shape) > 1

    def output(self, name: str) -> TensorSpec:
        for spec in self.outputs:
            if spec.name == name:
                return spec
        raise InvalidInputError(
            f"Output {name!r} is not in the signature; outputs are "
            f"{[s.name for s in self.outputs]}."
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "inputs": [s.to_dict() for s in self.inputs],
            "outputs": [s.to_dict() for s in self.outputs],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Signature:
        if not isinstance(data, Mapping) or not isinstance(data.get("inputs"), list):
            raise InvalidInputError(f"Signature {data!r} needs a list 'inputs'.")
        outputs = data.get("outputs") or []
        return cls(
            inputs=tuple(TensorSpec.from_dict(d) for d in data["inputs"]),
            outputs=tuple(TensorSpec.from_dict(d) for d in outputs),
        )


def dtype_name(dtype: np.dtype[Any]) -> str:
    """Map a NumPy/pandas dtype to a signature dtype name (ints widen to int64, etc.)."""
    kind = np.dtype(dtype).kind if not hasattr(dtype, "numpy_dtype") else "O"
    if kind == "f":
        return "float32" if np.dtype(dtype).itemsize <= 4 else "float64"
    if kind in "iu":
        return "int64"
    if kind == "b":
        return "bool"
    if kind in "OUS":
        return "string"
    raise InvalidInputError(
        f"Data type {dtype!r} has no signature equivalent; convert it to float, int, bool or str."
    )


def _columns_of(x: Any) -> list[tuple[str, np.ndarray[Any, Any]]] | None:
    """Named columns of a data frame / Arrow table / dict, or None for a plain array."""
    if isinstance(x, Mapping):
        return [(str(k), np.asarray(v)) for k, v in x.items()]
    if hasattr(x, "column_names") and hasattr(x, "column"):  # pyarrow.Table
        return [(str(n), np.asarray(x.column(n).to_numpy())) for n in x.column_names]
    if hasattr(x, "columns") and hasattr(x, "__getitem__") and hasattr(x, "shape"):
        cols = list(x.columns)  # pandas or polars DataFrame
        out = []
        for c in cols:
            col = x[c]
            arr = col.to_numpy()
            if arr.dtype.kind == "O" and all(isinstance(v, str) for v in arr[:100]):
                arr = arr.astype(object)
            out.append((str(c), arr))
        return out
    return None


def infer_signature(x_sample: Any, y_sample: Any = None) -> Signature:
    """Infer a signature from example inputs (and outputs of ``predict``).

    ``x_sample`` may be a pandas or polars DataFrame, a pyarrow Table or a dict of columns
    (→ one ``[-1]`` input per column, in order), or a 2-D NumPy array (→ one input named
    ``"input"`` of shape ``[-1, n]``). ``y_sample`` gives the ``predict`` output.

    Example:
        >>> sig = infer_signature(np.zeros((4, 3)), np.array([0, 1, 0, 1]))
        >>> [s.to_dict() for s in sig.inputs]
        [{'name': 'input', 'dtype': 'float64', 'shape': [-1, 3]}]
    """
    cols = _columns_of(x_sample)
    if cols is not None:
        inputs = tuple(TensorSpec(n, dtype_name(a.dtype), (-1,)) for n, a in cols)
    else:
        arr = np.asarray(x_sample)
        if arr.ndim != 2:
            raise InvalidInputError(
                f"Example input has {arr.ndim} dimension(s); pass a 2-D array (rows × features) "
                "or a data frame."
            )
        inputs = (TensorSpec("input", dtype_name(arr.dtype), (-1, int(arr.shape[1]))),)
    outputs: tuple[TensorSpec, ...] = ()
    if y_sample is not None:
        y = np.asarray(y_sample.to_numpy() if hasattr(y_sample, "to_numpy") else y_sample)
        shape = (-1,) if y.ndim <= 1 else (-1, *[int(d) for d in y.shape[1:]])
        outputs = (TensorSpec("predict", dtype_name(y.dtype), shape),)
    return Signature(inputs=inputs, outputs=outputs)


def column_names(signature: Signature) -> Sequence[str]:
    return [s.name for s in signature.inputs]
