"""Read prediction and feedback logs into Polars (the monitor's entry point)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import polars as pl

from loopline.errors import InvalidInputError, NotFoundError

_BASE: dict[str, Any] = {
    "request_id": pl.String,
    "row": pl.Int32,
    "ts": pl.Datetime("us", "UTC"),
    "model": pl.String,
    "version": pl.String,
}


def _read(
    directory: str | os.PathLike[str], stream: str, model: str | None, version: str | None
) -> pl.DataFrame:
    root = Path(directory)
    if not root.is_dir():
        raise NotFoundError(f"No log directory at {str(root)!r}.")
    pattern = f"model={model or '*'}/version={version or '*'}/*.parquet"
    files = sorted(p for p in (root / stream).glob(pattern) if not p.name.startswith("."))
    if not files:
        return pl.DataFrame(schema=_BASE)
    frames = []
    for path in files:
        try:
            frames.append(pl.read_parquet(path))
        except FileNotFoundError:
            continue  # rotated away (LogOptions.max_bytes/max_age) since it was listed
    if not frames:
        return pl.DataFrame(schema=_BASE)
    try:
        return pl.concat(frames, how="diagonal_relaxed").sort("ts", "request_id", "row")
    except pl.exceptions.PolarsError as exc:
        raise InvalidInputError(
            f"The {stream} logs under {str(root)!r} mix models whose inputs differ ({exc}); "
            "pass model= (and version=) to read one at a time."
        ) from exc


def read_prediction_logs(
    directory: str | os.PathLike[str], *, model: str | None = None, version: str | None = None
) -> pl.DataFrame:
    """All logged predictions under ``directory`` (optionally of one model/version).

    Columns: ``request_id, row, ts, model, version, inputs (struct), outputs (struct)``,
    sorted by time. Unnest with ``df.unnest("inputs")``.

    Raises:
        NotFoundError: ``directory`` does not exist.
    """
    return _read(directory, "predictions", model, version)


def read_feedback(
    directory: str | os.PathLike[str], *, model: str | None = None, version: str | None = None
) -> pl.DataFrame:
    """All feedback labels: ``request_id, row, ts, model, version, label``."""
    return _read(directory, "feedback", model, version)
