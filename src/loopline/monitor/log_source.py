"""LogSource: the prediction and feedback segments of one model, read incrementally.

The layout is the model servers' (``loopline.serving.prediction_log``; pinned by a test that
writes with the server's writer and reads with this)::

    <root>/predictions/model=<name>/version=<version>/<utc-ts>-<pid>-<seq>.parquet
    <root>/feedback/model=<name>/version=<version>/<utc-ts>-<pid>-<seq>.parquet

Segments appear atomically (renamed into place); names starting with ``.`` are skipped. The
cursor is the set of segment paths already consumed (relative to the root): :meth:`pending`
returns the segments not in it and the consumed ones that no longer exist (rotated away), so
the cursor stays as small as the directory. Segments are read in name order (UTC time of the
flush, then writer pid and sequence): that is "log order" for windows of N rows.

Reading is vectorised: one Parquet read per segment, one concatenation, struct columns
unnested by Polars — no per-row Python.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from loopline.errors import InvalidInputError

STREAMS = ("predictions", "feedback")
KEYS = ("request_id", "row")


@dataclass(frozen=True, slots=True)
class Segment:
    """One Parquet segment: ``path`` is relative to the log root (the cursor's key)."""

    path: str
    stream: str
    version: str

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


@dataclass(frozen=True, slots=True)
class Predictions:
    """Logged predictions of one model version, in log order.

    ``keys``: ``request_id``, ``row``, ``ts`` (epoch seconds, float). ``inputs``: one column per
    scalar model input (tensor inputs are left out: they have no per-column drift).
    ``outputs``: one column per served method (``predict``; ``predict_proba`` a list column).
    """

    keys: pl.DataFrame
    inputs: pl.DataFrame
    outputs: pl.DataFrame

    @property
    def rows(self) -> int:
        return self.keys.height

    def slice(self, offset: int, length: int) -> Predictions:
        return Predictions(
            self.keys.slice(offset, length),
            self.inputs.slice(offset, length),
            self.outputs.slice(offset, length),
        )


class LogSource:
    """New segments of model ``model`` under ``root``."""

    def __init__(self, root: str | os.PathLike[str], model: str) -> None:
        self.root = Path(root)
        self.model = model

    def segments(self) -> list[Segment]:
        """Every visible segment of the model, both streams, in name order per stream."""
        found: list[Segment] = []
        for stream in STREAMS:
            base = self.root / stream / f"model={self.model}"
            if not base.is_dir():
                continue
            for folder in sorted(base.iterdir()):
                if not folder.name.startswith("version=") or not folder.is_dir():
                    continue
                version = folder.name.removeprefix("version=")
                for entry in os.scandir(folder):
                    if entry.name.startswith(".") or not entry.name.endswith(".parquet"):
                        continue
                    rel = f"{stream}/model={self.model}/{folder.name}/{entry.name}"
                    found.append(Segment(rel, stream, version))
        found.sort(key=lambda s: (s.stream, s.name, s.path))
        return found

    def pending(self, consumed: frozenset[str]) -> tuple[list[Segment], frozenset[str]]:
        """Segments not consumed yet (in log order), and consumed paths that are gone."""
        current = self.segments()
        seen = {s.path for s in current}
        new = [s for s in current if s.path not in consumed]
        return new, frozenset(p for p in consumed if p not in seen)

    def read_predictions(self, segments: Iterable[Segment]) -> Predictions:
        """The rows of these prediction segments (one version), concatenated in order."""
        frame = self._read([s for s in segments if s.stream == "predictions"])
        if frame is None:
            empty = pl.DataFrame(
                schema={"request_id": pl.String, "row": pl.Int32, "ts": pl.Float64}
            )
            return Predictions(empty, pl.DataFrame(), pl.DataFrame())
        keys = frame.select(
            "request_id", "row", (pl.col("ts").dt.epoch("us").cast(pl.Float64) / 1e6).alias("ts")
        )
        inputs = _unnest(frame, "inputs")
        scalar = [n for n, t in inputs.schema.items() if not isinstance(t, pl.List | pl.Array)]
        return Predictions(keys, inputs.select(scalar), _unnest(frame, "outputs"))

    def read_feedback(self, segments: Iterable[Segment]) -> pl.DataFrame:
        """``request_id``, ``row``, ``ts`` (epoch seconds) and ``label`` of these segments."""
        frame = self._read([s for s in segments if s.stream == "feedback"])
        if frame is None:
            return pl.DataFrame(
                schema={
                    "request_id": pl.String,
                    "row": pl.Int32,
                    "ts": pl.Float64,
                    "label": pl.String,
                }
            )
        return frame.select(
            "request_id",
            "row",
            (pl.col("ts").dt.epoch("us").cast(pl.Float64) / 1e6).alias("ts"),
            "label",
        )

    def _read(self, segments: list[Segment]) -> pl.DataFrame | None:
        if not segments:
            return None
        frames = []
        for s in segments:
            path = self.root / s.path
            try:
                frames.append(pl.from_arrow(pq.read_table(path)))
            except FileNotFoundError:
                continue  # rotated away between listing and reading: nothing to count
            except OSError as exc:
                raise InvalidInputError(
                    f"Log segment {str(path)!r} is not readable Parquet ({exc}); move it out of "
                    "the log directory to let the monitor continue."
                ) from exc
        tables = [f for f in frames if isinstance(f, pl.DataFrame)]
        if not tables:
            return None
        try:
            return pl.concat(tables, how="diagonal_relaxed")
        except pl.exceptions.PolarsError as exc:
            raise InvalidInputError(
                f"The log segments of model {self.model!r} under {str(self.root)!r} disagree on "
                f"their columns ({exc}); one version's inputs must keep one type."
            ) from exc


def _unnest(frame: pl.DataFrame, column: str) -> pl.DataFrame:
    if column not in frame.columns:
        return pl.DataFrame()
    return frame.get_column(column).struct.unnest()
