"""Find one request in the prediction logs by its request id (``x-request-id`` / V2 ``id``).

The logs are not indexed by request id: a search scans the ``request_id`` column of every
segment with Polars' lazy Parquet scan (only that column and the four small ones beside it
are read, the filter is pushed into the scan; Parquet statistics skip row groups whose
min/max exclude the id), then reads the matching rows' inputs and outputs from the one or
two segments that hold them. ``benchmarks/lineage_prediction.py`` measures it on a million
logged rows. Segments of different models have different ``inputs``/``outputs`` structs, so
the scan never touches those columns.

A segment that rotation deletes between listing and reading is skipped by listing again
(at most three times).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl

from loopline.errors import InvalidInputError, NotFoundError

_KEYS: dict[str, Any] = {  # the columns every segment of every model has
    "request_id": pl.String,
    "row": pl.Int32,
    "ts": pl.Datetime("us", "UTC"),
    "model": pl.String,
    "version": pl.String,
}
_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class LoggedRequest:
    """One logged request: its rows as they were answered (and labelled, if feedback came).

    ``inputs``/``outputs``/``labels`` hold one mapping (or label value) per row, in row
    order; ``labels`` is empty until feedback for the request arrives.
    """

    request_id: str
    model: str
    version: str
    ts: datetime
    segments: tuple[Path, ...]
    inputs: tuple[Mapping[str, Any], ...]
    outputs: tuple[Mapping[str, Any], ...]
    labels: tuple[Any, ...] = ()

    @property
    def rows(self) -> int:
        return len(self.outputs)


def segments(directory: str | os.PathLike[str], stream: str) -> list[Path]:
    """The published Parquet segments of ``stream`` under ``directory`` (no dot-files)."""
    root = Path(directory) / stream
    return sorted(
        p for p in root.glob("model=*/version=*/*.parquet") if not p.name.startswith(".")
    )


def find_request(directory: str | os.PathLike[str], request_id: str) -> LoggedRequest:
    """The logged prediction with ``request_id`` under ``directory`` and its feedback labels.

    Raises:
        InvalidInputError: ``request_id`` is empty or not a string.
        NotFoundError: no prediction log segment holds it; the message names the directory
            searched and how many segments it held.
    """
    if not isinstance(request_id, str) or not request_id:
        raise InvalidInputError(
            f"Request id {request_id!r} is not valid; pass the x-request-id header or the V2 "
            "response 'id' of the prediction."
        )
    root = Path(directory)
    hits, searched = _scan(root, "predictions", request_id)
    if hits.is_empty():
        where = root / "predictions"
        held = f"{searched} segment{'s' if searched != 1 else ''}" if searched else "no segments"
        raise NotFoundError(
            f"No logged prediction has request id {request_id!r}: searched {str(where)!r} "
            f"({held}). The server logs only a sample of requests when --log-sample-rate < 1, "
            "rotation deletes old segments, and a request is written a few seconds after it "
            "was answered; check the id and the deployment's log directory."
        )
    rows = _rows(hits)
    labels, _ = _scan(root, "feedback", request_id)
    label_rows = _rows(labels) if not labels.is_empty() else pl.DataFrame()
    first = hits.row(0, named=True)
    return LoggedRequest(
        request_id=request_id,
        model=str(first["model"]),
        version=str(first["version"]),
        ts=first["ts"],
        segments=tuple(sorted({Path(p) for p in hits["segment"].to_list()})),
        inputs=tuple(_struct_rows(rows, "inputs")),
        outputs=tuple(_struct_rows(rows, "outputs")),
        labels=tuple(label_rows["label"].to_list()) if "label" in label_rows.columns else (),
    )


def _scan(root: Path, stream: str, request_id: str) -> tuple[pl.DataFrame, int]:
    """(the key columns of the rows with ``request_id`` plus their ``segment``, the number of
    segments searched)."""
    for attempt in range(_ATTEMPTS):
        files = segments(root, stream)
        if not files:
            return pl.DataFrame(), 0
        try:
            found = (
                pl.scan_parquet(
                    files,
                    schema=_KEYS,
                    extra_columns="ignore",  # inputs/outputs/label differ between models
                    hive_partitioning=False,  # model/version are columns of every segment
                    glob=False,
                    include_file_paths="segment",
                )
                .filter(pl.col("request_id") == request_id)
                .collect()
            )
        except (FileNotFoundError, pl.exceptions.ComputeError):
            if attempt + 1 == _ATTEMPTS or all(f.exists() for f in files):
                raise
            continue  # a segment was rotated away since the listing
        return found, len(files)
    raise AssertionError("unreachable")  # pragma: no cover


def _rows(hits: pl.DataFrame) -> pl.DataFrame:
    """Every column of the rows in ``hits``, read from their own segments, in row order."""
    frames: list[pl.DataFrame] = []
    request_id = hits["request_id"][0]
    for segment in sorted(set(hits["segment"].to_list())):
        try:
            frame = pl.read_parquet(segment).filter(pl.col("request_id") == request_id)
        except FileNotFoundError:
            continue  # rotated since the scan
        frames.append(frame)
    if not frames:
        return pl.DataFrame()
    return pl.concat(frames, how="diagonal_relaxed").sort("row")


def _struct_rows(frame: pl.DataFrame, column: str) -> Sequence[Mapping[str, Any]]:
    if column not in frame.columns:
        return []
    return [dict(v) if isinstance(v, Mapping) else {"value": v} for v in frame[column].to_list()]
