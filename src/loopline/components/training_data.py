"""What Trainer and Tuner share: reading a split as (raw frame, model input, labels)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from loopline.components.tables import read_split
from loopline.components.transform import dense, feature_columns, frame, load_fitted
from loopline.errors import InvalidInputError
from loopline.pipeline import Examples, Input, TransformGraph


@dataclass(frozen=True)
class TrainingData:
    """One split: the raw feature frame, what the model reads (transformed) and labels."""

    raw: Any
    x: Any
    y: np.ndarray[Any, Any]
    columns: list[str]


def load_split(
    examples: Input[Examples],
    split: str,
    label: str,
    transform: Any | None,
    columns: list[str] | None = None,
) -> TrainingData:
    """Read ``split``; apply the fitted ``transform`` when given."""
    table = read_split(examples.path, split, examples.properties)
    if label not in table.column_names:
        raise InvalidInputError(
            f"Label column {label!r} is not in split {split!r}; columns: {table.column_names}."
        )
    cols = columns if columns is not None else feature_columns(table, label, None)
    missing = [c for c in cols if c not in table.column_names]
    if missing:
        raise InvalidInputError(
            f"Split {split!r} lacks feature column(s) {missing}; columns: {table.column_names}."
        )
    raw = frame(table, cols)
    x = dense(transform.transform(raw)) if transform is not None else raw
    y = table.column(label).to_numpy(zero_copy_only=False)
    if table.column(label).null_count:
        raise InvalidInputError(
            f"Label column {label!r} has {table.column(label).null_count} null value(s) in "
            f"split {split!r}; drop those rows or fill the labels."
        )
    return TrainingData(raw=raw, x=x, y=y, columns=cols)


def fitted_transform(
    graph: Input[TransformGraph] | None,
) -> tuple[Any | None, list[str] | None]:
    """The fitted transform and the raw columns it reads, or (None, None)."""
    if graph is None:
        return None, None
    transformer, info = load_fitted(graph)
    return transformer, [str(c) for c in info["input_columns"]]
