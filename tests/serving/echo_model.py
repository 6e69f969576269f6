"""Models that answer with their input, for wire-format round trips of every element type.

``Echo`` takes one tensor ``x`` of shape ``[-1, 3]`` and returns it as ``predict``; saved once
per signature dtype. ``Columns`` takes four columns ``f`` (float64), ``i`` (int64), ``b``
(bool) and ``s`` (string) and serves one method per column, returning that column. Both save
and load themselves (the ``python`` flavor): loading them needs :data:`TRUST`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from loopline.bundle import LoadedModel, Signature, TensorSpec, Trust, load_model, save_model

TRUST = Trust(
    loaders=frozenset({"tests.serving.echo_model:Echo", "tests.serving.echo_model:Columns"})
)
DTYPES = ("float64", "float32", "int64", "bool", "string")
EXAMPLES: dict[str, np.ndarray[Any, Any]] = {
    "float64": np.array([[0.5, -1.25, 3.0]]),
    "float32": np.array([[0.5, -1.25, 3.0]], dtype=np.float32),
    "int64": np.array([[1, -2, 3]], dtype=np.int64),
    "bool": np.array([[True, False, True]]),
    "string": np.array([["a", "bé", ""]], dtype=object),
}


class Echo:
    def predict(self, x: Any) -> np.ndarray[Any, Any]:
        return np.asarray(x)

    def save(self, directory: Path) -> None:
        (directory / "echo.json").write_text("{}")

    @classmethod
    def load(cls, directory: Path) -> Echo:
        json.loads((directory / "echo.json").read_text())
        return cls()


class Columns:
    feature_names_in_ = np.array(["f", "i", "b", "s"], dtype=object)

    def f(self, frame: pd.DataFrame) -> np.ndarray[Any, Any]:
        return frame["f"].to_numpy()

    def i(self, frame: pd.DataFrame) -> np.ndarray[Any, Any]:
        return frame["i"].to_numpy()

    def b(self, frame: pd.DataFrame) -> np.ndarray[Any, Any]:
        return frame["b"].to_numpy()

    def s(self, frame: pd.DataFrame) -> np.ndarray[Any, Any]:
        return frame["s"].to_numpy()

    def save(self, directory: Path) -> None:
        (directory / "columns.json").write_text("{}")

    @classmethod
    def load(cls, directory: Path) -> Columns:
        json.loads((directory / "columns.json").read_text())
        return cls()


COLUMN_TYPES = {"f": "float64", "i": "int64", "b": "bool", "s": "string"}
COLUMN_EXAMPLE = pd.DataFrame(
    {
        "f": [1.5, -2.0],
        "i": np.array([7, -8], dtype=np.int64),
        "b": [True, False],
        "s": np.array(["x", "ÿ"], dtype=object),
    }
)


def echo_model(root: Path, dtype: str) -> LoadedModel:
    """An :class:`Echo` of ``dtype`` saved under ``root`` and loaded."""
    sig = Signature(
        inputs=(TensorSpec("x", dtype, (-1, 3)),), outputs=(TensorSpec("predict", dtype, (-1, 3)),)
    )
    path = save_model(
        Echo(), root / f"echo-{dtype}", signature=sig, flavor="python",
        input_example=EXAMPLES[dtype],
    )  # fmt: skip
    return load_model(path, trust=TRUST)


def columns_model(root: Path) -> LoadedModel:
    """A :class:`Columns` saved under ``root`` and loaded."""
    specs = tuple(TensorSpec(n, t, (-1,)) for n, t in COLUMN_TYPES.items())
    sig = Signature(inputs=specs, outputs=specs)
    path = save_model(
        Columns(), root / "columns", signature=sig, flavor="python",
        methods=tuple(COLUMN_TYPES), input_example=COLUMN_EXAMPLE,
    )  # fmt: skip
    return load_model(path, trust=TRUST)
