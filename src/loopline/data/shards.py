"""Profiling one Parquet file in parallel shards, then merging: the single-task profile.

Profiles merge exactly (:mod:`loopline.data.merge`), so a big file can be profiled as
contiguous ranges of row groups in parallel processes and the parts merged in order. The one
thing shards must share is the histogram edges (and the atoms decision): without a
``reference``, :func:`profile_parquet_sharded` first profiles the file's first batch — the same
batch that fixes the edges when :func:`loopline.data.profile_parquet` streams the whole file —
and every shard counts on that profile's edges. The merged result equals the single-task
profile exactly in every count (rows, nulls, NaN/inf/zeros, histogram buckets, atoms, exact
categorical counts), edges, min/max and distinct counts; the float moments (mean, M2, bucket
sums) are summed in another order, so they agree to float rounding (~1e-15 relative). A
categorical column past ``max_exact`` distinct values is a Misra–Gries sketch either way,
within the same error bound, but its kept counters can differ with the merge order.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from loopline.data.atoms import MAX_ATOMS
from loopline.data.counts import MAX_EXACT, SKETCH_SIZE
from loopline.data.merge import merge
from loopline.data.profile import Profile
from loopline.data.profiler import BINS, profile_batches, profile_parquet, profile_table
from loopline.errors import BackendError, InvalidInputError, LooplineError

BATCH_ROWS = 262_144


def row_group_ranges(row_counts: list[int], shards: int) -> list[tuple[int, int]]:
    """At most ``shards`` contiguous, non-empty ``[start, stop)`` ranges of row groups with
    about equal rows (a row group is never split)."""
    if shards < 1:
        raise InvalidInputError(f"shards={shards} must be at least 1.")
    total = sum(row_counts)
    ranges: list[tuple[int, int]] = []
    start = 0
    seen = 0
    for i, n in enumerate(row_counts):
        seen += n
        # close the range once it reaches its share of the rows
        if seen * shards >= total * (len(ranges) + 1) and i + 1 > start:
            ranges.append((start, i + 1))
            start = i + 1
    if start < len(row_counts):
        ranges.append((start, len(row_counts)))
    return ranges


def profile_parquet_sharded(
    path: str | os.PathLike[str],
    reference: Profile | None = None,
    *,
    shards: int,
    batch_rows: int = BATCH_ROWS,
    bins: int = BINS,
    max_exact: int = MAX_EXACT,
    sketch_size: int = SKETCH_SIZE,
    max_atoms: int = MAX_ATOMS,
) -> Profile:
    """Profile a Parquet file in up to ``shards`` parallel processes and merge the parts.

    Each shard is a child process (at most one per CPU at a time) streaming its row groups
    ``batch_rows`` at a time, so memory is bounded by one batch per process. ``shards=1`` (or
    a file of one row group) is :func:`profile_parquet`.

    Raises:
        InvalidInputError: ``shards`` or ``batch_rows`` < 1, or the file is not Parquet.
    """
    if shards < 1:
        raise InvalidInputError(f"shards={shards} must be at least 1.")
    if batch_rows < 1:
        raise InvalidInputError(f"batch_rows={batch_rows} must be at least 1.")
    options = {
        "bins": bins,
        "max_exact": max_exact,
        "sketch_size": sketch_size,
        "max_atoms": max_atoms,
    }
    single = Path(path)
    try:
        pf = pq.ParquetFile(single, pre_buffer=False, buffer_size=1 << 20)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InvalidInputError(f"{str(single)!r} is not a readable Parquet file: {exc}") from exc
    with pf:
        meta = pf.metadata
        counts = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
        ranges = row_group_ranges(counts, shards) if sum(counts) else []
        if len(ranges) < 2:
            return profile_parquet(single, reference, batch_rows=batch_rows, **options)
        edges = reference
        if edges is None:  # the first batch fixes the edges, as when streaming in one task
            first = next(pf.iter_batches(batch_size=batch_rows, use_threads=False))
            edges = profile_table(
                first,
                bins=bins,
                max_exact=max_exact,
                sketch_size=sketch_size,
                max_atoms=max_atoms,
            )
    jobs = [
        _Job(str(single), list(range(start, stop)), edges, batch_rows, options)
        for start, stop in ranges
    ]
    with ThreadPoolExecutor(max_workers=min(len(jobs), os.cpu_count() or 1)) as pool:
        parts = list(pool.map(_run_in_process, jobs))
    total = parts[0]
    for part in parts[1:]:
        total = merge(
            total, part, max_exact=max_exact, sketch_size=sketch_size, max_atoms=max_atoms
        )
    return total


@dataclass(frozen=True)
class _Job:
    """One shard: row groups of a file, counted on ``edges``."""

    path: str
    row_groups: list[int]
    edges: Profile
    batch_rows: int
    options: dict[str, int]

    def run(self) -> Profile:
        with pq.ParquetFile(self.path, pre_buffer=False, buffer_size=1 << 20) as pf:
            return profile_batches(
                pf.iter_batches(
                    batch_size=self.batch_rows, row_groups=self.row_groups, use_threads=False
                ),
                self.edges,
                **self.options,
            )


def _run_in_process(job: _Job) -> Profile:
    """Run ``job`` in a fresh Python process (:func:`child`).

    A child of its own, not a forked or spawned multiprocessing worker: forking a parent
    that runs Arrow/Polars thread pools can deadlock, and spawn re-imports the caller's
    ``__main__`` (a script without a main guard, or stdin). The job and its profile cross the
    pipe pickled — between this process and its own child only.
    """
    proc = subprocess.run(
        [sys.executable, "-c", "from loopline.data.shards import child; child()"],
        input=pickle.dumps(job),
        capture_output=True,
        check=False,
    )
    if proc.returncode != 0 or not proc.stdout:
        tail = proc.stderr.decode(errors="replace")[-2000:]
        raise BackendError(
            f"The profiling shard of {job.path!r} (row groups {job.row_groups[0]}–"
            f"{job.row_groups[-1]}) exited with code {proc.returncode}: {tail}; run with "
            "shards=1 to profile in this process."
        )
    status, value = pickle.loads(proc.stdout)
    if status == "error":
        raise value
    if not isinstance(value, Profile):  # pragma: no cover - the child sends a Profile
        raise BackendError(f"A profiling shard answered {type(value).__name__}, not a Profile.")
    return value


def child() -> None:
    """The shard process's main: a pickled job on stdin, ``(status, value)`` on stdout."""
    job = pickle.loads(sys.stdin.buffer.read())
    try:
        result: tuple[str, object] = ("ok", job.run())
    except LooplineError as exc:
        result = ("error", exc)
    sys.stdout.buffer.write(pickle.dumps(result))
    sys.stdout.buffer.flush()

