"""Profiling Arrow data: one vectorised pass per column, in bounded memory for big inputs.

* :func:`profile_table` profiles an Arrow table (or a Polars frame).
* :func:`profile_batches` profiles an iterable of record batches and merges as it goes, so
  memory is bounded by one batch plus the (small) profile.
* :func:`profile_parquet` streams a Parquet file through :func:`profile_batches`.

Histogram edges come from ``reference`` when one is given (the way a current window is
counted on the reference's buckets). Otherwise they are the ``bins``-quantiles of the data
itself (estimated on a fixed-seed sample of at most 100,000 values), and for batches, of the
first batch: every later batch is counted on those same edges, so merging stays exact.
Numeric columns with at most ``max_atoms`` distinct values also keep every value's count
(:mod:`loopline.data.atoms`): decided by the edge sample, or by the reference having atoms.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TypeAlias

import numpy as np
import numpy.typing as npt
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from loopline.data.atoms import MAX_ATOMS, count_atoms, few_distinct
from loopline.data.buckets import scan
from loopline.data.counts import MAX_EXACT, SKETCH_SIZE, categorical_stats
from loopline.data.merge import merge
from loopline.data.profile import DType, FeatureProfile, NumericStats, Profile
from loopline.errors import InvalidInputError

BINS = 20
EDGE_SAMPLE = 100_000

Table: TypeAlias = "pa.Table | pa.RecordBatch | pl.DataFrame"


def dtype_of(name: str, arrow_type: pa.DataType) -> DType | None:
    """The logical type of an Arrow type; None for the ``null`` type (an all-null column)."""
    t = arrow_type.value_type if pa.types.is_dictionary(arrow_type) else arrow_type
    if pa.types.is_null(t):
        return None
    if pa.types.is_boolean(t):
        return DType.BOOL
    if pa.types.is_integer(t):
        return DType.INT
    if pa.types.is_floating(t):
        return DType.FLOAT
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return DType.STRING
    raise InvalidInputError(
        f"Column {name!r} has Arrow type {arrow_type}, which loopline.data cannot profile; "
        "cast it to an integer, float, string or bool column first."
    )


def profile_table(
    table: Table,
    reference: Profile | None = None,
    *,
    bins: int = BINS,
    max_exact: int = MAX_EXACT,
    sketch_size: int = SKETCH_SIZE,
    max_atoms: int = MAX_ATOMS,
) -> Profile:
    """Profile every column of ``table``.

    Args:
        table: an Arrow table or record batch, or a Polars data frame.
        reference: count numeric columns on this profile's histogram edges (and take the type
            of an all-null column from it); None computes edges from ``table``.
        bins: number of equal-mass buckets when edges are computed (two of them open tails).
        max_exact: categorical features keep exact counts up to this many distinct values.
        sketch_size: Misra–Gries counters kept beyond ``max_exact``.
        max_atoms: numeric columns keep exact value counts up to this many distinct values.

    Raises:
        InvalidInputError: a column has a type that cannot be profiled, or ``bins`` < 2.
    """
    if bins < 2:
        raise InvalidInputError(f"bins={bins} is too small; use at least 2 histogram buckets.")
    if isinstance(table, pl.DataFrame):
        table = table.to_arrow()
    if isinstance(table, pa.RecordBatch):
        table = pa.Table.from_batches([table])
    if not isinstance(table, pa.Table):
        raise InvalidInputError(
            f"Cannot profile a {type(table).__name__}; pass a pyarrow Table or RecordBatch, "
            "or a Polars DataFrame."
        )
    ref_edges = reference.edges() if reference is not None else {}
    ref_atoms = {
        f.name: f.numeric.atoms is not None
        for f in (reference.features if reference is not None else ())
        if f.numeric is not None
    }
    features = []
    for name, column in zip(table.column_names, table.columns, strict=True):
        dtype = dtype_of(name, column.type)
        if dtype is None and reference is not None and reference.get(name) is not None:
            dtype = reference[name].dtype
        atoms = ref_atoms.get(name) if name in ref_edges else None
        features.append(
            _feature(
                name,
                column,
                dtype,
                ref_edges.get(name),
                atoms,
                bins,
                max_exact,
                sketch_size,
                max_atoms,
            )
        )
    return Profile(num_rows=table.num_rows, features=tuple(features))


def profile_splits(
    splits: Mapping[str, Table],
    reference_split: str = "train",
    *,
    bins: int = BINS,
    max_exact: int = MAX_EXACT,
    sketch_size: int = SKETCH_SIZE,
    max_atoms: int = MAX_ATOMS,
) -> dict[str, Profile]:
    """Profile every split; all are counted on the histogram edges of ``reference_split``.

    Raises:
        InvalidInputError: ``reference_split`` is not one of the splits.
    """
    if reference_split not in splits:
        raise InvalidInputError(
            f"Reference split {reference_split!r} is not among the splits {sorted(splits)}; "
            "name the split the schema is inferred from."
        )
    ref = profile_table(
        splits[reference_split],
        bins=bins,
        max_exact=max_exact,
        sketch_size=sketch_size,
        max_atoms=max_atoms,
    )
    return {
        name: ref
        if name == reference_split
        else profile_table(
            table,
            ref,
            bins=bins,
            max_exact=max_exact,
            sketch_size=sketch_size,
            max_atoms=max_atoms,
        )
        for name, table in splits.items()
    }


def profile_batches(
    batches: Iterable[pa.RecordBatch | pa.Table],
    reference: Profile | None = None,
    *,
    bins: int = BINS,
    max_exact: int = MAX_EXACT,
    sketch_size: int = SKETCH_SIZE,
    max_atoms: int = MAX_ATOMS,
) -> Profile:
    """Profile a stream of batches with the same columns, merging as it goes.

    Without ``reference`` the first batch's quantiles fix the histogram edges for all.

    Raises:
        InvalidInputError: the stream is empty, or a batch's columns differ from the first's.
    """
    total: Profile | None = None
    for batch in batches:
        part = profile_table(
            batch,
            reference if reference is not None else total,
            bins=bins,
            max_exact=max_exact,
            sketch_size=sketch_size,
            max_atoms=max_atoms,
        )
        if total is not None and part.names != total.names:
            raise InvalidInputError(
                f"A batch has columns {list(part.names)}, but the first batch had "
                f"{list(total.names)}; every batch of one profile needs the same columns."
            )
        total = (
            part
            if total is None
            else merge(
                total, part, max_exact=max_exact, sketch_size=sketch_size, max_atoms=max_atoms
            )
        )
    if total is None:
        raise InvalidInputError("There were no batches to profile; pass at least one batch.")
    return total


def profile_parquet(
    path: str | os.PathLike[str],
    reference: Profile | None = None,
    *,
    batch_rows: int = 262_144,
    bins: int = BINS,
    max_exact: int = MAX_EXACT,
    sketch_size: int = SKETCH_SIZE,
    max_atoms: int = MAX_ATOMS,
) -> Profile:
    """Profile a Parquet file ``batch_rows`` rows at a time (bounded memory).

    Parquet decodes a row group at a time, so peak memory is about one row group plus the
    profile: write big files with row groups of ~100k rows.

    Raises:
        InvalidInputError: the file does not exist or is not Parquet.
    """
    if batch_rows < 1:
        raise InvalidInputError(f"batch_rows={batch_rows} must be at least 1.")
    p = Path(path)
    if not p.is_file():
        raise InvalidInputError(f"There is no Parquet file at {str(p)!r}; check the path.")
    try:
        # No pre-buffering, a 1 MiB read buffer: memory stays about one row group decoded.
        pf = pq.ParquetFile(p, pre_buffer=False, buffer_size=1 << 20)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InvalidInputError(f"{str(p)!r} is not a readable Parquet file: {exc}") from exc
    with pf:
        if pf.metadata.num_rows == 0:
            return profile_table(pf.schema_arrow.empty_table(), reference, bins=bins)
        return profile_batches(
            pf.iter_batches(batch_size=batch_rows, use_threads=False),
            reference,
            bins=bins,
            max_exact=max_exact,
            sketch_size=sketch_size,
            max_atoms=max_atoms,
        )


def _feature(
    name: str,
    column: pa.ChunkedArray,
    dtype: DType | None,
    edges: tuple[float, ...] | None,
    ref_atoms: bool | None,
    bins: int,
    max_exact: int,
    sketch_size: int,
    max_atoms: int,
) -> FeatureProfile:
    rows = len(column)
    nulls = column.null_count
    if dtype is None:  # all-null column of Arrow type null and no reference: call it string
        dtype = DType.STRING
        column = pa.chunked_array([], type=pa.string())
    if dtype.is_numeric:
        values = _floats(column, nulls)
        num = _numeric(values, edges, bins, ref_atoms, max_atoms)
        return FeatureProfile(name, dtype, rows, nulls, numeric=num)
    col = column.drop_null() if nulls else column
    if pa.types.is_dictionary(col.type):
        col = col.cast(col.type.value_type)
    if dtype is DType.BOOL:
        col = pc.if_else(col, "true", "false") if len(col) else pa.chunked_array([], pa.string())
    vc = (
        pc.value_counts(col)
        if len(col)
        else pa.StructArray.from_arrays(
            [pa.array([], pa.string()), pa.array([], pa.int64())], names=["values", "counts"]
        )
    )
    uniques = vc.field("values").cast(pa.large_string())
    counts = vc.field("counts").cast(pa.int64())
    lengths = pc.utf8_length(uniques).cast(pa.int64()) if len(uniques) else counts
    total_length = int(pc.sum(pc.multiply(lengths, counts)).as_py() or 0)
    frame = pl.DataFrame({"value": pl.Series(uniques), "count": pl.Series(counts)}).cast(
        {"value": pl.String, "count": pl.Int64}
    )
    cat = categorical_stats(
        frame,
        count=len(col),
        total_length=total_length,
        max_exact=max_exact,
        sketch_size=sketch_size,
    )
    return FeatureProfile(name, dtype, rows, nulls, categorical=cat)


def _floats(column: pa.ChunkedArray, nulls: int) -> npt.NDArray[np.float64]:
    col = column.drop_null() if nulls else column
    if pa.types.is_dictionary(col.type):
        col = col.cast(col.type.value_type)
    if col.type != pa.float64():
        col = col.cast(pa.float64())
    if col.num_chunks == 1:
        return np.asarray(col.chunk(0).to_numpy(zero_copy_only=False), dtype=np.float64)
    return np.asarray(col.to_numpy(), dtype=np.float64)


def _numeric(
    x: npt.NDArray[np.float64],
    edges: tuple[float, ...] | None,
    bins: int,
    ref_atoms: bool | None,
    max_atoms: int,
) -> NumericStats:
    nan_count = inf_count = 0
    total = float(x.sum())
    if not np.isfinite(total):  # a finite sum means no NaN/inf (else: overflow, also fine)
        finite = np.isfinite(x)
        n_finite = int(np.count_nonzero(finite))
        nan_count = int(np.count_nonzero(np.isnan(x)))
        inf_count = len(x) - n_finite - nan_count
        x = x[finite]
        total = float(x.sum())
    n = len(x)
    want_atoms = bool(ref_atoms)
    if edges is None:
        sample = _edge_sample(x)
        edges = _quantile_edges(sample, bins)
        want_atoms = few_distinct(sample, max_atoms)
    if n == 0:
        zero = (0,) * (len(edges) + 1)
        return NumericStats(
            0,
            nan_count,
            inf_count,
            0,
            float("nan"),
            0.0,
            float("nan"),
            float("nan"),
            edges,
            zero,
            (0.0,) * len(zero),
            atoms=() if want_atoms else None,
            atom_counts=() if want_atoms else None,
        )
    mean = total / n
    counts, sums, m2, zeros = scan(x, edges, mean)
    atoms = count_atoms(x, max_atoms) if want_atoms else None
    return NumericStats(
        count=n,
        nan_count=nan_count,
        inf_count=inf_count,
        zeros=zeros,
        mean=mean,
        m2=m2,
        min=float(x.min()),
        max=float(x.max()),
        edges=edges,
        bucket_counts=tuple(int(c) for c in counts),
        bucket_sums=tuple(float(s) for s in sums),
        atoms=None if atoms is None else atoms[0],
        atom_counts=None if atoms is None else atoms[1],
    )


def _edge_sample(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    if len(x) > EDGE_SAMPLE:
        return x[np.random.default_rng(0).integers(0, len(x), EDGE_SAMPLE)]
    return x


def _quantile_edges(sample: npt.NDArray[np.float64], bins: int) -> tuple[float, ...]:
    if len(sample) == 0:
        return ()
    qs = np.quantile(sample, np.linspace(0.0, 1.0, bins + 1)[1:-1])
    return tuple(float(e) for e in np.unique(qs))
