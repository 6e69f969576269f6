"""A span bigger than memory through ExampleGen → StatisticsGen → ExampleValidator → Transform.

Usage (see README.md beside this file)::

    .venv/bin/python benchmarks/data/bigger_than_memory.py run --gb 5 [--limit-mib 1024]
        [--workdir DIR] [--data DIR] [--keep] [--shards 2] [--inmemory-gb 0.25,0.5]

1. ``generate``: a synthetic taxi-like span of ``--gb`` GB of CSV (8 files), written 200,000
   rows at a time (the generator itself runs in bounded memory), under ``--workdir`` (a fresh
   temporary directory on local disk, deleted at the end unless ``--keep``). ``--data DIR``
   reuses a span generated before.
2. Each step runs in its own child process, started inside a cgroup-v1 memory cgroup limited to
   ``--limit-mib`` (page cache included, the kernel reclaims it; anonymous memory over the limit
   is OOM-killed), or, where no cgroup can be made, under ``RLIMIT_AS``. The child reports its
   wall time and its peak RSS (``VmHWM`` from ``/proc/self/status``).
3. Contrast: the old in-memory path (``read_files`` → ``split_table`` → ``write_table``) on a
   smaller span (``--inmemory-gb``, default 0.25 and 0.5), without the limit, beside the
   streaming ExampleGen on the same span, reporting peak RSS: the old path's grows with the
   input, the streaming one's does not.

Results are printed as a table and appended to ``results/bigger_than_memory.jsonl``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "bigger_than_memory.jsonl"
FILES = 8
CHUNK = 200_000
COMPANIES = [f"Company {i:02d} Cab Association" for i in range(40)]
PAYMENTS = ["Credit Card", "Cash", "Mobile", "Prcard", "Unknown", "No Charge"]
CGROUP_V1 = Path("/sys/fs/cgroup/memory")


# ----------------------------------------------------------------------------- generation
def generate(directory: Path, gb: float) -> dict[str, Any]:
    """Write ``gb`` GB of taxi-like CSV in FILES files, a chunk of rows at a time."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv

    directory.mkdir(parents=True, exist_ok=True)
    target = int(gb * 1e9)
    per_file = target // FILES
    rng = np.random.default_rng(13)
    rows = 0
    started = time.perf_counter()
    for i in range(FILES):
        path = directory / f"part-{i:02d}.csv"
        with pacsv.CSVWriter(str(path), _schema(pa)) as writer:
            while path.stat().st_size < per_file:
                writer.write_table(_chunk(np, pa, rng, rows))
                rows += CHUNK
        size = sum(p.stat().st_size for p in directory.glob("*.csv"))
        _log(f"generated {path.name}: {size / 1e9:.2f} GB, {rows:,} rows so far")
    size = sum(p.stat().st_size for p in directory.glob("*.csv"))
    return {"bytes": size, "rows": rows, "seconds": time.perf_counter() - started}


def _schema(pa: Any) -> Any:
    return pa.schema(
        [
            ("trip_start_timestamp", pa.int64()),
            ("trip_seconds", pa.int64()),
            ("trip_miles", pa.float64()),
            ("pickup_community_area", pa.int64()),
            ("dropoff_community_area", pa.int64()),
            ("pickup_latitude", pa.float64()),
            ("pickup_longitude", pa.float64()),
            ("fare", pa.float64()),
            ("tolls", pa.float64()),
            ("extras", pa.float64()),
            ("payment_type", pa.string()),
            ("company", pa.string()),
            ("tips", pa.float64()),
        ]
    )


