"""Prediction and feedback logs: Parquet segments written off the request path.

Layout under the log directory (read it with :func:`loopline.serving.read_prediction_logs`)::

    predictions/model=<name>/version=<version>/<utc-ts>-<pid>-<seq>.parquet
    feedback/model=<name>/version=<version>/<utc-ts>-<pid>-<seq>.parquet

Prediction rows: ``request_id`` (str), ``row`` (int32, index within the request), ``ts``
(timestamp µs UTC), ``model``, ``version`` (str), ``inputs`` (struct: one field per signature
input; a ``[-1, n]`` tensor is a fixed-size list), ``outputs`` (struct: one field per served
method). Feedback rows: ``request_id``, ``row``, ``ts``, ``model``, ``version``, ``label``
(typed like the model's ``predict`` output). One row per input row, so the monitor joins
predictions and labels on ``(request_id, row)``.

Segments appear atomically (written as ``.tmp-*`` then renamed); readers skip dot-files.
They hold clients' inputs and labels, so they are private to the server's user: each file is
created 0600 (before a byte is written) and every folder the writer creates is 0700 (a folder
that exists already, such as the log directory an operator made, is left as it is).
The request path only appends a reference to an in-memory buffer bounded in rows
(``LogOptions.buffer_rows``) and in bytes (``LogOptions.buffer_bytes``, counted by
:func:`record_bytes`), so a few huge requests cannot hold much memory; when either bound would
be passed the record is dropped and counted, never waited for. Half the byte budget wakes the
writer early.

Segments do not live for ever: the predictions writer rotates the whole log directory on its
own thread (``LogOptions.max_bytes``, ``max_age``; see :mod:`loopline.serving.log_rotation`),
so a reader holding a cursor must treat a listed segment that has disappeared as rotated.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from loopline.serving.log_rotation import (
    SEGMENT_STAMP,
    STREAMS,
    RotationReason,
    RotationResult,
    rotate,
)
from loopline.serving.options import LogOptions

log = logging.getLogger(__name__)

__all__ = ["STREAMS", "LogRecord", "Refusal", "SegmentWriter", "build_table", "record_bytes"]

FILE_MODE = 0o600  # a segment: only the server's user reads clients' inputs and labels
DIR_MODE = 0o700  # a folder the writer creates for segments


def private_dirs(path: Path) -> None:
    """Create ``path`` and its missing parents, each :data:`DIR_MODE` whatever the umask; a
    folder that exists already is left as it is (another writer may create it meanwhile)."""
    missing: list[Path] = []
    while not path.is_dir():
        missing.append(path)
        path = path.parent
    for folder in reversed(missing):
        try:
            os.mkdir(folder, DIR_MODE)
        except FileExistsError:
            continue
        os.chmod(folder, DIR_MODE)


def _private_file(path: Path) -> None:
    """Create the empty file ``path`` with :data:`FILE_MODE` (the Parquet writer then opens
    it again, truncating it, which keeps its mode)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)


