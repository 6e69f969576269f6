"""The taxi example's model, built with the example's own code on its real data (span 1).

``ColumnTransformer(StandardScaler, OneHotEncoder)`` + the example's ``train_fn``
(``HistGradientBoostingClassifier``), fitted on the January-March trips: the shape of most
tabular models, and the model of issue #12's latency goal.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from typing import Any

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "taxi"
NUMERIC = ["distance", "hour"]
CATEGORICAL = ["company", "local", "dow", "month"]


@functools.cache
def taxi() -> tuple[Any, Any, Any]:
    """``(pipeline, features frame, labels)``; the pipeline takes the raw feature columns."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    taxi_data, taxi_utils = _module("taxi_data"), _module("taxi_utils")
    trips = taxi_data.trips(*taxi_data.FIRST_MONTHS)
    x, y = trips.drop(columns=["tip"]), trips["tip"].to_numpy()
    transform = ColumnTransformer(
        [
            ("numeric", StandardScaler(), NUMERIC),
            (
                "categorical",
                OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                CATEGORICAL,
            ),
        ]
    ).fit(x)
    model = taxi_utils.train_fn(transform.transform(x), y, {})
    return Pipeline([("transform", transform), ("model", model)]), x, y


def _module(name: str) -> Any:
    """The example's module ``name``, loaded under a private name (not in ``sys.modules``,
    where the taxi pipeline test imports its own copy)."""
    spec = importlib.util.spec_from_file_location(f"_loopline_test_{name}", EXAMPLE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