def _chunk(np: Any, pa: Any, rng: Any, start: int) -> Any:
    n = CHUNK
    seconds = rng.gamma(2.0, 420.0, n).astype(np.int64)
    miles = np.round(rng.gamma(1.5, 2.2, n), 2)
    fare = np.round(3.25 + 2.25 * miles + 0.0025 * seconds + rng.normal(0, 1.0, n).clip(0), 2)
    payment = rng.choice(len(PAYMENTS), n, p=[0.45, 0.4, 0.07, 0.04, 0.03, 0.01])
    tips = np.where(payment == 0, np.round(fare * rng.uniform(0.0, 0.3, n), 2), 0.0)
    pickup = rng.integers(1, 78, n)
    dropoff = rng.integers(1, 78, n)
    missing = rng.random(n) < 0.02
    return pa.table(
        {
            "trip_start_timestamp": 1_356_998_400 + (start + np.arange(n)) * 7,
            "trip_seconds": seconds,
            "trip_miles": miles,
            "pickup_community_area": pa.array(pickup, mask=missing),
            "dropoff_community_area": pa.array(dropoff, mask=missing),
            "pickup_latitude": np.round(41.88 + rng.normal(0, 0.05, n), 6),
            "pickup_longitude": np.round(-87.63 + rng.normal(0, 0.05, n), 6),
            "fare": fare,
            "tolls": np.where(rng.random(n) < 0.01, 2.5, 0.0),
            "extras": np.round(rng.choice([0.0, 0.0, 0.0, 1.0, 1.5, 4.0], n), 2),
            "payment_type": pa.array(np.array(PAYMENTS, dtype=object)[payment]),
            "company": pa.array(np.array(COMPANIES, dtype=object)[rng.integers(0, 40, n)]),
            "tips": tips,
        }
    )


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# ----------------------------------------------------------------------------- steps (child)
def step(name: str, data: Path, work: Path, shards: int, batch_rows: int) -> dict[str, Any]:
    """Run one step in this process; returns rows, seconds and peak RSS (VmHWM)."""
    started = time.perf_counter()
    examples = work / "examples"
    stats = work / "statistics"
    if name == "ExampleGen":
        from loopline.components.example_gen import DEFAULT_SPLITS, stream_splits

        examples.mkdir(parents=True, exist_ok=True)
        files = sorted(p.name for p in data.glob("*.csv"))
        written = stream_splits(data, files, examples, DEFAULT_SPLITS, batch_rows=batch_rows)
        rows = sum(written.rows.values())
        extra: dict[str, Any] = {"rows_per_split": written.rows, "row_groups": written.row_groups}
    elif name == "StatisticsGen":
        from loopline.data import profile_parquet_sharded, save_profile

        stats.mkdir(parents=True, exist_ok=True)
        train = profile_parquet_sharded(
            examples / "train.parquet", shards=shards, batch_rows=batch_rows
        )
        save_profile(train, stats / "train.json")
        evals = profile_parquet_sharded(
            examples / "eval.parquet", train, shards=shards, batch_rows=batch_rows
        )
        save_profile(evals, stats / "eval.json")
        rows = train.num_rows + evals.num_rows
        extra = {"shards": shards}
    elif name == "ExampleValidator":
        from loopline.data import compare, infer_schema, load_profile, validate

        train = load_profile(stats / "train.json")
        evals = load_profile(stats / "eval.json")
        schema = infer_schema(train)
        anomalies = [*validate(train, schema), *validate(evals, schema)]
        drift = compare(train, evals, schema)
        rows = train.num_rows + evals.num_rows
        extra = {"anomalies": len(anomalies), "drifted": list(drift.drifted_features)}
    elif name == "Transform":
        rows, extra = _transform(examples, work / "transformed", batch_rows)
    else:
        raise SystemExit(f"unknown step {name!r}")
    seconds = time.perf_counter() - started
    return {
        "step": name,
        "rows": rows,
        "seconds": round(seconds, 2),
        "cpu_s": _cpu_seconds(),
        "rows_per_s": round(rows / seconds) if seconds else None,
        "peak_rss_mib": _vm_hwm_mib(),
        "peak_rss_child_mib": round(
            resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1
        ),
        **extra,
    }


def _transform(examples: Path, out: Path, batch_rows: int) -> tuple[int, dict[str, Any]]:
    """Transform's two passes: fit a ColumnTransformer (scaler + one-hot) on a 200,000-row
    sample of train (``fit_mode="sample"``), then stream every split through it."""
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from loopline.components.transform_batches import (
        fit_transformer,
        output_names,
        write_transformed,
    )

    out.mkdir(parents=True, exist_ok=True)
    numeric = ["trip_seconds", "trip_miles", "fare", "tolls", "extras", "pickup_latitude",
               "pickup_longitude"]
    categorical = ["payment_type", "company"]
    columns = numeric + categorical
    transformer = ColumnTransformer(
        [
            ("num", StandardScaler(), numeric),
            ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), categorical),
        ]
    )
    train = examples / "train.parquet"
    fitted = fit_transformer(
        transformer, train, columns, mode="sample", fit_rows=200_000, batch_rows=batch_rows
    )
    names = output_names(transformer, train, columns)
    rows, groups = 0, {}
    for split in ("train", "eval"):
        n, groups[split] = write_transformed(
            transformer, examples / f"{split}.parquet", out / f"{split}.parquet", columns,
            names, "tips", batch_rows=batch_rows,
        )
        rows += n
    return rows, {"fitted_rows": fitted, "output_features": len(names), "row_groups": groups}


