"""Finding one served prediction by request id in ~1M logged rows (``loopline lineage
prediction/ID``'s first step).

Writes the logs with the server's own writer (``SegmentWriter``, the default 20,000-row
flushes, two models with different inputs, uuid4-hex request ids of 1–8 rows as the server
makes them), then times ``find_request`` for ids spread over the whole log and for an id
that is not there (a full scan). Prints medians.

    .venv/bin/python benchmarks/lineage_prediction.py [--rows 1000000] [--dir /tmp/...]
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import time
import uuid
from pathlib import Path

import numpy as np

from loopline.errors import NotFoundError
from loopline.serving.log_search import find_request, segments
from loopline.serving.options import LogOptions
from loopline.serving.prediction_log import LogRecord, SegmentWriter


def write_logs(directory: Path, rows: int, seed: int = 5) -> list[str]:
    """~``rows`` logged rows under ``directory``; returns every request id written."""
    rng = np.random.default_rng(seed)
    writer = SegmentWriter(directory, "predictions", LogOptions(directory=directory))
    ids: list[str] = []
    written = 0
    t = 1_800_000_000.0
    while written < rows:
        n = int(rng.integers(1, 9))
        rid = uuid.uuid4().hex
        if len(ids) % 2:
            model, version = "taxi", str(1 + len(ids) % 3)
            cols = {
                "inputs": {"trip_miles": rng.random(n), "hour": rng.integers(0, 24, n)},
                "outputs": {"predict": rng.integers(0, 2, n), "proba": rng.random((n, 2))},
            }
        else:
            model, version = "fare", "1"
            cols = {
                "inputs": {"x": rng.random((n, 4))},
                "outputs": {"predict": rng.random(n)},
            }
        writer.offer(LogRecord(rid, t, model, version, n, cols))
        ids.append(rid)
        written += n
        t += 0.001
        if len(ids) % 4500 == 0:  # ~20,000 rows: the default flush_rows
            writer.flush()
    writer.flush()
    return ids


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/loopline-lineage-prediction"))
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    if args.dir.exists():
        shutil.rmtree(args.dir)
    began = time.perf_counter()
    ids = write_logs(args.dir, args.rows)
    files = segments(args.dir, "predictions")
    size = sum(f.stat().st_size for f in files) / 2**20
    print(
        f"wrote {len(ids)} requests (~{args.rows} rows) in {len(files)} segments, {size:.0f} MiB, "
        f"in {time.perf_counter() - began:.1f} s"
    )
    rng = random.Random(11)
    find_request(args.dir, ids[0])  # page cache
    timings = []
    for _ in range(args.repeat):
        rid = ids[rng.randrange(len(ids))]
        start = time.perf_counter()
        found = find_request(args.dir, rid)
        timings.append(time.perf_counter() - start)
        assert found.request_id == rid and found.rows >= 1
    missing = []
    for _ in range(max(3, args.repeat // 3)):
        start = time.perf_counter()
        try:
            find_request(args.dir, uuid.uuid4().hex)
        except NotFoundError:
            missing.append(time.perf_counter() - start)
    print(
        f"find_request: median {statistics.median(timings) * 1000:.0f} ms "
        f"(min {min(timings) * 1000:.0f}, max {max(timings) * 1000:.0f}, n={len(timings)}); "
        f"unknown id (not found): median {statistics.median(missing) * 1000:.0f} ms"
    )


if __name__ == "__main__":
    main()