@dataclass(frozen=True, slots=True)
class LogRecord:
    """One logged request: its columns are arrays with ``rows`` rows."""

    request_id: str
    ts: float
    model: str
    version: str
    rows: int
    columns: Mapping[str, Mapping[str, np.ndarray[Any, Any]]]  # "inputs"/"outputs"/"label"


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a writer did not buffer a record.

    Attributes:
        reason: a clause naming the cause and the bound (``the feedback log's buffer holds
            100000 of its 100000 rows until the next write``).
        retry_after: seconds after which the same record may be accepted; None when it never
            fits (it alone passes a buffer bound): send it in smaller parts.
    """

    reason: str
    retry_after: int | None


def record_bytes(record: LogRecord) -> int:
    """The bytes ``record`` holds in the buffer: its arrays' data, plus the characters of
    string (object) arrays, whose data is only pointers, plus its request id."""
    total = len(record.request_id)
    for part in record.columns.values():
        for arr in part.values():
            total += arr.nbytes
            if arr.dtype.kind == "O":
                total += sum(len(v) for v in arr.flat if isinstance(v, str | bytes))
    return total


def _arrow(arr: np.ndarray[Any, Any]) -> pa.Array:
    if arr.ndim == 1:
        if arr.dtype.kind == "O":
            return pa.array(arr.tolist(), type=pa.string())
        return pa.array(arr)
    inner = int(np.prod(arr.shape[1:]))
    flat = arr.reshape(len(arr), inner)
    return pa.FixedSizeListArray.from_arrays(_arrow(flat.reshape(-1)), inner)


def _struct(parts: list[Mapping[str, np.ndarray[Any, Any]]]) -> pa.Array:
    names = list(parts[0].keys())
    fields = [_arrow(np.concatenate([p[n] for p in parts])) for n in names]
    return pa.StructArray.from_arrays(fields, names=names)


def build_table(records: list[LogRecord]) -> pa.Table:
    """The Arrow table of a list of records of one (model, version)."""
    rows = [r.rows for r in records]
    total = sum(rows)
    ids = np.repeat(np.array([r.request_id for r in records], dtype=object), rows)
    row_idx = np.concatenate([np.arange(n, dtype=np.int32) for n in rows])
    ts = np.repeat(np.array([int(r.ts * 1e6) for r in records], dtype=np.int64), rows)
    data: dict[str, pa.Array] = {
        "request_id": pa.array(ids.tolist(), type=pa.string()),
        "row": pa.array(row_idx),
        "ts": pa.array(ts, type=pa.timestamp("us", tz="UTC")),
        "model": pa.array([records[0].model] * total, type=pa.string()),
        "version": pa.array([records[0].version] * total, type=pa.string()),
    }
    for key in records[0].columns:
        parts = [r.columns[key] for r in records]
        if key == "label":
            data[key] = _arrow(np.concatenate([p["label"] for p in parts]))
        else:
            data[key] = _struct(list(parts))
    return pa.table(data)


class SegmentWriter:
    """A bounded buffer of records and the thread that writes them as Parquet segments.

    With ``rotates=True`` the same thread also rotates the whole log directory (at start and
    every ``options.rotate_seconds``); a server gives that job to one of its writers.
    """

    def __init__(
        self,
        directory: Path,
        stream: str,
        options: LogOptions,
        *,
        rotates: bool = False,
        on_written: Callable[[int], None] = lambda n: None,
        on_dropped: Callable[[int], None] = lambda n: None,
        on_rotated: Callable[[RotationReason, int], None] = lambda reason, n: None,
    ) -> None:
        self.directory = Path(directory)
        self.root = self.directory / stream
        self.options = options
        self.rotates = rotates
        self._on_written = on_written
        self._on_dropped = on_dropped
        self._on_rotated = on_rotated
        self._last_rotation: float | None = None  # time.monotonic() of the last pass
        self._lock = threading.Lock()
        self._pending: list[LogRecord] = []
        self._rows = 0
        self._bytes = 0
        self._failed_at: float | None = None  # time.monotonic() of the last failed write
        self._failure = ""
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._seq = itertools.count()
        self.written = 0
        self.dropped = 0
        self.rotated_segments = 0
        self.rotated_bytes = 0

    def start(self) -> None:
        private_dirs(self.root)
        self._thread = threading.Thread(
            target=self._loop, name=f"loopline-{self.root.name}-log", daemon=True
        )
        self._thread.start()

    @property
    def buffered_bytes(self) -> int:
        """Bytes (:func:`record_bytes`) of the records buffered now."""
        return self._bytes

    def offer(self, record: LogRecord) -> bool:
        """Buffer ``record`` unless :meth:`admit` refuses it (then it is dropped and counted).
        Never blocks long: the lock only guards an append."""
        return self.admit(record) is None

    def admit(self, record: LogRecord) -> Refusal | None:
        """Buffer ``record`` and return None; or drop and count it and return why: the writer
        is closed, its last write failed less than ``flush_seconds`` ago (the disk is full or
        gone; the next write tries again), or the record would pass ``buffer_rows`` or
        ``buffer_bytes``."""
        size = record_bytes(record)
        options = self.options
        with self._lock:
            refusal = self._refusal(record.rows, size, time.monotonic())
            if refusal is not None:
                self.dropped += record.rows
            else:
                self._pending.append(record)
                self._rows += record.rows
                self._bytes += size
                flush_now = (
                    self._rows >= options.flush_rows or 2 * self._bytes >= options.buffer_bytes
                )
        if refusal is not None:
            self._on_dropped(record.rows)
            return refusal
        if flush_now:
            self._wake.set()
        return None

    def _refusal(self, rows: int, size: int, tick: float) -> Refusal | None:
        """Why a record of ``rows`` rows and ``size`` bytes cannot be buffered now (under the
        lock); ``tick``: ``time.monotonic()``."""
        o, stream = self.options, self.root.name
        if rows > o.buffer_rows or size > o.buffer_bytes:
            return Refusal(
                f"one request of {rows} rows and {size} bytes is more than the {stream} log "
                f"buffers at most ({o.buffer_rows} rows, {o.buffer_bytes} bytes)",
                None,
            )
        if self._stop.is_set():
            return Refusal(f"the {stream} log is closed: the server is shutting down", 1)
        if self._failed_at is not None and tick - self._failed_at < o.flush_seconds:
            return Refusal(
                f"the last write of the {stream} log failed ({self._failure}); the next one "
                "tries again",
                max(1, math.ceil(o.flush_seconds)),
            )
        if self._rows + rows > o.buffer_rows:
            return Refusal(
                f"the {stream} log's buffer holds {self._rows} of its {o.buffer_rows} rows "
                "until the next write",
                1,
            )
        if self._bytes + size > o.buffer_bytes:
            return Refusal(
                f"the {stream} log's buffer holds {self._bytes} of its {o.buffer_bytes} bytes "
                "until the next write",
                1,
            )
        return None

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._maybe_rotate()
            self._wake.wait(self.options.flush_seconds)
            self._wake.clear()
            self.flush()
        self.flush()

    def _maybe_rotate(self) -> None:
        if not self.rotates:
            return
        tick = time.monotonic()
        if self._last_rotation is None or tick - self._last_rotation >= self.options.rotate_seconds:
            self._last_rotation = tick
            self.rotate(time.time())

    def rotate(self, now: float) -> RotationResult:
        """Delete the log directory's segments beyond ``max_bytes`` or older than ``max_age``
        at ``now`` (seconds since the epoch), counting them; never raises (a failure is
        logged and the next pass tries again)."""
        try:
            result = rotate(
                self.directory,
                max_bytes=self.options.max_bytes,
                max_age=self.options.max_age,
                now=now,
            )
        except OSError:
            log.exception("Could not rotate the prediction logs under %s.", self.directory)
            return RotationResult()
        for reason in RotationReason:
            n = sum(1 for d in result.deleted if d.reason is reason)
            if n:
                self._on_rotated(reason, n)
        self.rotated_segments += len(result.deleted)
        self.rotated_bytes += result.deleted_bytes
        return result

    def flush(self) -> None:
        """Write everything buffered now (called by the writer thread and on close)."""
        with self._lock:
            records, self._pending, self._rows, self._bytes = self._pending, [], 0, 0
        groups: dict[tuple[str, str], list[LogRecord]] = {}
        for rec in records:
            groups.setdefault((rec.model, rec.version), []).append(rec)
        for (model, version), recs in groups.items():
            n = sum(r.rows for r in recs)
            try:
                self._write(model, version, build_table(recs))
            except Exception as exc:  # disk full, bad data: count the loss, keep serving
                log.exception("Could not write %d %s log rows; dropping them.", n, self.root.name)
                with self._lock:  # refuse records for a while: they would be lost too
                    self._failed_at, self._failure = time.monotonic(), _describe(exc)
                self.dropped += n
                self._on_dropped(n)
                continue
            with self._lock:
                self._failed_at = None
            self.written += n
            self._on_written(n)

    def _write(self, model: str, version: str, table: pa.Table) -> None:
        folder = self.root / f"model={model}" / f"version={version}"
        private_dirs(folder)
        stamp = datetime.now(UTC).strftime(SEGMENT_STAMP)
        name = f"{stamp}-{os.getpid()}-{next(self._seq)}.parquet"
        tmp = folder / f".tmp-{name}"
        try:
            _private_file(tmp)
            pq.write_table(table, tmp)
            os.replace(tmp, folder / name)
        finally:
            tmp.unlink(missing_ok=True)

    def close(self, timeout: float = 10.0) -> None:
        """Stop the thread after a final flush (waits at most ``timeout`` seconds)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        else:
            self.flush()


def _describe(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= 200 else text[:200] + "…"


def now() -> float:
    return time.time()
