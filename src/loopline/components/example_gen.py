"""ExampleGen: read one or more spans of CSV/Parquet/Arrow files and split them.

Rows are assigned to splits by a hash of their content (or of ``partition_feature`` alone, so
that one entity never straddles splits): deterministic, independent of row order and of the
machine. Default split ratio train:eval = 2:1, as TFX. Each split is written as
``<split>.parquet``.

The span is streamed (:func:`stream_splits`): files are read a batch at a time
(:mod:`loopline.components.input_batches`), each row is hashed to its split, and each split is
appended to its Parquet file a row group at a time (:class:`SplitWriter`), so memory is bounded
by ``batch_rows`` rows per split plus one input batch, not by the size of the span. The result
is row for row and in order what reading the span into memory and calling :func:`split_table`
gives. The artifact's properties are ``span`` (the newest span read), ``version``, ``spans``,
``splits``, ``rows`` (per split), ``columns``, ``input_files`` and ``input_fingerprint``.

Caching: ExampleGen reads files outside the artifact store, so :func:`ExampleGen` computes a
content fingerprint of every matching file when the pipeline is defined and passes it as a
parameter: new or edited data changes the cache key. At run time the fingerprint is checked
again; data that changed in between fails the step rather than being cached under a stale key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from loopline.components.input_batches import CSV_BLOCK_BYTES, input_schema, iter_batches
from loopline.components.spans import discover, input_fingerprint, select_spans
from loopline.components.split_writer import SplitWriter
from loopline.errors import InvalidInputError
from loopline.pipeline import Examples, Output, Param, Step, StepContext, component
from loopline.types import Json, check_name

DEFAULT_SPLITS: dict[str, int] = {"train": 2, "eval": 1}
BATCH_ROWS = 262_144
"""Rows per input batch and per Parquet row group written (the memory knob)."""


def hash_buckets(table: pa.Table, key_columns: Sequence[str], total: int) -> np.ndarray[Any, Any]:
    """A bucket in ``[0, total)`` per row: BLAKE2b of the key columns' text, mod ``total``."""
    frame = pl.from_arrow(table.select(list(key_columns)))
    if not isinstance(frame, pl.DataFrame):  # pragma: no cover - select returns a table
        raise InvalidInputError("Expected a table when hashing rows.")
    keys = frame.select(
        pl.concat_str(
            [pl.col(c).cast(pl.Utf8).fill_null("\x00") for c in key_columns], separator="\x1f"
        ).alias("k")
    )["k"].to_list()
    blake2b = hashlib.blake2b
    digests = b"".join([blake2b(k.encode(), digest_size=8).digest() for k in keys])
    # The 8 digest bytes read big-endian, mod total: one vectorised step, not one per row.
    return (np.frombuffer(digests, dtype=">u8") % np.uint64(total)).astype(np.int64)


def check_splits(splits: Mapping[str, int]) -> None:
    """Raise InvalidInputError unless ``splits`` maps valid names to integer weights >= 1."""
    if not splits:
        raise InvalidInputError(
            "splits must name at least one split, e.g. {'train': 2, 'eval': 1}."
        )
    for name, weight in splits.items():
        check_name("Split", name)
        if isinstance(weight, bool) or not isinstance(weight, int) or weight < 1:
            raise InvalidInputError(
                f"Split {name!r} has weight {weight!r}; weights are integers >= 1."
            )


def key_columns(column_names: Sequence[str], partition_feature: str | None) -> list[str]:
    """The columns a row's bucket is hashed from: ``partition_feature``, else every column."""
    if partition_feature is not None and partition_feature not in column_names:
        raise InvalidInputError(
            f"partition_feature {partition_feature!r} is not a column; the columns are "
            f"{list(column_names)}."
        )
    return [partition_feature] if partition_feature else list(column_names)


def split_table(
    table: pa.Table, splits: Mapping[str, int], partition_feature: str | None = None
) -> dict[str, pa.Table]:
    """Split ``table`` by hash buckets in the ratio of ``splits`` (name → positive int)."""
    check_splits(splits)
    keys = key_columns(table.column_names, partition_feature)
    return assign(table, splits, keys)


def assign(
    table: pa.Table, splits: Mapping[str, int], keys: Sequence[str]
) -> dict[str, pa.Table]:
    """The rows of ``table`` per split, in order (``splits`` already checked)."""
    total = sum(splits.values())
    buckets = hash_buckets(table, keys, total) if table.num_rows else np.empty(0, np.int64)
    out: dict[str, pa.Table] = {}
    low = 0
    for name, weight in splits.items():
        mask = (buckets >= low) & (buckets < low + weight)
        out[name] = table.filter(pa.array(mask, type=pa.bool_()))
        low += weight
    return out


