"""A model with a bug: it raises RuntimeError when an input holds 13 (doubles it otherwise),
for the "a bug in a model" answers (HTTP 500, gRPC INTERNAL). It saves and loads itself (the
``python`` flavor): loading it needs :data:`TRUST`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from loopline.bundle import LoadedModel, Signature, TensorSpec, Trust, load_model, save_model

TRUST = Trust(loaders=frozenset({"tests.serving.faulty_model:Faulty"}))
BUG = 13.0


class Faulty:
    def predict(self, x: Any) -> np.ndarray[Any, Any]:
        x = np.asarray(x)
        if (x == BUG).any():
            raise RuntimeError("unlucky input")
        return x * 2

    def save(self, directory: Path) -> None:
        (directory / "faulty.json").write_text("{}")

    @classmethod
    def load(cls, directory: Path) -> Faulty:
        json.loads((directory / "faulty.json").read_text())
        return cls()


def faulty_model(root: Path) -> LoadedModel:
    """A :class:`Faulty` saved under ``root`` and loaded."""
    x = TensorSpec("x", "float64", (-1, 1))
    sig = Signature(inputs=(x,), outputs=(TensorSpec("predict", "float64", (-1, 1)),))
    path = save_model(
        Faulty(), root / "faulty", signature=sig, flavor="python", input_example=np.ones((1, 1))
    )
    return load_model(path, trust=TRUST)
