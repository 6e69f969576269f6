"""ExampleGen: read one or more spans of CSV/Parquet/Arrow files and split them.

Rows are assigned to splits by a hash of their content (or of ``partition_feature`` alone, so
that one entity never straddles splits): deterministic, independent of row order and of the
machine. Default split ratio train:eval = 2:1, as TFX. Each split is written as
``<split>.parquet``; the artifact's properties are ``span`` (the newest span read),
``version``, ``spans``, ``splits``, ``rows`` (per split), ``columns``, ``input_files`` and
``input_fingerprint``.

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
import pyarrow.parquet as pq

from loopline.components.spans import discover, input_fingerprint, select_spans
from loopline.components.tables import read_files, split_path
from loopline.errors import InvalidInputError
from loopline.pipeline import Examples, Output, Param, Step, StepContext, component
from loopline.types import Json, check_name

DEFAULT_SPLITS: dict[str, int] = {"train": 2, "eval": 1}


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
    out = np.empty(len(keys), dtype=np.int64)
    for i, k in enumerate(keys):
        h = hashlib.blake2b(k.encode(), digest_size=8).digest()
        out[i] = int.from_bytes(h, "big") % total
    return out


def split_table(
    table: pa.Table, splits: Mapping[str, int], partition_feature: str | None = None
) -> dict[str, pa.Table]:
    """Split ``table`` by hash buckets in the ratio of ``splits`` (name → positive int)."""
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
    if partition_feature is not None and partition_feature not in table.column_names:
        raise InvalidInputError(
            f"partition_feature {partition_feature!r} is not a column; the columns are "
            f"{table.column_names}."
        )
    keys = [partition_feature] if partition_feature else table.column_names
    total = sum(splits.values())
    buckets = hash_buckets(table, keys, total) if table.num_rows else np.empty(0, np.int64)
    out: dict[str, pa.Table] = {}
    low = 0
    for name, weight in splits.items():
        mask = (buckets >= low) & (buckets < low + weight)
        out[name] = table.filter(pa.array(mask, type=pa.bool_()))
        low += weight
    return out


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
    table = read_files(root, files)
    parts = split_table(table, splits or DEFAULT_SPLITS, partition_feature)
    rows: dict[str, Json] = {}
    for name, part in parts.items():
        pq.write_table(part, split_path(examples.path, name), compression="zstd")
        rows[name] = part.num_rows
    newest = found[-1]
    examples.properties.update(
        span=newest.span,
        version=newest.version,
        spans=[s.span for s in found],
        splits=list(parts),
        rows=rows,
        columns=table.column_names,
        input_files=list(files),
        input_fingerprint=fingerprint,
    )
    ctx.log_params(span=newest.span, rows_total=table.num_rows)


def ExampleGen(
    *,
    input_dir: str | Param,
    pattern: str | Param = "*.csv",
    span: int | Param | None = None,
    span_range: list[int] | Param | None = None,
    last_n_spans: int | Param | None = None,
    splits: dict[str, int] | Param | None = None,
    partition_feature: str | Param | None = None,
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
    }
    dynamic = isinstance(input_dir, Param) or isinstance(pattern, Param)
    if not dynamic:
        args["fingerprint"] = input_fingerprint(str(input_dir), str(pattern))
    step = example_gen(**args).with_id(id)
    return step.with_options(cache=False) if dynamic else step
