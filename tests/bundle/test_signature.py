"""Signatures: inference from data, validation of specs, coercion of request values."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pytest

from loopline.bundle import Signature, TensorSpec, coerce_batch, infer_signature
from loopline.errors import InvalidInputError


def test_infers_columns_from_pandas_polars_arrow_and_dicts(frame: Any) -> None:
    df, y = frame
    want = [("age", "int64"), ("fare", "float64"), ("city", "string"), ("member", "bool")]
    for data in (
        df,
        pl.from_pandas(df),
        pa.Table.from_pandas(df),
        {c: df[c].to_numpy() for c in df.columns},
    ):
        sig = infer_signature(data, y)
        assert [(s.name, s.dtype, s.shape) for s in sig.inputs] == [(n, d, (-1,)) for n, d in want]
        assert sig.outputs == (TensorSpec("predict", "int64", (-1,)),)


def test_infers_one_tensor_from_a_2d_array() -> None:
    sig = infer_signature(np.zeros((3, 4), dtype=np.float32))
    assert sig.inputs == (TensorSpec("input", "float32", (-1, 4)),) and sig.is_tensor
    with pytest.raises(InvalidInputError, match="has 1 dimension"):
        infer_signature(np.zeros(3))


def test_bad_specs_are_refused() -> None:
    with pytest.raises(InvalidInputError, match="dtype 'complex'"):
        TensorSpec("x", "complex", (-1,))
    with pytest.raises(InvalidInputError, match="first dimension must be -1"):
        TensorSpec("x", "float64", (3,))
    with pytest.raises(InvalidInputError, match="duplicate input names"):
        Signature(inputs=(TensorSpec("x", "float64", (-1,)), TensorSpec("x", "int64", (-1,))))
    with pytest.raises(InvalidInputError, match="columns of shape"):
        Signature(inputs=(TensorSpec("x", "float64", (-1, 2)), TensorSpec("y", "int64", (-1,))))


def test_round_trips_through_dicts() -> None:
    sig = Signature(
        inputs=(TensorSpec("a", "string", (-1,)),), outputs=(TensorSpec("predict", "bool", (-1,)),)
    )
    assert Signature.from_dict(sig.to_dict()) == sig


COLUMNS = Signature(
    inputs=(
        TensorSpec("n", "int64", (-1,)),
        TensorSpec("s", "string", (-1,)),
        TensorSpec("f", "float64", (-1,)),
        TensorSpec("b", "bool", (-1,)),
    )
)


def test_coerce_batch_types_every_column() -> None:
    batch, rows = coerce_batch(
        COLUMNS, {"n": [1, 2], "s": ["a", "b"], "f": [1, 2.5], "b": [True, False]}
    )
    assert rows == 2
    assert [batch[k].dtype.kind for k in "nsfb"] == ["i", "O", "f", "b"]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"n": [1], "s": ["a"], "f": [1.0]}, "Missing input 'b'"),
        ({"n": [1], "s": ["a"], "f": [1.0], "b": [True], "z": [1]}, "Unknown input 'z'"),
        (
            {"n": [1.5], "s": ["a"], "f": [1.0], "b": [True]},
            "'n' expects int64 values but got floats",
        ),
        (
            {"n": [1], "s": [3], "f": [1.0], "b": [True]},
            "'s' expects string values but got integers",
        ),
        (
            {"n": [1], "s": ["a"], "f": ["1.0"], "b": [True]},
            "'f' expects float64 values but got strings",
        ),
        (
            {"n": [1], "s": ["a"], "f": [None], "b": [True]},
            "'f' expects float64 values but got null",
        ),
        ({"n": [1], "s": ["a"], "f": [1.0], "b": [1]}, "'b' expects bool values but got integers"),
        (
            {"n": [1, 2], "s": ["a"], "f": [1.0], "b": [True]},
            "'s' has 1 rows but the inputs before it have 2",
        ),
        ({"n": [[1, 2]], "s": ["a"], "f": [1.0], "b": [True]}, "'n' must be a column"),
        ({"n": [], "s": [], "f": [], "b": []}, "holds no rows"),
        ({"n": [2**70], "s": ["a"], "f": [1.0], "b": [True]}, "'n' expects int64"),
        (
            {"n": [[1], [2, 3]], "s": ["a"], "f": [1.0], "b": [True]},
            "'n' is not a rectangular array",
        ),
    ],
)
def test_coerce_batch_names_the_offending_field(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        coerce_batch(COLUMNS, raw)
