"""Console at scale: time to first byte and to the full page, 10,000 runs and 100,000 artifacts.

For each source tree measured (this checkout, and optionally an older one with ``--before``):

1. **Seed** a fresh SQLite metadata database, migrated by that tree's own migrations
   (``open_store``), with SQLAlchemy Core ``executemany`` inserts of 5,000 rows a batch
   straight into the store's tables (``loopline.metadata.sql.schema``; ids assigned here):
   one pipeline context, ``--runs`` run contexts, 5 steps per run (executions associated with
   the run and the pipeline; the first two steps are cache hits in every other run), 2 LIVE
   output artifacts per step (100,000 for 10,000 runs) attributed to the run, INPUT events
   from each step's outputs to the next step, an ``accuracy`` metric per Trainer, and model
   ``bench`` with ``--versions`` versions (the Trainers' models), ``@champion`` on the newest.
   Going through the store's API (one transaction per row) would take tens of minutes here;
   the rows are the ones the runner writes, minus the bytes.
2. **Serve** it with the real control plane: ``python -m loopline.cli controlplane``
   on 127.0.0.1 (a free port), that tree on ``PYTHONPATH``, its own ``LOOPLINE_HOME``.
3. **Measure** each page ``--rounds`` times after ``--warmup`` unmeasured requests, pages and
   trees interleaved in every round (the machine is shared and noisy: compare trees inside
   one run): TTFB (request sent → status line and headers read) and full response (→ last
   body byte), medians and p95, over one kept-alive HTTP/1.1 connection per tree.

    .venv/bin/python benchmarks/console/bench.py                    # this tree, 10,000 runs
    git archive 747722a src | tar -x -C /tmp/before                 # the tree before keyset paging
    .venv/bin/python benchmarks/console/bench.py --before /tmp/before/src --json out.json

Bounded: seeding and start-up give up after ``--setup-timeout`` s; every control plane
started here is stopped (SIGTERM, then SIGKILL) on the way out, also on errors.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

STEPS = ("ExampleGen", "StatisticsGen", "SchemaGen", "Trainer", "Evaluator")
OUTPUTS = 2
BATCH = 5000
HERE = Path(__file__).resolve()


# ---- seeding (runs in a subprocess with the measured tree on PYTHONPATH) --------------------


def seed(url: str, runs: int, versions: int) -> dict[str, int]:
    """Fill a fresh database at ``url``; returns the ids the pages are measured at."""
    from sqlalchemy import create_engine, insert

    from loopline.metadata import open_store
    from loopline.metadata.sql.schema import (
        ArtifactRow,
        AssociationRow,
        AttributionRow,
        ContextRow,
        EventRow,
        ExecutionRow,
        MetricRow,
        ModelAliasRow,
        ModelVersionRow,
    )

    open_store(url).close()  # this tree's migrations
    engine = create_engine(url)
    t0 = datetime(2026, 11, 1, tzinfo=UTC)
    n_steps = len(STEPS)

    def execution_id(r: int, s: int) -> int:
        return r * n_steps + s + 1

    def artifact_id(r: int, s: int, o: int) -> int:
        return (r * n_steps + s) * OUTPUTS + o + 1

    def rows(first: int, last: int) -> Iterator[tuple[object, dict[str, object]]]:
        if first == 0:
            yield ContextRow.__table__, {"id": 1, "type_name": "pipeline", "name": "bench",
                                         "properties": {}, "created_at": t0}  # fmt: skip
        for r in range(first, last):
            start = t0 + timedelta(seconds=60 * r)
            params = {"rows": r % 7, "learning_rate": 0.1}
            yield ContextRow.__table__, {
                "id": r + 2, "type_name": "run", "name": f"bench-{r:05d}", "created_at": start,
                "properties": {"pipeline": "bench", "status": "succeeded", "parameters": params,
                               "started_at": start.isoformat(),
                               "ended_at": (start + timedelta(seconds=50)).isoformat()},
            }  # fmt: skip
            for s, step in enumerate(STEPS):
                e = execution_id(r, s)
                cached = s < 2 and r % 2 == 1
                began = start + timedelta(seconds=10 * s)
                yield ExecutionRow.__table__, {
                    "id": e, "type_name": step, "name": step,
                    "state": "cached" if cached else "complete", "cache_key": f"k{r % 7}-{s}",
                    "properties": {"pipeline": "bench", "parameters": params,
                                   "cache_parts": {"code": "c", "parameters": f"p{r % 7}",
                                                   "inputs": f"i{r}-{s}", "outputs": "o",
                                                   "component": step, "loopline": "bench"},
                                   **({"cached_from": execution_id(r - 1, s)} if cached else {})},
                    "log_uri": None, "created_at": began, "started_at": began,
                    "ended_at": began + timedelta(seconds=8),
                }  # fmt: skip
                for ctx in (1, r + 2):
                    yield AssociationRow.__table__, {"context_id": ctx, "execution_id": e}
                for o in range(OUTPUTS):
                    a = artifact_id(r, s, o)
                    yield ArtifactRow.__table__, {
                        "id": a, "type_name": "Model" if step == "Trainer" else "Examples",
                        "uri": f"file:///bench/{r}/{step}/{o}", "name": f"{step}.out{o}",
                        "digest": f"sha256:{a:064x}", "state": "live", "properties": {},
                        "created_at": began, "updated_at": began,
                    }  # fmt: skip
                    yield AttributionRow.__table__, {"context_id": r + 2, "artifact_id": a}
                    yield EventRow.__table__, {"artifact_id": a, "execution_id": e,
                                               "type": "output", "port": f"out{o}", "idx": 0,
                                               "created_at": began}  # fmt: skip
                    if s + 1 < n_steps:
                        yield EventRow.__table__, {"artifact_id": a,
                                                   "execution_id": execution_id(r, s + 1),
                                                   "type": "input", "port": f"in{o}", "idx": 0,
                                                   "created_at": began}  # fmt: skip
                if step == "Trainer":
                    yield MetricRow.__table__, {"execution_id": e, "key": "accuracy",
                                                "value": 0.8 + (r % 100) / 1000, "step": 0,
                                                "timestamp": began}  # fmt: skip

    def registry_rows() -> Iterator[tuple[object, dict[str, object]]]:
        for v in range(min(versions, runs)):
            r = runs - min(versions, runs) + v
            yield ModelVersionRow.__table__, {"name": "bench", "version": v + 1,
                                              "artifact_id": artifact_id(r, 3, 0),
                                              "description": "", "created_at": t0}  # fmt: skip
        if versions:
            yield ModelAliasRow.__table__, {"name": "bench", "alias": "champion",
                                            "version": min(versions, runs), "execution_id": None,
                                            "updated_at": t0}  # fmt: skip

    # 500 runs at a time, parents before children (children only point at earlier rows).
    order = [t.__table__ for t in (ContextRow, ExecutionRow, ArtifactRow, AssociationRow,
             AttributionRow, EventRow, MetricRow, ModelVersionRow, ModelAliasRow)]  # fmt: skip
    chunks = [rows(f, min(f + 500, runs)) for f in range(0, runs, 500)] + [registry_rows()]
    with engine.begin() as conn:
        for chunk in chunks:
            buffers: dict[object, list[dict[str, object]]] = {t: [] for t in order}
            for table, row in chunk:
                buffers[table].append(row)
            for table in order:
                for i in range(0, len(buffers[table]), BATCH):
                    conn.execute(insert(table), buffers[table][i : i + BATCH])  # type: ignore[arg-type]
    engine.dispose()
    middle = runs // 2
    return {"newest_run": runs + 1, "deep_after": middle + 2, "run": middle + 2,
            "other_run": middle + 3, "artifact": artifact_id(middle, 3, 0)}  # fmt: skip


# ---- serving and measuring ---------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Served:
    """One tree's control plane on 127.0.0.1 over its own seeded database."""

    def __init__(self, label: str, src: str | None, root: Path, runs: int, versions: int,
                 timeout: float) -> None:  # fmt: skip
        self.label = label
        root.mkdir(parents=True)
        self.env = {**os.environ, "LOOPLINE_HOME": str(root / "home"),
                    "LOOPLINE_DB_URL": f"sqlite:///{root / 'metadata.db'}",
                    "LOOPLINE_ARTIFACT_ROOT": str(root / "artifacts")}  # fmt: skip
        self.env.pop("LOOPLINE_CONTROLPLANE_URL", None)
        if src:
            self.env["PYTHONPATH"] = src
        began = time.perf_counter()
        out = subprocess.run(
            [sys.executable, str(HERE), "seed", "--url", self.env["LOOPLINE_DB_URL"],
             "--runs", str(runs), "--versions", str(versions)],
            env=self.env, capture_output=True, text=True, timeout=timeout, check=True,
        )  # fmt: skip
        self.seed_s = time.perf_counter() - began
        self.ids: dict[str, int] = json.loads(out.stdout.strip().splitlines()[-1])
        self.port = free_port()
        self.log = (root / "controlplane.log").open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "loopline.cli", "controlplane", "--port",
             str(self.port)], env=self.env, stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while not self._healthy():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                tail = (root / "controlplane.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{label}: the control plane did not start:\n{tail}")
            time.sleep(0.2)
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)

    def _healthy(self) -> bool:
        try:
            c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
            c.request("GET", "/healthz")
            ok = c.getresponse().status == 200
            c.close()
            return ok
        except OSError:
            return False

    def get(self, path: str) -> tuple[float, float, int, int]:
        """(TTFB s, full s, status, body bytes) of one GET on the kept-alive connection."""
        start = time.perf_counter()
        self.conn.request("GET", path)
        response = self.conn.getresponse()
        first = time.perf_counter()
        body = response.read()
        done = time.perf_counter()
        return first - start, done - start, response.status, len(body)

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)
        self.log.close()


