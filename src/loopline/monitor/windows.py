"""Tumbling windows per model version: how new rows split into windows, and the open window.

* ``{rows: N}``: windows of exactly N rows in log order (segment name order, then row order).
* ``{duration: D}``: window ``k`` holds the rows with ``k·D <= ts < (k+1)·D`` (epoch-aligned,
  UTC). A window closes when a row of a later window is read, or when ``now`` passes its end
  plus the lateness allowance (segments are flushed every few seconds). A row read after its
  window closed counts in the open window: nothing is dropped, nothing is counted twice.

The open window keeps only mergeable state: its row count, first/last ``ts`` and the profiles
of its inputs and of the ``predict`` output, counted on the reference's bucket edges — a few
KB, persisted every tick. The planners are pure functions.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from loopline.data import Profile, merge, profile_from_json, profile_to_json
from loopline.monitor.rules import RuleState
from loopline.types import JsonDict

DEFAULT_LATENESS_S = 15.0


@dataclass(frozen=True, slots=True)
class OpenWindow:
    """The window of one model version that is still filling."""

    index: int = 0
    rows: int = 0
    start_ts: float | None = None
    end_ts: float | None = None
    bucket: int | None = None  # duration windows: k of [k·D, (k+1)·D)
    inputs: Profile | None = None
    prediction: Profile | None = None

    def add(
        self, rows: int, ts_min: float, ts_max: float, inputs: Profile, prediction: Profile | None
    ) -> OpenWindow:
        """This window with ``rows`` more rows whose profiles are ``inputs``/``prediction``."""
        return replace(
            self,
            rows=self.rows + rows,
            start_ts=ts_min if self.start_ts is None else min(self.start_ts, ts_min),
            end_ts=ts_max if self.end_ts is None else max(self.end_ts, ts_max),
            inputs=inputs if self.inputs is None else merge(self.inputs, inputs),
            prediction=_merged(self.prediction, prediction),
        )

    def next(self, bucket: int | None = None) -> OpenWindow:
        """The empty window after this one."""
        return OpenWindow(index=self.index + 1, bucket=bucket)

    def to_dict(self) -> JsonDict:
        return {
            "index": self.index,
            "rows": self.rows,
            "start_ts": self.start_ts,
            "end_ts": self.end_ts,
            "bucket": self.bucket,
            "inputs": None if self.inputs is None else json.loads(profile_to_json(self.inputs)),
            "prediction": None
            if self.prediction is None
            else json.loads(profile_to_json(self.prediction)),
        }

    @classmethod
    def from_dict(cls, d: JsonDict) -> OpenWindow:
        def prof(key: str) -> Profile | None:
            value = d.get(key)
            return None if value is None else profile_from_json(json.dumps(value))

        start, end, bucket = d.get("start_ts"), d.get("end_ts"), d.get("bucket")
        return cls(
            index=int(d["index"]),  # type: ignore[arg-type]
            rows=int(d["rows"]),  # type: ignore[arg-type]
            start_ts=None if start is None else float(start),  # type: ignore[arg-type]
            end_ts=None if end is None else float(end),  # type: ignore[arg-type]
            bucket=None if bucket is None else int(bucket),  # type: ignore[arg-type]
            inputs=prof("inputs"),
            prediction=prof("prediction"),
        )


def _merged(a: Profile | None, b: Profile | None) -> Profile | None:
    if a is None:
        return b
    if b is None:
        return a
    return merge(a, b)


@dataclass(frozen=True, slots=True)
class Piece:
    """Rows ``[start, start + length)`` of a batch go to the open window; ``closes``: the window
    is complete after them. ``bucket``: duration windows, the window this piece belongs to."""

    start: int
    length: int
    closes: bool
    bucket: int | None = None


def plan_rows(open_rows: int, new_rows: int, size: int) -> list[Piece]:
    """Split ``new_rows`` rows over windows of ``size`` rows, the open one holding
    ``open_rows``: the first piece fills it, then whole windows, then the rest stays open."""
    pieces: list[Piece] = []
    start, room = 0, size - open_rows
    while start < new_rows:
        length = min(room, new_rows - start)
        pieces.append(Piece(start, length, closes=length == room))
        start += length
        room = size
    return pieces


def buckets(ts: npt.NDArray[np.float64], duration: float) -> npt.NDArray[np.int64]:
    """The duration window of each timestamp (epoch-aligned)."""
    return np.floor(ts / duration).astype(np.int64)


def plan_duration(
    open_bucket: int | None, row_buckets: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.int64], list[Piece]]:
    """Order rows by window and cut them into pieces, one per window.

    Returns the row order to apply (a stable sort by window, late rows moved into the open
    window) and the pieces over the reordered rows. A piece ``closes`` when a later window
    follows it; the last piece stays open (time closes it: :func:`due`).
    """
    b = row_buckets.copy()
    if open_bucket is not None:
        np.maximum(b, open_bucket, out=b)  # late rows count in the open window
    order = np.argsort(b, kind="stable")
    b = b[order]
    if len(b) == 0:
        return order, []
    cuts = np.flatnonzero(np.diff(b)) + 1
    starts = np.concatenate(([0], cuts))
    ends = np.concatenate((cuts, [len(b)]))
    pieces = [
        Piece(int(s), int(e - s), closes=i < len(starts) - 1, bucket=int(b[s]))
        for i, (s, e) in enumerate(zip(starts, ends, strict=True))
    ]
    return order, pieces


def due(window: OpenWindow, duration: float, now: float, lateness: float) -> bool:
    """A duration window with rows is complete once ``now`` is past its end plus lateness."""
    if window.bucket is None or window.rows == 0:
        return False
    return now >= (window.bucket + 1) * duration + lateness


def window_bounds(window: OpenWindow, duration: float | None) -> tuple[float, float]:
    """The window's start and end: its bucket's for duration windows, else first/last row."""
    if duration is not None and window.bucket is not None:
        return window.bucket * duration, (window.bucket + 1) * duration
    start = window.start_ts if window.start_ts is not None else math.nan
    end = window.end_ts if window.end_ts is not None else math.nan
    return start, end


@dataclass
class VersionState:
    """One model version's part of the state (mutable while a tick runs)."""

    open: OpenWindow = field(default_factory=lambda: OpenWindow())
    rules: dict[str, RuleState] = field(default_factory=dict)
    prediction_reference: Profile | None = None
    next_bucket: int | None = None  # duration windows: the first bucket still open

    def to_dict(self) -> JsonDict:
        pref = self.prediction_reference
        return {
            "open": self.open.to_dict(),
            "rules": {k: v.to_dict() for k, v in self.rules.items()},
            "prediction_reference": None if pref is None else profile_to_json(pref),
            "next_bucket": self.next_bucket,
        }

    @classmethod
    def from_dict(cls, d: Any) -> VersionState:
        pref = d.get("prediction_reference")
        return cls(
            OpenWindow.from_dict(d["open"]),
            {k: RuleState.from_dict(v) for k, v in d["rules"].items()},
            None if pref is None else profile_from_json(pref),
            d.get("next_bucket"),
        )
