"""Writing the splits of an Examples artifact incrementally, one Parquet row group at a time.

A :class:`SplitWriter` holds one ``pyarrow.parquet.ParquetWriter`` per split (``<split>.parquet``
in the artifact's staging directory, which the artifact store publishes atomically) and a
buffer of at most ``row_group_rows`` rows per split: memory is bounded by one input batch plus
one row group per split, whatever the size of the span.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

import pyarrow as pa
import pyarrow.parquet as pq

from loopline.components.tables import split_path
from loopline.errors import InvalidInputError

COMPRESSION = "zstd"


class SplitWriter:
    """Append rows to split files; use as a context manager (``close`` finishes every file)."""

    def __init__(
        self, directory: Path, splits: list[str], schema: pa.Schema, *, row_group_rows: int
    ) -> None:
        if row_group_rows < 1:
            raise InvalidInputError(f"row_group_rows={row_group_rows} must be at least 1.")
        self.schema = schema
        self.row_group_rows = row_group_rows
        self.rows: dict[str, int] = dict.fromkeys(splits, 0)
        self.row_groups: dict[str, int] = dict.fromkeys(splits, 0)
        self._buffers: dict[str, list[pa.RecordBatch]] = {s: [] for s in splits}
        self._buffered: dict[str, int] = dict.fromkeys(splits, 0)
        self._writers = {
            s: pq.ParquetWriter(split_path(directory, s), schema, compression=COMPRESSION)
            for s in splits
        }

    def write(self, parts: Mapping[str, pa.RecordBatch | pa.Table]) -> None:
        """Append each split's rows; full row groups go to disk."""
        for split, part in parts.items():
            if part.num_rows == 0:
                continue
            batches = part.to_batches() if isinstance(part, pa.Table) else [part]
            self._buffers[split].extend(batches)
            self._buffered[split] += part.num_rows
            self.rows[split] += part.num_rows
            while self._buffered[split] >= self.row_group_rows:
                self._flush(split, self.row_group_rows)

    def close(self) -> None:
        """Write what is buffered and finish every file (an empty split is a valid file)."""
        for split, writer in self._writers.items():
            if self._buffered[split]:
                self._flush(split, self._buffered[split])
            writer.close()

    def __enter__(self) -> SplitWriter:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if kind is None:
            self.close()
        else:  # the step failed: close the files; the staging directory is discarded
            for writer in self._writers.values():
                writer.close()

    def _flush(self, split: str, rows: int) -> None:
        table = pa.Table.from_batches(self._buffers[split], schema=self.schema)
        self._writers[split].write_table(table.slice(0, rows), row_group_size=rows)
        self.row_groups[split] += 1
        rest = table.slice(rows)
        self._buffers[split] = rest.combine_chunks().to_batches() if rest.num_rows else []
        self._buffered[split] = rest.num_rows
