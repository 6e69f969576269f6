"""A model of "another framework": it saves and loads itself (NumPy arrays, no pickle)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


class Centroids:
    """Nearest-centroid classifier on numeric features."""

    def __init__(self, centroids: np.ndarray[Any, Any], labels: np.ndarray[Any, Any]) -> None:
        self.centroids = centroids
        self.classes_ = labels

    @classmethod
    def fit(cls, x: np.ndarray[Any, Any], y: np.ndarray[Any, Any]) -> Centroids:
        labels = np.unique(y)
        return cls(np.stack([x[y == c].mean(axis=0) for c in labels]), labels)

    def predict(self, x: Any) -> np.ndarray[Any, Any]:
        x = np.asarray(x, dtype=np.float64)
        d = ((x[:, None, :] - self.centroids[None, :, :]) ** 2).sum(axis=2)
        return np.asarray(self.classes_[d.argmin(axis=1)])

    def save(self, directory: Path) -> None:
        np.save(directory / "centroids.npy", self.centroids, allow_pickle=False)
        labels = np.asarray(self.classes_)
        if labels.dtype == object:  # strings: store as fixed-width text, never pickled
            labels = labels.astype(str)
        np.save(directory / "labels.npy", labels, allow_pickle=False)

    @classmethod
    def load(cls, directory: Path) -> Centroids:
        return cls(
            np.load(directory / "centroids.npy", allow_pickle=False),
            np.load(directory / "labels.npy", allow_pickle=False),
        )
