"""Transform's two passes over Parquet splits, in bounded memory where the transformer allows.

* **Analyze (fit)** — :func:`fit_transformer`, in one of three modes:

  - ``"full"`` (the default): ``fit`` on every train row at once. scikit-learn's ``fit``
    takes one in-memory frame, so memory grows with the train split: only the feature
    columns are read, but all of their rows.
  - ``"sample"``: ``fit`` on ``fit_rows`` train rows drawn uniformly without replacement
    (fixed seed), gathered batch by batch: memory is bounded by ``fit_rows``. The fit is an
    estimate from the sample (exact for transformers whose fit is; approximate for scalers'
    means and quantile binners).
  - ``"partial_fit"``: the transformer's own ``partial_fit`` on each batch in turn (e.g.
    ``StandardScaler``, ``MinMaxScaler``, ``MaxAbsScaler``): memory is one batch; a
    ``Pipeline`` or ``ColumnTransformer`` has no ``partial_fit`` and fails with a clear error.

* **Transform** — :func:`write_transformed` streams a split ``batch_rows`` at a time through
  ``transform`` and appends each batch to ``<split>.parquet`` with a ``ParquetWriter``: memory
  is one batch, and the rows are those of transforming the whole split at once (the per-row
  transforms scikit-learn's transformers apply).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from loopline.errors import ComponentError, InvalidInputError

FIT_MODES = ("full", "sample", "partial_fit")
BATCH_ROWS = 262_144
SEED = 0


def _open(path: Path) -> pq.ParquetFile:
    return pq.ParquetFile(path, pre_buffer=False, buffer_size=1 << 20)


def frame(table: pa.Table | pa.RecordBatch, columns: list[str]) -> Any:
    """A pandas DataFrame of ``columns`` (the form scikit-learn transformers take)."""
    return table.select(columns).to_pandas()


def dense(matrix: Any) -> np.ndarray[Any, Any]:
    """A dense float matrix from a transformer's output (sparse or not)."""
    if hasattr(matrix, "toarray"):
        matrix = matrix.toarray()
    return np.asarray(matrix, dtype=np.float64)


def fit_transformer(
    transformer: Any,
    train: Path,
    columns: list[str],
    *,
    mode: str = "full",
    fit_rows: int | None = None,
    batch_rows: int = BATCH_ROWS,
) -> int:
    """Fit ``transformer`` on the train split's ``columns``; returns the rows it saw.

    Raises:
        InvalidInputError: an unknown ``mode``, ``fit_rows`` missing or < 1 for ``"sample"``,
            or an empty train split.
        ComponentError: ``"partial_fit"`` for a transformer without ``partial_fit``, or the
            transformer's own fit raised.
    """
    if mode not in FIT_MODES:
        raise InvalidInputError(f"fit_mode={mode!r} is not one of {list(FIT_MODES)}.")
    if mode == "sample" and (fit_rows is None or fit_rows < 1):
        raise InvalidInputError(
            f"fit_mode='sample' needs fit_rows >= 1 (the rows to fit on); got {fit_rows!r}."
        )
    if mode == "partial_fit" and not callable(getattr(transformer, "partial_fit", None)):
        raise ComponentError(
            f"fit_mode='partial_fit' needs a transformer with partial_fit, and "
            f"{type(transformer).__name__} has none; use fit_mode='sample' with fit_rows, "
            "or 'full'."
        )
    with _open(train) as pf:
        total = int(pf.metadata.num_rows)
        if total == 0:
            raise InvalidInputError("The train split is empty; there is nothing to fit on.")
        try:
            if mode == "full":
                transformer.fit(frame(pf.read(columns=columns, use_threads=False), columns))
                return total
            batches = pf.iter_batches(batch_size=batch_rows, columns=columns, use_threads=False)
            if mode == "partial_fit":
                for batch in batches:
                    transformer.partial_fit(frame(batch, columns))
                return total
            assert fit_rows is not None
            chosen = _sample_rows(total, fit_rows)
            parts, start = [], 0
            for batch in batches:
                stop = start + batch.num_rows
                lo, hi = np.searchsorted(chosen, [start, stop])
                if hi > lo:
                    parts.append(batch.take(pa.array(chosen[lo:hi] - start)))
                start = stop
            sample = pa.Table.from_batches(parts)
            transformer.fit(frame(sample, columns))
            return int(sample.num_rows)
        except (InvalidInputError, ComponentError):
            raise
        except Exception as exc:
            raise ComponentError(
                f"Fitting the transformer raised {type(exc).__name__}: {exc}"
            ) from exc


