"""Streaming the input files of a span as Arrow record batches, in bounded memory.

:func:`input_schema` settles the span's schema before any row is read: the column order of the
first file, each column's type promoted across files the way
``pa.concat_tables(promote_options="permissive")`` does (int64 in one file and double in
another is double), so that streaming yields exactly the rows and types the in-memory
:func:`loopline.components.tables.read_files` does. :func:`iter_batches` then reads one batch
at a time — CSV in blocks of ``csv_block_bytes``, Parquet by batches of a row group, Arrow IPC
by its record batches (memory-mapped) — and casts each to that schema.

CSV types are inferred from the first block of each file (Arrow's streaming reader), where
the in-memory reader looks at the whole file: a column that is empty or integral in the first
block and has other values later fails with an error naming the file and the column.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from loopline.components.tables import check_same_columns, file_format
from loopline.errors import InvalidInputError

CSV_BLOCK_BYTES = 4 << 20
"""Bytes of CSV text parsed per batch (and the sample its column types are inferred from)."""

_CSV_COLUMN = re.compile(r"CSV column #(\d+)")


def file_schema(
    path: Path, *, csv_block_bytes: int = CSV_BLOCK_BYTES, name: str | None = None
) -> pa.Schema:
    """The Arrow schema of one input file (called ``name`` in errors), without its rows."""
    shown = name if name is not None else str(path)
    fmt = file_format(path)
    try:
        if fmt == "csv":
            with _open_csv(path, csv_block_bytes) as reader:
                schema = reader.schema
        elif fmt == "parquet":
            schema = pq.read_schema(path)
        else:
            with _open_ipc(path) as (schema, _):
                pass
    except (pa.ArrowInvalid, pa.ArrowTypeError, OSError) as exc:
        raise InvalidInputError(
            f"Input file {shown!r} is not valid {fmt.upper()}: {exc}. Fix or remove it."
        ) from exc
    if len(schema) == 0:
        raise InvalidInputError(f"Input file {shown!r} has no columns.")
    return schema


def input_schema(
    root: Path, files: Sequence[str], *, csv_block_bytes: int = CSV_BLOCK_BYTES
) -> pa.Schema:
    """The schema every batch of the span is cast to (see the module docstring).

    Raises:
        InvalidInputError: a file cannot be read, its columns differ from the first file's, or
            a column's types cannot be promoted (naming the file and the column).
    """
    if not files:
        raise InvalidInputError("The span has no input files; check input_dir and pattern.")
    schemas = [file_schema(root / f, csv_block_bytes=csv_block_bytes, name=f) for f in files]
    first = schemas[0]
    check_same_columns(files, [s.names for s in schemas])
    ordered = [pa.schema([s.field(n) for n in first.names]) for s in schemas]
    unified = ordered[0]
    for f, s in zip(files[1:], ordered[1:], strict=True):
        try:
            unified = pa.unify_schemas([unified, s], promote_options="permissive")
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
            column = next(
                (n for n in first.names if not _promotable(unified.field(n), s.field(n))),
                None,
            )
            where = f"column {column!r} is {s.field(column).type} in {f!r} but " if column else ""
            was = f"{unified.field(column).type} in the files before it" if column else ""
            raise InvalidInputError(
                f"Input file {f!r} does not match the span's schema: {where}{was} ({exc}); "
                "give the column one type in every file."
            ) from exc
    return pa.schema([pa.field(f.name, f.type) for f in unified], metadata=first.metadata)


def iter_batches(
    root: Path,
    files: Sequence[str],
    schema: pa.Schema,
    *,
    batch_rows: int,
    csv_block_bytes: int = CSV_BLOCK_BYTES,
) -> Iterator[tuple[str, pa.RecordBatch]]:
    """``(file, batch)`` for every batch of every file, in order, cast to ``schema``.

    Raises:
        InvalidInputError: a batch cannot be parsed or cast (naming the file and column).
    """
    if batch_rows < 1:
        raise InvalidInputError(f"batch_rows={batch_rows} must be at least 1.")
    for f in files:
        path = root / f
        for batch in _file_batches(path, f, batch_rows, csv_block_bytes):
            yield f, _conform(batch, schema, f)


def _file_batches(
    path: Path, name: str, batch_rows: int, csv_block_bytes: int
) -> Iterator[pa.RecordBatch]:
    fmt = file_format(path)
    try:
        if fmt == "csv":
            with _open_csv(path, csv_block_bytes) as reader:
                columns = reader.schema.names
                while True:
                    try:
                        batch = reader.read_next_batch()
                    except StopIteration:
                        break
                    except pa.ArrowInvalid as exc:
                        raise _csv_error(name, columns, exc, csv_block_bytes) from exc
                    yield from _slices(batch, batch_rows)
        elif fmt == "parquet":
            with pq.ParquetFile(path, pre_buffer=False, buffer_size=1 << 20) as pf:
                for rg in range(pf.num_row_groups):
                    yield from pf.iter_batches(
                        batch_size=batch_rows, row_groups=[rg], use_threads=False
                    )
        else:
            with _open_ipc(path) as (_, batches):
                for batch in batches:
                    yield from _slices(batch, batch_rows)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OSError) as exc:
        raise InvalidInputError(
            f"Input file {name!r} is not valid {fmt.upper()}: {exc}. Fix or remove it."
        ) from exc


def _slices(batch: pa.RecordBatch, rows: int) -> Iterator[pa.RecordBatch]:
    for start in range(0, batch.num_rows, rows):
        yield batch.slice(start, rows)


def _conform(batch: pa.RecordBatch, schema: pa.Schema, name: str) -> pa.RecordBatch:
    if batch.schema.names == schema.names and batch.schema.equals(schema):
        return batch
    arrays = []
    for field in schema:
        column = batch.column(field.name)
        if column.type != field.type:
            try:
                column = column.cast(field.type)
            except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
                raise InvalidInputError(
                    f"Input file {name!r}: column {field.name!r} of type {column.type} cannot "
                    f"be cast to the span's type {field.type} ({exc}); give the column one "
                    "type in every file."
                ) from exc
        arrays.append(column)
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _promotable(a: pa.Field, b: pa.Field) -> bool:
    try:
        pa.unify_schemas([pa.schema([a]), pa.schema([b])], promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return False
    return True


def _csv_error(
    name: str, columns: list[str], exc: pa.ArrowInvalid, block: int
) -> InvalidInputError:
    match = _CSV_COLUMN.search(str(exc))
    if not match or int(match.group(1)) >= len(columns):
        return InvalidInputError(f"Input file {name!r} is not valid CSV: {exc}. Fix or remove it.")
    return InvalidInputError(
        f"Input file {name!r}: column {columns[int(match.group(1))]!r}: {exc}. Streaming infers "
        f"CSV column types from the first {block} bytes of a file; convert the file to Parquet "
        "with explicit types, or make the first rows show the column's type."
    )


class _open_csv:
    """``pyarrow.csv.open_csv`` as a context manager (closing the reader)."""

    def __init__(self, path: Path, block: int) -> None:
        self.reader = pacsv.open_csv(
            path, read_options=pacsv.ReadOptions(block_size=block, use_threads=False)
        )

    def __enter__(self) -> pacsv.CSVStreamingReader:
        return self.reader

    def __exit__(self, *exc: object) -> None:
        self.reader.close()


class _open_ipc:
    """An Arrow IPC file (or stream), memory-mapped: ``(schema, batches)``."""

    def __init__(self, path: Path) -> None:
        self.source = pa.memory_map(str(path), "r")
        try:
            file_reader = pa.ipc.open_file(self.source)
            self.schema = file_reader.schema
            self.batches: Iterator[pa.RecordBatch] = (
                file_reader.get_batch(i) for i in range(file_reader.num_record_batches)
            )
        except pa.ArrowInvalid:
            self.source.seek(0)
            stream = pa.ipc.open_stream(self.source)
            self.schema = stream.schema
            self.batches = iter(stream)

    def __enter__(self) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
        return self.schema, self.batches

    def __exit__(self, *exc: object) -> None:
        self.source.close()
