"""User code of the taxi pipeline: preprocessing, training and the tuning search space.

These functions are hashed into the cache keys of Transform, Tuner and Trainer: editing one
re-runs exactly the steps that use it.
"""

from __future__ import annotations

from typing import Any

from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from loopline.data import Schema


def preprocessing_fn(schema: Schema) -> ColumnTransformer:
    """Scale numbers, one-hot encode strings (unknown categories at serving time → zeros)."""
    numeric = [f.name for f in schema.features if f.dtype.is_numeric]
    categorical = [f.name for f in schema.features if not f.dtype.is_numeric]
    return ColumnTransformer(
        [
            ("numeric", StandardScaler(), numeric),
            (
                "categorical",
                OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                categorical,
            ),
        ]
    )


def train_fn(x: Any, y: Any, hyperparameters: dict[str, Any]) -> HistGradientBoostingClassifier:
    """Gradient-boosted trees on the transformed features (seeded: reruns are identical)."""
    model = HistGradientBoostingClassifier(
        max_iter=int(hyperparameters.get("max_iter", 100)),
        learning_rate=float(hyperparameters.get("learning_rate", 0.05)),
        max_leaf_nodes=int(hyperparameters.get("max_leaf_nodes", 15)),
        early_stopping=False,
        random_state=0,
    )
    return model.fit(x, y)


def search_space(trial: Any) -> dict[str, Any]:
    """Boosting rounds, learning rate (log-uniform) and tree size."""
    return {
        "max_iter": trial.suggest_int("max_iter", 40, 120, step=20),
        "learning_rate": trial.suggest_float("learning_rate", 0.02, 0.2, log=True),
        "max_leaf_nodes": trial.suggest_int("max_leaf_nodes", 7, 31, step=8),
    }