def pages(ids: dict[str, int]) -> dict[str, str]:
    return {
        "runs page": "/ui/runs",
        "deep runs page (after=)": f"/ui/runs?after={ids['deep_after']}",
        "run page": f"/ui/runs/{ids['run']}",
        "run page + step log/why": f"/ui/runs/{ids['run']}?step=Trainer",
        "compare two runs": f"/ui/compare?runs={ids['run']},{ids['other_run']}",
        "registry (models)": "/ui/models",
        "registry (model, 200 versions)": "/ui/models/bench",
        "lineage of a run": f"/ui/lineage?from=run/{ids['run']}",
        "lineage of an artifact": f"/ui/lineage?from=artifact/{ids['artifact']}",
    }


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command")
    s = sub.add_parser("seed")
    s.add_argument("--url", required=True)
    s.add_argument("--runs", type=int, required=True)
    s.add_argument("--versions", type=int, required=True)
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--versions", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--before", help="src/ of an older tree to measure in the same rounds")
    parser.add_argument("--setup-timeout", type=float, default=600.0)
    parser.add_argument("--json", help="write the raw results here")
    args = parser.parse_args()
    if args.command == "seed":
        print(json.dumps(seed(args.url, args.runs, args.versions)))
        return
    trees = [("now", None)] + ([("before", args.before)] if args.before else [])
    results: dict[str, dict[str, dict[str, list[float] | int]]] = {}
    served: list[Served] = []
    with tempfile.TemporaryDirectory(prefix="loopline-console-bench-") as tmp:
        try:
            for label, src in trees:
                s_ = Served(label, src, Path(tmp) / label, args.runs, args.versions,
                            args.setup_timeout)  # fmt: skip
                served.append(s_)
                print(f"{label}: seeded {args.runs} runs in {s_.seed_s:.1f} s", file=sys.stderr)
            for s_ in served:
                results[s_.label] = {name: {"ttfb": [], "full": [], "status": 0, "bytes": 0}
                                     for name in pages(s_.ids)}  # fmt: skip
                for path in pages(s_.ids).values():
                    for _ in range(args.warmup):
                        s_.get(path)
            for _ in range(args.rounds):
                for name in pages(served[0].ids):
                    for s_ in served:
                        ttfb, full, status, size = s_.get(pages(s_.ids)[name])
                        r = results[s_.label][name]
                        r["ttfb"].append(ttfb)  # type: ignore[union-attr]
                        r["full"].append(full)  # type: ignore[union-attr]
                        r["status"], r["bytes"] = status, size
        finally:
            for s_ in served:
                s_.stop()
    load = os.getloadavg()
    print(f"{args.runs} runs, {args.runs * len(STEPS) * OUTPUTS} artifacts, {args.rounds} "
          f"rounds; load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")  # fmt: skip
    header = f"{'page':32} " + " ".join(
        f"{t + ' ' + k:>22}" for t, _ in trees for k in ("TTFB p50/p95 ms", "full p50")
    )
    print(header + f" {'status':>7} {'KB':>6}")
    for name in pages(served[0].ids):
        cells = []
        for label, _ in trees:
            r = results[label][name]
            ttfb, full = r["ttfb"], r["full"]
            assert isinstance(ttfb, list) and isinstance(full, list)
            cells.append(f"{statistics.median(ttfb) * 1e3:>13.1f}/{percentile(ttfb, .95) * 1e3:<8.1f}")
            cells.append(f"{statistics.median(full) * 1e3:>22.1f}")
        r0 = results["now"][name]
        print(f"{name:32} " + " ".join(cells) + f" {r0['status']!s:>7} {int(r0['bytes']) / 1024:>6.1f}")  # type: ignore[arg-type]
    if args.json:
        Path(args.json).write_text(json.dumps({"runs": args.runs, "load": load,
                                               "results": results}, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
