"""Transform: fit the user's preprocessing on the train split only, apply it to every split.

``preprocessing_fn(schema) -> transformer`` receives the ``loopline.data.Schema`` of the
feature columns (the label removed) and returns an *unfitted* scikit-learn transformer (e.g. a
``ColumnTransformer``) that takes a pandas DataFrame of those columns. Transform fits it on
``train`` only, saves it with skops (never pickle) as a TransformGraph and writes every split
transformed (``<split>.parquet``: output features plus the label). The Trainer puts the
fitted transform in front of the model in the saved bundle, so serving runs exactly the code
that training ran (no training/serving skew).

Memory (:mod:`loopline.components.transform_batches`): the transform pass streams every split
``batch_rows`` rows at a time into its Parquet file. The fit reads only the feature columns
of train; with ``fit_mode="full"`` (default) all their rows are in memory at once, because a
scikit-learn ``fit`` takes one frame. For splits bigger than memory use ``fit_mode="sample"``
with ``fit_rows`` (a fixed-seed uniform sample) or ``fit_mode="partial_fit"`` for
transformers that have ``partial_fit``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from loopline.bundle import sklearn_flavor, tree_digest
from loopline.components.example_validator import require_validated
from loopline.components.schema_gen import SCHEMA_FILE
from loopline.components.tables import split_path, splits_of
from loopline.components.transform_batches import (
    BATCH_ROWS,
    fit_transformer,
    output_names,
    write_transformed,
)
from loopline.components.transform_batches import dense as dense  # re-exported
from loopline.components.transform_batches import frame as frame  # re-exported
from loopline.components.user_code import bind, unbound
from loopline.data import Schema as DataSchema
from loopline.data import load_schema
from loopline.errors import ComponentError, InvalidInputError, NotFoundError
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
    return columns_of(table.column_names, label, exclude)


def columns_of(names: list[str], label: str | None, exclude: list[str] | None) -> list[str]:
    """:func:`feature_columns` from the column names alone (a split file's schema)."""
    if label is not None and label not in names:
        raise InvalidInputError(f"Label column {label!r} is not in the examples; columns: {names}.")
    drop = {label, *(exclude or [])}
    return [c for c in names if c not in drop]


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
    fit_mode: str = "full",
    fit_rows: int | None = None,
    batch_rows: int = BATCH_ROWS,
) -> None:
    """Fit ``preprocessing_fn``'s transformer on train, transform every split."""
    require_validated(anomalies)
    splits = splits_of(examples.properties, examples.path)
    if "train" not in splits or not split_path(examples.path, "train").is_file():
        raise NotFoundError(f"The examples have no split 'train'; they have {list(splits)}.")
    train_path = split_path(examples.path, "train")
    columns = columns_of(pq.read_schema(train_path).names, label, exclude_columns)
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
    fitted_rows = fit_transformer(
        transformer, train_path, columns, mode=fit_mode, fit_rows=fit_rows, batch_rows=batch_rows
    )
    out_names = output_names(transformer, train_path, columns)
    rows: dict[str, int] = {}
    for split in splits:
        rows[split], _ = write_transformed(
            transformer,
            split_path(examples.path, split),
            split_path(transformed_examples.path, split),
            columns,
            out_names,
            label,
            batch_rows=batch_rows,
        )
    files = sklearn_flavor.save(transformer, transform_graph.path)
    info = {
        "input_columns": columns,
        "label": label,
        "output_features": out_names or [],
        "fitted_on": "train",
        "fit_mode": fit_mode,
        "fitted_rows": fitted_rows,
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
    fit_mode: str = "full",
    fit_rows: int | None = None,
    batch_rows: int = BATCH_ROWS,
    id: str = "Transform",
) -> Step:
    """A Transform step running ``preprocessing_fn`` (hashed into the cache key).

    ``fit_mode`` is ``"full"`` (fit on all train rows in memory), ``"sample"`` (on
    ``fit_rows`` of them) or ``"partial_fit"`` (batch by batch); the transform pass always
    streams ``batch_rows`` rows at a time (:mod:`loopline.components.transform_batches`).
    """
    comp: Component = bind(transform_template, _PREPROCESSING_FN=preprocessing_fn)
    return comp(
        examples=examples,
        schema=schema,
        label=label,
        exclude_columns=exclude_columns,
        anomalies=anomalies,
        fit_mode=fit_mode,
        fit_rows=fit_rows,
        batch_rows=batch_rows,
    ).with_id(id)
