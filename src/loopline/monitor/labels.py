"""Joining feedback labels to the predictions of the open windows, on ``(request_id, row)``.

A window's realised performance uses the labels of *its own* predictions that arrived before
it closed (NannyML's chunks of predictions, with what is known at the time). The open windows'
rows keep ``request_id``, ``row``, ``predict``, the positive-class ``score`` and the joined
``label`` (at most :data:`MAX_ROWS_PER_WINDOW` rows per window; beyond, rows are profiled but
neither label-joined nor CBPE-estimated). Feedback whose prediction has not been read yet waits
in ``pending`` (at most :data:`MAX_PENDING` rows, oldest dropped); feedback for a window that
already closed waits there too and is dropped with it — use a window longer than the label
delay, or the CBPE estimate, when labels are late.

Both tables travel in the monitor state's blob (Arrow IPC), committed with the cursor.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass

import numpy as np
import polars as pl

from loopline.monitor.evaluate import Labelled

MAX_ROWS_PER_WINDOW = 200_000
MAX_PENDING = 100_000
# A label belongs to a request, not to the replica that happened to receive the feedback
# post: a deployment's router sends ``…/feedback`` to any replica, whose log files it under
# *its* model version. So labels join predictions on (request_id, row) alone; a request the
# canary answered as a mirrored copy gets the same label as the stable's answer.
_KEYS = ["request_id", "row"]


def _rows_schema(value: type[pl.DataType]) -> dict[str, type[pl.DataType]]:
    return {
        "version": pl.String,
        "window": pl.Int64,
        "request_id": pl.String,
        "row": pl.Int32,
        "predict": value,
        "score": pl.Float64,
        "label": value,
    }


def _pending_schema(value: type[pl.DataType]) -> dict[str, type[pl.DataType]]:
    return {"version": pl.String, "request_id": pl.String, "row": pl.Int32, "label": value}


@dataclass(frozen=True, slots=True)
class LabelJoin:
    """The open windows' rows and the feedback waiting for its prediction."""

    rows: pl.DataFrame
    pending: pl.DataFrame
    dropped: int = 0  # pending feedback dropped over the cap, this tick

    @classmethod
    def empty(cls, numeric: bool) -> LabelJoin:
        value = pl.Float64 if numeric else pl.String
        return cls(
            pl.DataFrame(schema=_rows_schema(value)), pl.DataFrame(schema=_pending_schema(value))
        )

    @property
    def value_type(self) -> pl.DataType:
        return self.rows.schema["label"]

    def add_predictions(
        self,
        version: str,
        window: int,
        keys: pl.DataFrame,
        predict: pl.Series,
        score: pl.Series | None,
        already: int,
    ) -> LabelJoin:
        """Rows of ``window`` (which holds ``already`` rows); pending labels join them."""
        room = max(MAX_ROWS_PER_WINDOW - already, 0)
        if room == 0 or keys.height == 0:
            return self
        n = min(room, keys.height)
        new = (
            keys.head(n)
            .select(
                pl.lit(version, dtype=pl.String).alias("version"),
                pl.lit(window, dtype=pl.Int64).alias("window"),
                "request_id",
                pl.col("row").cast(pl.Int32),
            )
            .with_columns(
                predict.head(n).cast(self.value_type, strict=False).alias("predict"),
                (
                    pl.repeat(None, n, dtype=pl.Float64, eager=True)
                    if score is None
                    else score.head(n).cast(pl.Float64)
                ).alias("score"),
            )
        )
        new = new.join(self.pending.drop("version"), on=_KEYS, how="left").select(
            self.rows.columns
        )
        matched = new.filter(pl.col("label").is_not_null()).select(_KEYS)
        pending = self.pending.join(matched, on=_KEYS, how="anti")
        return LabelJoin(pl.concat([self.rows, new]), pending, self.dropped)

    def add_feedback(self, version: str, feedback: pl.DataFrame) -> LabelJoin:
        """Labels filed under ``version``: joined to the open rows of any version with the
        same (request_id, row), else kept pending (bounded)."""
        if feedback.height == 0:
            return self
        fb = feedback.select(
            pl.lit(version, dtype=pl.String).alias("version"),
            "request_id",
            pl.col("row").cast(pl.Int32),
            pl.col("label").cast(self.value_type, strict=False),
        ).unique(subset=_KEYS, keep="last", maintain_order=True)
        joined = self.rows.join(
            fb.drop("version").rename({"label": "new"}), on=_KEYS, how="left"
        )
        rows = joined.with_columns(pl.coalesce("new", "label").alias("label")).drop("new")
        unmatched = fb.join(self.rows.select(_KEYS), on=_KEYS, how="anti")
        pending = pl.concat([self.pending, unmatched])
        dropped = max(pending.height - MAX_PENDING, 0)
        return LabelJoin(rows, pending.tail(MAX_PENDING), self.dropped + dropped)

    def take(self, version: str, window: int) -> tuple[LabelJoin, pl.DataFrame]:
        """Remove and return the rows of one window (it closed)."""
        mask = (pl.col("version") == version) & (pl.col("window") == window)
        return LabelJoin(self.rows.filter(~mask), self.pending, self.dropped), self.rows.filter(
            mask
        )

    def rows_in(self, version: str, window: int) -> int:
        return self.rows.filter(
            (pl.col("version") == version) & (pl.col("window") == window)
        ).height

    def to_bytes(self) -> bytes:
        parts = []
        for frame in (self.rows, self.pending):
            buf = io.BytesIO()
            frame.write_ipc(buf)
            data = buf.getvalue()
            parts.append(struct.pack("<Q", len(data)) + data)
        return b"".join(parts)

    @classmethod
    def from_bytes(cls, blob: bytes | None, numeric: bool) -> LabelJoin:
        if not blob:
            return cls.empty(numeric)
        frames, pos = [], 0
        for _ in range(2):
            (size,) = struct.unpack_from("<Q", blob, pos)
            frames.append(pl.read_ipc(io.BytesIO(blob[pos + 8 : pos + 8 + size])))
            pos += 8 + size
        return cls(frames[0], frames[1])


def labelled(rows: pl.DataFrame) -> Labelled | None:
    """The labelled part of a closed window's rows."""
    done = rows.filter(pl.col("label").is_not_null())
    if done.height == 0:
        return None
    scores = done["score"]
    return Labelled(
        labels=done["label"].to_numpy(),
        predictions=done["predict"].to_numpy(),
        scores=None if scores.null_count() else np.asarray(scores.to_numpy(), dtype=np.float64),
    )
