"""A model with a bug: it raises RuntimeError when an input holds 13, and takes a second when
one holds 7 (it doubles its input otherwise), for the "a bug in a model" answers (HTTP 500,
gRPC INTERNAL) and for requests still in flight at shutdown. It saves and loads itself (the
``python`` flavor): loading it needs :data:`TRUST` (``LOOPLINE_TRUSTED_LOADERS`` =
:data:`LOADER` in a server process)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from loopline.bundle import LoadedModel, Signature, TensorSpec, Trust, load_model, save_model

LOADER = "tests.serving.faulty_model:Faulty"
TRUST = Trust(loaders=frozenset({LOADER}))
BUG = 13.0
SLOW = 7.0


class Faulty:
    def predict(self, x: Any) -> np.ndarray[Any, Any]:
        x = np.asarray(x)
        if (x == BUG).any():
            raise RuntimeError("unlucky input")
        if (x == SLOW).any():
            time.sleep(1.0)
        return x * 2

    def save(self, directory: Path) -> None:
        (directory / "faulty.json").write_text("{}")

    @classmethod
    def load(cls, directory: Path) -> Faulty:
        json.loads((directory / "faulty.json").read_text())
        return cls()


def save_faulty(root: Path) -> Path:
    """A :class:`Faulty` bundle saved as ``root/faulty``."""
    x = TensorSpec("x", "float64", (-1, 1))
    sig = Signature(inputs=(x,), outputs=(TensorSpec("predict", "float64", (-1, 1)),))
    return save_model(
        Faulty(), root / "faulty", signature=sig, flavor="python", input_example=np.ones((1, 1))
    )


def faulty_model(root: Path) -> LoadedModel:
    """A :class:`Faulty` saved under ``root`` and loaded."""
    return load_model(save_faulty(root), trust=TRUST)
