"""Rotation of a prediction-log directory: the oldest segments go beyond a size or age bound.

A log directory (``LogOptions.directory``) holds the ``predictions`` and ``feedback`` streams of
every model and version written there, possibly by several server processes at once. Rotation
keeps, across all of it, the newest segments whose total size is at most ``max_bytes`` and
drops every segment older than ``max_age``. Only published segments take part: files being
written are dot-files (``.tmp-*``) and are never listed, so a segment being written is never
deleted. A segment's age comes from the UTC timestamp at the start of its name (the time it
was flushed), falling back to the file's modification time for a name that has none.

:func:`plan_rotation` is the pure decision; :func:`rotate` lists, plans and deletes. Deleting
a file another process already deleted is not an error, so several writers may rotate the
same directory; readers (the monitor) must treat a listed segment that has gone as rotated.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

STREAMS = ("predictions", "feedback")
SEGMENT_STAMP = "%Y%m%dT%H%M%S%fZ"  # the UTC flush time that starts a segment name


class RotationReason(enum.Enum):
    """Why a segment was deleted."""

    AGE = "age"  # older than max_age
    SIZE = "size"  # the directory held more than max_bytes


@dataclass(frozen=True, slots=True)
class Segment:
    """One published Parquet segment of a log directory."""

    path: Path
    size: int
    written_at: float  # seconds since the epoch (UTC)


@dataclass(frozen=True, slots=True)
class Deletion:
    """A segment the rotation deletes, and why."""

    segment: Segment
    reason: RotationReason


@dataclass(frozen=True, slots=True)
class RotationResult:
    """What one rotation pass did."""

    deleted: tuple[Deletion, ...] = ()
    kept_bytes: int = 0

    @property
    def deleted_bytes(self) -> int:
        """Bytes freed."""
        return sum(d.segment.size for d in self.deleted)


def segment_time(path: Path, fallback: float) -> float:
    """The flush time encoded in a segment's name (``<utc-ts>-<pid>-<seq>.parquet``), or
    ``fallback`` when the name carries none."""
    stamp = path.name.split("-", 1)[0]
    try:
        return datetime.strptime(stamp, SEGMENT_STAMP).replace(tzinfo=UTC).timestamp()
    except ValueError:
        return fallback


def list_segments(directory: Path) -> list[Segment]:
    """Every published segment under ``directory`` (both streams, every model and version).

    Dot-files (segments being written) are skipped; a file that disappears while it is being
    listed (another process rotated it) is left out.
    """
    found: list[Segment] = []
    for stream in STREAMS:
        for path in (Path(directory) / stream).glob("model=*/version=*/*.parquet"):
            if path.name.startswith("."):
                continue
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue
            found.append(Segment(path, stat.st_size, segment_time(path, stat.st_mtime)))
    return found


def plan_rotation(
    segments: Iterable[Segment], *, max_bytes: int, max_age: float, now: float
) -> list[Deletion]:
    """Which segments to delete, oldest first: every one older than ``max_age`` seconds at
    ``now``, then the oldest of the rest until the remaining ones total at most ``max_bytes``.
    Pure: no I/O, no clock."""
    ordered = sorted(segments, key=lambda s: (s.written_at, s.path.name, str(s.path)))
    deletions: list[Deletion] = []
    kept: list[Segment] = []
    for segment in ordered:
        if now - segment.written_at > max_age:
            deletions.append(Deletion(segment, RotationReason.AGE))
        else:
            kept.append(segment)
    total = sum(s.size for s in kept)
    for segment in kept:
        if total <= max_bytes:
            break
        deletions.append(Deletion(segment, RotationReason.SIZE))
        total -= segment.size
    return deletions


def delete_segments(deletions: Sequence[Deletion]) -> list[Deletion]:
    """Unlink the planned segments; returns those this call removed (another process may
    have removed some first)."""
    done: list[Deletion] = []
    for deletion in deletions:
        try:
            os.unlink(deletion.segment.path)
        except FileNotFoundError:
            continue
        done.append(deletion)
    return done


def rotate(directory: Path, *, max_bytes: int, max_age: float, now: float) -> RotationResult:
    """List the segments under ``directory``, delete what :func:`plan_rotation` says, and
    return what was deleted here."""
    segments = list_segments(directory)
    planned = plan_rotation(segments, max_bytes=max_bytes, max_age=max_age, now=now)
    done = delete_segments(planned)
    gone = {d.segment.path for d in planned}
    kept = sum(s.size for s in segments if s.path not in gone)
    return RotationResult(deleted=tuple(done), kept_bytes=kept)
