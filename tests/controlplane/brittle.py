"""A model that breaks in production: it answers only inputs inside the range it was fitted
on and raises on anything else, so its warm-up (a training row) passes and real traffic gets
500s. Saved with the ``python`` flavor; replicas import it as
``tests.controlplane.brittle:Brittle``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


class OutOfRange(RuntimeError):
    """A feature outside the fitted range (a bug in the model, so the server answers 500)."""


class Brittle:
    """Predicts the label of the nearest fitted row; raises on rows outside the fitted box."""

    def __init__(self, rows: np.ndarray[Any, Any], labels: np.ndarray[Any, Any]) -> None:
        self.rows = rows
        self.labels = labels

    @classmethod
    def fit(cls, x: np.ndarray[Any, Any], y: np.ndarray[Any, Any]) -> Brittle:
        return cls(np.asarray(x, dtype=np.float64), np.asarray(y))

    def predict(self, x: Any) -> np.ndarray[Any, Any]:
        x = np.asarray(x, dtype=np.float64)
        low, high = self.rows.min(axis=0), self.rows.max(axis=0)
        if ((x < low) | (x > high)).any():
            raise OutOfRange("a feature is outside the range this model was fitted on")
        d = ((x[:, None, :] - self.rows[None, :, :]) ** 2).sum(axis=2)
        return np.asarray(self.labels[d.argmin(axis=1)])

    def save(self, directory: Path) -> None:
        np.save(directory / "rows.npy", self.rows, allow_pickle=False)
        np.save(directory / "labels.npy", self.labels, allow_pickle=False)

    @classmethod
    def load(cls, directory: Path) -> Brittle:
        return cls(
            np.load(directory / "rows.npy", allow_pickle=False),
            np.load(directory / "labels.npy", allow_pickle=False),
        )
