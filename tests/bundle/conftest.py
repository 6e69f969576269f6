"""Small fitted models for the bundle tests."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer


@pytest.fixture(scope="session")
def xy() -> tuple[np.ndarray, np.ndarray]:
    x, y = load_breast_cancer(return_X_y=True)
    return x[:200], y[:200]


@pytest.fixture(scope="session")
def frame() -> tuple[pd.DataFrame, Any]:
    rng = np.random.default_rng(0)
    df = pd.DataFrame(
        {
            "age": rng.integers(18, 90, 120).astype(np.int64),
            "fare": rng.random(120) * 100,
            "city": rng.choice(["paris", "lyon", "nice"], 120).astype(object),
            "member": rng.random(120) > 0.5,
        }
    )
    return df, ((df.fare > 50) ^ (df.city == "nice")).astype(np.int64)