def _cpu_seconds() -> float:
    """CPU seconds of this process and its finished children (shards)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return round(own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime, 1)


def _vm_hwm_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


# ----------------------------------------------------------------------------- limits (parent)
class Limit:
    """A cgroup-v1 memory cgroup of ``mib`` MiB for the step processes, or RLIMIT_AS."""

    def __init__(self, mib: int) -> None:
        self.mib = mib
        self.cgroup: Path | None = None
        own = _own_memory_cgroup()
        if own is not None:
            cg = own / f"loopline-bench-{os.getpid()}"
            try:
                cg.mkdir()
                (cg / "memory.limit_in_bytes").write_text(str(mib << 20))
                self.cgroup = cg
            except OSError:
                self.cgroup = None
        self.kind = f"cgroup v1 memory.limit_in_bytes={mib} MiB" if self.cgroup else (
            f"RLIMIT_AS={mib} MiB"
        )

    def enter(self) -> None:
        """In the child, before exec: join the cgroup (or set RLIMIT_AS)."""
        if self.cgroup is not None:
            (self.cgroup / "cgroup.procs").write_text(str(os.getpid()))
        else:
            resource.setrlimit(resource.RLIMIT_AS, (self.mib << 20, self.mib << 20))

    def reset(self) -> None:
        if self.cgroup is not None:
            (self.cgroup / "memory.max_usage_in_bytes").write_text("0")

    def stats(self) -> dict[str, Any]:
        if self.cgroup is None:
            return {}
        read = lambda n: int((self.cgroup / n).read_text().split()[0])
        oom = (self.cgroup / "memory.oom_control").read_text()
        kills = [ln for ln in oom.splitlines() if ln.startswith("oom_kill ")]
        return {
            "cgroup_max_usage_mib": round(read("memory.max_usage_in_bytes") / 2**20, 1),
            "cgroup_failcnt": read("memory.failcnt"),
            "oom_kills_total": int(kills[0].split()[1]) if kills else None,
        }

    def close(self) -> None:
        if self.cgroup is not None:
            try:
                self.cgroup.rmdir()
            except OSError:
                pass


def _own_memory_cgroup() -> Path | None:
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            cg = CGROUP_V1 / path.lstrip("/")
            return cg if (cg / "memory.limit_in_bytes").exists() else None
    return None


def run_step(
    name: str, data: Path, work: Path, limit: Limit | None, shards: int, batch_rows: int
) -> dict[str, Any]:
    """One step in a child process (inside ``limit``); its JSON line is the result."""
    if limit is not None:
        limit.reset()
    cmd = [
        sys.executable, __file__, "step", name, "--data", str(data), "--work", str(work),
        "--shards", str(shards), "--batch-rows", str(batch_rows),
    ]
    _log(f"{name}: start")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    done = threading.Event()
    watcher = threading.Thread(target=_progress, args=(name, work, done), daemon=True)
    watcher.start()
    try:
        proc = subprocess.run(
            cmd,
            env=env,
            capture_output=True,
            text=True,
            preexec_fn=limit.enter if limit is not None else None,
            check=False,
        )
    finally:
        done.set()
    if proc.returncode != 0:
        died = f"killed by signal {-proc.returncode}" if proc.returncode < 0 else "failed"
        result: dict[str, Any] = {
            "step": name, "error": f"{died}: {proc.stderr[-1500:]}"
        }
    else:
        result = json.loads(proc.stdout.strip().splitlines()[-1])
    if limit is not None:
        result.update(limit.stats())
    _log(f"{name}: {json.dumps(result)}")
    return result


def _progress(name: str, work: Path, done: threading.Event, every: float = 60.0) -> None:
    """Log the bytes written under ``work`` every ``every`` seconds while a step runs."""
    started = time.perf_counter()
    while not done.wait(every):
        written = sum(p.stat().st_size for p in work.rglob("*.parquet") if p.is_file())
        _log(f"{name}: {time.perf_counter() - started:.0f} s, {written / 1e9:.2f} GB of Parquet "
             "under the work directory")


def old_path(data: Path, out: Path) -> dict[str, Any]:
    """The pre-streaming ExampleGen: whole span in memory, split, written (child process)."""
    started = time.perf_counter()
    import pyarrow.parquet as pq

    from loopline.components.example_gen import DEFAULT_SPLITS, split_table
    from loopline.components.tables import read_files

    out.mkdir(parents=True, exist_ok=True)
    files = sorted(p.name for p in data.glob("*.csv"))
    table = read_files(data, files)
    for split, part in split_table(table, DEFAULT_SPLITS).items():
        pq.write_table(part, out / f"{split}.parquet", compression="zstd")
    seconds = time.perf_counter() - started
    return {
        "step": "ExampleGen (in memory, before)",
        "rows": table.num_rows,
        "seconds": round(seconds, 2),
        "cpu_s": _cpu_seconds(),
        "rows_per_s": round(table.num_rows / seconds),
        "peak_rss_mib": _vm_hwm_mib(),
    }


def _child_step(args: argparse.Namespace) -> None:
    if args.name == "old":
        result = old_path(args.data, args.work / "old")
    else:
        result = step(args.name, args.data, args.work, args.shards, args.batch_rows)
    print(json.dumps(result), flush=True)


def run(args: argparse.Namespace) -> None:
    usage = shutil.disk_usage(args.workdir or tempfile.gettempdir())
    need = int(args.gb * 1e9 * 1.8)
    if usage.free < need:
        raise SystemExit(f"Need ~{need / 1e9:.1f} GB free, have {usage.free / 1e9:.1f} GB.")
    reuse = args.work is not None
    work = args.work or Path(tempfile.mkdtemp(prefix="loopline-btm-", dir=args.workdir))
    limit = Limit(args.limit_mib) if args.limit_mib else None
    record: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "load_before": os.getloadavg(),
        "limit": limit.kind if limit else None,
        "batch_rows": args.batch_rows,
        "transform_batch_rows": args.transform_batch_rows,
        "steps": [],
    }
    try:
        data = args.data
        if data is None:
            data = work / "span"
            record["generated"] = generate(data, args.gb)
        size = sum(p.stat().st_size for p in data.glob("*.csv"))
        record["span_bytes"] = size
        _log(f"span {data}: {size / 1e9:.2f} GB; limit: {record['limit']}")
        for name in args.steps.split(","):
            shards = args.shards if name == "StatisticsGen" else 1
            rows = args.transform_batch_rows if name == "Transform" else args.batch_rows
            result = run_step(name, data, work, limit, shards, rows)
            record["steps"].append(result)
            if "error" in result:
                break
        for gb in [float(x) for x in args.inmemory_gb.split(",") if x]:
            small = work / f"small-{gb}"
            generate(small, gb)
            result = run_step("old", small, work, None, 1, args.batch_rows)
            result["span_bytes"] = sum(p.stat().st_size for p in small.glob("*.csv"))
            record["steps"].append(result)
            new = run_step("ExampleGen", small, work / f"new-{gb}", None, 1, args.batch_rows)
            new["span_bytes"] = result["span_bytes"]
            new["step"] = "ExampleGen (streaming, no limit)"
            record["steps"].append(new)
            shutil.rmtree(small, ignore_errors=True)
        record["load_after"] = os.getloadavg()
    finally:
        if limit is not None:
            limit.close()
        if args.keep or reuse:
            _log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    with RESULTS.open("a") as f:
        f.write(json.dumps(record) + "\n")
    _report(record)


def _report(record: dict[str, Any]) -> None:
    print(f"\nspan {record['span_bytes'] / 1e9:.2f} GB, limit {record['limit']}, "
          f"load {record['load_before']} → {record.get('load_after')}")
    print(f"{'step':36} {'rows':>12} {'s':>8} {'CPU s':>8} {'rows/s':>10} {'peak RSS MiB':>13}")
    for r in record["steps"]:
        if "error" in r:
            print(f"{r['step']:36} ERROR {r['error'][:200]}")
            continue
        print(f"{r['step']:36} {r['rows']:>12,} {r['seconds']:>8} {r['cpu_s']:>8} "
              f"{r['rows_per_s']:>10,} "
              f"{r['peak_rss_mib']:>13}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="only write the synthetic span")
    gen.add_argument("directory", type=Path)
    gen.add_argument("--gb", type=float, default=5.0)
    r = sub.add_parser("run", help="generate (or reuse --data) and run the steps")
    r.add_argument("--gb", type=float, default=5.0)
    r.add_argument("--data", type=Path, default=None, help="a span made by `generate`")
    r.add_argument("--workdir", type=Path, default=None)
    r.add_argument("--keep", action="store_true")
    r.add_argument("--work", type=Path, default=None, help="reuse a kept work directory")
    r.add_argument("--limit-mib", type=int, default=1024)
    r.add_argument("--shards", type=int, default=2)
    r.add_argument("--batch-rows", type=int, default=262_144)
    r.add_argument(
        "--transform-batch-rows",
        type=int,
        default=65_536,
        help="the transform pass holds batch × output features as float64, several times over",
    )
    r.add_argument("--steps", default="ExampleGen,StatisticsGen,ExampleValidator,Transform")
    r.add_argument("--inmemory-gb", default="0.25,0.5")
    st = sub.add_parser("step", help=argparse.SUPPRESS)
    st.add_argument("name")
    st.add_argument("--data", type=Path, required=True)
    st.add_argument("--work", type=Path, required=True)
    st.add_argument("--shards", type=int, default=1)
    st.add_argument("--batch-rows", type=int, default=262_144)
    args = parser.parse_args()
    if args.command == "generate":
        _log(json.dumps(generate(args.directory, args.gb)))
    elif args.command == "run":
        run(args)
    else:
        _child_step(args)


if __name__ == "__main__":
    main()
