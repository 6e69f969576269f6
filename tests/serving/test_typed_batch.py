"""The V2 decoder's fast path (``json_array``) and ``typed_batch`` give exactly what the general
path (``coerce_array``, ``coerce_batch``) gives: the same arrays, or the same errors."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from loopline.bundle import Signature, TensorSpec, coerce_array, coerce_batch
from loopline.errors import InvalidInputError
from loopline.serving.typed_batch import json_array, typed_batch

BIG = 2**63  # one past int64

CASES: list[tuple[str, list[int], Any]] = [
    ("float64", [1, 3], [1.5, 2.5, -3.0]),
    ("float64", [2, 2], [[1.5, 2.5], [3.5, 4.5]]),
    ("float64", [1, 4], [[1.5, 2.5], [3.5, 4.5]]),  # nesting other than the shape
    ("float64", [1, 3], [1, 2, 3]),  # integers for a float input
    ("float64", [1, 3], [1.5, 2, 3]),  # mixed
    ("float64", [1, 3], [True, 1.5, 2.0]),
    ("float64", [1, 3], [None, 1.5, 2.0]),
    ("float64", [1, 3], ["1.5", 1.5, 2.0]),
    ("float64", [1, 3], [1.5, 2.5]),  # too few
    ("float64", [2, 2], [[1.5, 2.5], [3.5]]),  # ragged
    ("float64", [1, 0], [[]]),
    ("float64", [0, 3], []),
    ("float32", [1, 3], [0.1, 1e39, -2.5]),  # 1e39 overflows float32 as coerce_array casts
    ("int64", [1, 3], [1, 2, 3]),
    ("int64", [1, 3], [1, 2, BIG]),
    ("int64", [1, 3], [1, 2, -BIG - 1]),
    ("int64", [1, 3], [1.5, 2.0, 3.0]),
    ("int64", [1, 3], [True, False, True]),
    ("bool", [1, 2], [True, False]),
    ("string", [1, 2], ["a", "b"]),
]


def _general(spec: TensorSpec, shape: list[int], data: Any) -> np.ndarray[Any, Any]:
    arr = coerce_array(spec, data)
    if arr.size != int(np.prod(shape)):
        raise InvalidInputError("size")
    return arr.reshape(shape)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # float32 overflow, on both paths
@pytest.mark.parametrize(("dtype", "shape", "data"), CASES)
def test_the_json_fast_path_answers_what_the_general_path_answers_or_leaves_it_to_it(
    dtype: str, shape: list[int], data: Any
) -> None:
    spec = TensorSpec("x", dtype, (-1,))  # json_array reads the dtype; the shape is given
    fast = json_array(spec, shape, data)
    if fast is None:
        return  # the general path answers (its errors are pinned in test_protocol_v2)
    general = _general(spec, shape, data)
    assert fast.dtype == general.dtype and fast.shape == general.shape
    np.testing.assert_array_equal(fast, general)


def test_the_json_fast_path_takes_the_common_float_and_int_tensors() -> None:
    f64 = TensorSpec("x", "float64", (-1, 3))
    assert json_array(f64, [1, 3], [1.5, 2.5, 3.5]) is not None
    assert json_array(f64, [2, 3], [[1.5, 2.5, 3.5], [1.5, 2.5, 3.5]]) is not None
    f32 = json_array(TensorSpec("x", "float32", (-1, 3)), [1, 3], [1.5, 2.5, 3.5])
    assert f32 is not None and f32.dtype == np.float32
    assert json_array(TensorSpec("x", "int64", (-1, 3)), [1, 3], [1, 2, 3]) is not None


COLUMNS = Signature(
    inputs=(
        TensorSpec("a", "float64", (-1,)),
        TensorSpec("b", "int64", (-1,)),
        TensorSpec("s", "string", (-1,)),
    ),
    outputs=(TensorSpec("y", "float64", (-1,)),),
)
TENSOR = Signature(
    inputs=(TensorSpec("x", "float64", (-1, 2)),), outputs=(TensorSpec("y", "float64", (-1,)),)
)

BATCHES: list[tuple[Signature, dict[str, Any]]] = [
    (COLUMNS, {"a": np.ones(2), "b": np.arange(2), "s": ["p", "q"]}),
    (COLUMNS, {"a": [1.0], "b": [3], "s": ["p"]}),
    (COLUMNS, {"a": np.ones((2, 1)), "b": np.arange(2), "s": ["p", "q"]}),  # [n, 1] columns
    (COLUMNS, {"a": np.ones(2, np.float32), "b": np.arange(2, dtype=np.uint8), "s": ["p", "q"]}),
    (COLUMNS, {"a": np.ones(2), "b": np.arange(3), "s": ["p", "q"]}),  # rows differ
    (COLUMNS, {"a": np.ones(0), "b": np.arange(0), "s": []}),  # no rows
    (COLUMNS, {"a": np.ones((2, 2)), "b": np.arange(2), "s": ["p", "q"]}),  # not a column
    (COLUMNS, {"a": np.ones(2), "b": np.arange(2)}),  # missing
    (COLUMNS, {"a": np.ones(2), "b": np.arange(2), "s": ["p", "q"], "z": [1]}),  # unknown
    (COLUMNS, {"a": np.ones(2), "b": np.array([1.5, 2.5]), "s": ["p", "q"]}),  # int64 wanted
    (COLUMNS, {"a": np.ones(2), "b": np.arange(2), "s": np.array(["p", None], dtype=object)}),
    (TENSOR, {"x": np.ones((3, 2))}),
    (TENSOR, {"x": np.ones(2)}),  # one row without its batch dimension
    (TENSOR, {"x": np.ones((3, 3))}),  # wrong width
    (TENSOR, {"x": np.ones((0, 2))}),  # no rows
    (TENSOR, {"x": np.ones((3, 2), dtype=np.int64)}),
    (TENSOR, {"x": np.array(5.0)}),  # a scalar
]


@pytest.mark.parametrize(("sig", "raw"), BATCHES)
def test_typed_batch_returns_what_coerce_batch_returns_and_raises_what_it_raises(
    sig: Signature, raw: dict[str, Any]
) -> None:
    try:
        expected = coerce_batch(sig, raw)
    except InvalidInputError as exc:
        with pytest.raises(InvalidInputError) as got:
            typed_batch(sig, raw)
        assert str(got.value) == str(exc)
        return
    batch, rows = typed_batch(sig, raw)
    assert rows == expected[1] and list(batch) == list(expected[0])
    for name, arr in expected[0].items():
        assert batch[name].dtype == arr.dtype and batch[name].shape == arr.shape
        np.testing.assert_array_equal(batch[name], arr)


def test_typed_batch_does_not_convert_an_array_that_already_has_its_inputs_dtype() -> None:
    x = np.ones((2, 2))
    batch, rows = typed_batch(TENSOR, {"x": x})
    assert rows == 2 and batch["x"] is x