def stream_splits(
    root: Path,
    files: Sequence[str],
    directory: Path,
    splits: Mapping[str, int],
    partition_feature: str | None = None,
    *,
    batch_rows: int = BATCH_ROWS,
    csv_block_bytes: int = CSV_BLOCK_BYTES,
) -> SplitWriter:
    """Stream ``files`` (relative to ``root``) batch by batch into ``<directory>/<split>.parquet``.

    Every row lands in the split :func:`split_table` would put it in, in the same order, so
    the files hold exactly the rows of the in-memory path; memory is bounded by one batch plus
    one row group (``batch_rows`` rows) per split. Returns the closed writer (rows and row
    groups per split, the schema).
    """
    check_splits(splits)
    if batch_rows < 1:
        raise InvalidInputError(f"batch_rows={batch_rows} must be at least 1.")
    schema = input_schema(root, files, csv_block_bytes=csv_block_bytes)
    keys = key_columns(schema.names, partition_feature)
    with SplitWriter(directory, list(splits), schema, row_group_rows=batch_rows) as writer:
        for _, batch in iter_batches(
            root, files, schema, batch_rows=batch_rows, csv_block_bytes=csv_block_bytes
        ):
            writer.write(assign(pa.Table.from_batches([batch]), splits, keys))
    return writer


@component(name="ExampleGen")
def example_gen(
    examples: Output[Examples],
    ctx: StepContext,
    input_dir: str,
    pattern: str = "*.csv",
    span: int | None = None,
    span_range: list[int] | None = None,
    last_n_spans: int | None = None,
    splits: dict[str, int] | None = None,
    partition_feature: str | None = None,
    fingerprint: str | None = None,
    batch_rows: int = BATCH_ROWS,
) -> None:
    """Read the selected span(s) under ``input_dir`` and write hash-split Parquet files."""
    root = Path(input_dir)
    found = select_spans(
        discover(root, pattern), span=span, span_range=span_range, last_n=last_n_spans
    )
    if fingerprint is not None:
        now = input_fingerprint(root, pattern)
        if now != fingerprint:
            raise InvalidInputError(
                f"The files under {input_dir!r} changed after the pipeline was loaded "
                f"(fingerprint {now} != {fingerprint}); run the pipeline again."
            )
    files = [f for s in found for f in s.files]
    written = stream_splits(
        root,
        files,
        examples.path,
        splits or DEFAULT_SPLITS,
        partition_feature,
        batch_rows=batch_rows,
    )
    rows: dict[str, Json] = {name: n for name, n in written.rows.items()}
    newest = found[-1]
    examples.properties.update(
        span=newest.span,
        version=newest.version,
        spans=[s.span for s in found],
        splits=list(written.rows),
        rows=rows,
        columns=list(written.schema.names),
        input_files=list(files),
        input_fingerprint=fingerprint,
    )
    ctx.log_params(span=newest.span, rows_total=sum(written.rows.values()))


def ExampleGen(
    *,
    input_dir: str | Param,
    pattern: str | Param = "*.csv",
    span: int | Param | None = None,
    span_range: list[int] | Param | None = None,
    last_n_spans: int | Param | None = None,
    splits: dict[str, int] | Param | None = None,
    partition_feature: str | Param | None = None,
    batch_rows: int | Param = BATCH_ROWS,
    id: str = "ExampleGen",
) -> Step:
    """An ExampleGen step whose cache key includes the content of the input files.

    With a run-time ``Param`` for ``input_dir`` or ``pattern`` the files are unknown until the
    run, so the step is not cached (it always reads the data).
    """
    args: dict[str, Any] = {
        "input_dir": input_dir,
        "pattern": pattern,
        "span": span,
        "span_range": span_range,
        "last_n_spans": last_n_spans,
        "splits": splits,
        "partition_feature": partition_feature,
        "batch_rows": batch_rows,
    }
    dynamic = isinstance(input_dir, Param) or isinstance(pattern, Param)
    if not dynamic:
        args["fingerprint"] = input_fingerprint(str(input_dir), str(pattern))
    step = example_gen(**args).with_id(id)
    return step.with_options(cache=False) if dynamic else step
