"""Transform: fit the user's preprocessing on the train split only, apply it to every split.

``preprocessing_fn(schema) -> transformer`` receives the ``loopline.data.Schema`` of the
feature columns (the label removed) and returns an *unfitted* scikit-learn transformer (e.g. a
``ColumnTransformer``) that takes a pandas DataFrame of those columns. Transform fits it on
``train`` only, saves it with skops (never pickle) as a TransformGraph and writes every split
transformed (``<split>.parquet``: output features plus the label). The Trainer puts the
fitted transform in front of the model in the saved bundle, so serving runs exactly the code
that training ran (no training/serving skew).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from loopline.bundle import sklearn_flavor, tree_digest
from loopline.components.example_validator import require_validated
from loopline.components.schema_gen import SCHEMA_FILE
from loopline.components.tables import read_split, split_path, splits_of
from loopline.components.user_code import bind, unbound
from loopline.data import Schema as DataSchema
from loopline.data import load_schema
from loopline.errors import ComponentError, InvalidInputError
from loopline.pipeline import (
    Component,
    ExampleAnomalies,
    Examples,
    Input,
    Output,
    Schema,
    Step,
    StepContext,
    TransformGraph,
    component,
)

GRAPH_FILE = "transform.json"
_PREPROCESSING_FN = unbound("preprocessing_fn")


def feature_columns(table: pa.Table, label: str | None, exclude: list[str] | None) -> list[str]:
    """The columns a model reads: all but the label and ``exclude``."""
    if label is not None and label not in table.column_names:
        raise InvalidInputError(
            f"Label column {label!r} is not in the examples; columns: {table.column_names}."
        )
    drop = {label, *(exclude or [])}
    return [c for c in table.column_names if c not in drop]


def frame(table: pa.Table, columns: list[str]) -> Any:
    """A pandas DataFrame of ``columns`` (the form scikit-learn transformers take)."""
    return table.select(columns).to_pandas()


def load_fitted(graph: Input[TransformGraph]) -> tuple[Any, dict[str, Any]]:
    """The fitted transformer and its description; the bytes are checked against the
    artifact's recorded digest before skops reads them."""
    if graph.digest is not None and tree_digest(graph.path) != graph.digest:
        raise InvalidInputError(
            f"TransformGraph {graph.uri!r} does not match its recorded digest {graph.digest}; "
            "refusing to load it."
        )
    info: dict[str, Any] = json.loads((graph.path / GRAPH_FILE).read_text())
    return sklearn_flavor.load(graph.path), info


def dense(matrix: Any) -> np.ndarray[Any, Any]:
    """A dense float matrix from a transformer's output (sparse or not)."""
    if hasattr(matrix, "toarray"):
        matrix = matrix.toarray()
    return np.asarray(matrix, dtype=np.float64)


@component(name="Transform")
def transform_template(
    examples: Input[Examples],
    schema: Input[Schema],
    transform_graph: Output[TransformGraph],
    transformed_examples: Output[Examples],
    ctx: StepContext,
    label: str | None = None,
    exclude_columns: list[str] | None = None,
    anomalies: Input[ExampleAnomalies] | None = None,
) -> None:
    """Fit ``preprocessing_fn``'s transformer on train, transform every split."""
    require_validated(anomalies)
    train = read_split(examples.path, "train", examples.properties)
    columns = feature_columns(train, label, exclude_columns)
    full = load_schema(schema.path / SCHEMA_FILE)
    feature_schema = DataSchema(tuple(f for f in full.features if f.name in columns))
    try:
        transformer = _PREPROCESSING_FN(feature_schema)
    except Exception as exc:
        raise ComponentError(f"preprocessing_fn raised {type(exc).__name__}: {exc}") from exc
    if not callable(getattr(transformer, "fit", None)) or not callable(
        getattr(transformer, "transform", None)
    ):
        raise ComponentError(
            f"preprocessing_fn returned {transformer!r}; it must return an unfitted "
            "scikit-learn transformer (with fit and transform)."
        )
    if train.num_rows == 0:
        raise InvalidInputError("The train split is empty; there is nothing to fit on.")
    transformer.fit(frame(train, columns))
    names_fn = getattr(transformer, "get_feature_names_out", None)
    splits = splits_of(examples.properties, examples.path)
    rows: dict[str, int] = {}
    out_names: list[str] | None = None
    for split in splits:
        table = train if split == "train" else read_split(examples.path, split, examples.properties)
        values = dense(transformer.transform(frame(table, columns)))
        if out_names is None:
            out_names = (
                [str(n) for n in names_fn()]
                if callable(names_fn)
                else [f"f{i}" for i in range(values.shape[1])]
            )
        arrays = {n: values[:, i] for i, n in enumerate(out_names)}
        if label is not None:
            arrays[label] = table.column(label).to_numpy(zero_copy_only=False)
        pq.write_table(pa.table(arrays), split_path(transformed_examples.path, split))
        rows[split] = table.num_rows
    files = sklearn_flavor.save(transformer, transform_graph.path)
    info = {
        "input_columns": columns,
        "label": label,
        "output_features": out_names or [],
        "fitted_on": "train",
        "fitted_rows": train.num_rows,
        "files": files,
        "transformer": type(transformer).__name__,
    }
    (transform_graph.path / GRAPH_FILE).write_text(json.dumps(info, indent=2))
    transform_graph.properties.update(
        input_columns=list(columns), output_features=len(out_names or []), label=label
    )
    transformed_examples.properties.update(
        splits=list(splits),
        rows=dict(rows),
        span=examples.properties.get("span"),
        transformed=True,
    )
    ctx.log_params(transform_outputs=len(out_names or []))


def Transform(
    *,
    examples: Any,
    schema: Any,
    preprocessing_fn: Callable[..., Any],
    label: str | None = None,
    exclude_columns: list[str] | None = None,
    anomalies: Any = None,
    id: str = "Transform",
) -> Step:
    """A Transform step running ``preprocessing_fn`` (hashed into the cache key)."""
    comp: Component = bind(transform_template, _PREPROCESSING_FN=preprocessing_fn)
    return comp(
        examples=examples,
        schema=schema,
        label=label,
        exclude_columns=exclude_columns,
        anomalies=anomalies,
    ).with_id(id)