def _sample_rows(total: int, rows: int) -> np.ndarray[Any, Any]:
    if rows >= total:
        return np.arange(total, dtype=np.int64)
    chosen = np.random.default_rng(SEED).choice(total, size=rows, replace=False)
    return np.sort(chosen).astype(np.int64)


def output_names(transformer: Any, train: Path, columns: list[str]) -> list[str]:
    """The transformer's output feature names (``f0, f1, …`` when it cannot name them)."""
    names_fn = getattr(transformer, "get_feature_names_out", None)
    if callable(names_fn):
        return [str(n) for n in names_fn()]
    with _open(train) as pf:
        first = next(pf.iter_batches(batch_size=1, columns=columns, use_threads=False))
    return [f"f{i}" for i in range(dense(transformer.transform(frame(first, columns))).shape[1])]


def write_transformed(
    transformer: Any,
    source: Path,
    target: Path,
    columns: list[str],
    out_names: list[str],
    label: str | None,
    *,
    batch_rows: int = BATCH_ROWS,
) -> tuple[int, int]:
    """Transform split file ``source`` batch by batch into ``target``; ``(rows, row_groups)``.

    The output has one float64 column per name in ``out_names`` plus ``label`` as it was.
    """
    if batch_rows < 1:
        raise InvalidInputError(f"batch_rows={batch_rows} must be at least 1.")
    read = [*columns, *([label] if label is not None and label not in columns else [])]
    with _open(source) as pf:
        label_type = _label_type(pf, label) if label is not None else None
        fields = [pa.field(n, pa.float64()) for n in out_names]
        if label is not None and label_type is not None:
            fields.append(pa.field(label, label_type))
        schema = pa.schema(fields)
        rows = groups = 0
        with pq.ParquetWriter(target, schema) as writer:
            for batch in pf.iter_batches(batch_size=batch_rows, columns=read, use_threads=False):
                try:
                    values = dense(transformer.transform(frame(batch, columns)))
                except Exception as exc:
                    raise ComponentError(
                        f"The fitted transformer raised {type(exc).__name__} on {source.name}: "
                        f"{exc}"
                    ) from exc
                if values.shape[1] != len(out_names):
                    raise ComponentError(
                        f"The transformer gave {values.shape[1]} features for a batch of "
                        f"{source.name} but {len(out_names)} names {out_names[:5]}…."
                    )
                arrays = [pa.array(values[:, i]) for i in range(len(out_names))]
                if label is not None and label_type is not None:
                    arrays.append(_label_values(batch.column(label), label_type))
                writer.write_table(pa.Table.from_arrays(arrays, schema=schema))
                rows += batch.num_rows
                groups += 1
    return rows, groups


def _label_type(pf: pq.ParquetFile, label: str) -> pa.DataType:
    """The type the label had when a whole split went through NumPy: an integer column
    with a null anywhere becomes float64 (NaN); every other type stays as NumPy gives it."""
    arrow = pf.schema_arrow.field(label).type
    empty = pa.array(pa.array([], arrow).to_numpy(zero_copy_only=False)).type
    if not pa.types.is_integer(arrow):
        return empty if not pa.types.is_null(empty) else arrow
    nulls = 0
    for batch in pf.iter_batches(batch_size=BATCH_ROWS, columns=[label], use_threads=False):
        nulls += batch.column(0).null_count
        if nulls:
            return pa.float64()
    return empty


def _label_values(column: pa.Array, label_type: pa.DataType) -> pa.Array:
    values = pa.array(column.to_numpy(zero_copy_only=False))
    return values if values.type == label_type else values.cast(label_type)
