"""MLflow's side of the console benchmark: the runs-table request of its UI at the same scale.

Runs in MLflow's own virtual environment (never loopline's)::

    python3 -m venv /tmp/mlflow-venv && /tmp/mlflow-venv/bin/pip install mlflow
    /tmp/mlflow-venv/bin/python benchmarks/console/mlflow_peer.py --runs 10000

1. **Seed** a fresh SQLite tracking database in process through MLflow's own
   ``SqlAlchemyStore`` (``create_run``, ``log_batch`` with 2 parameters and 1 metric,
   ``update_run_info`` to FINISHED): one experiment of ``--runs`` runs, no artifacts.
2. **Serve** it with ``mlflow server`` on 127.0.0.1 (a free port, its default workers).
3. **Measure** ``--rounds`` times, after ``--warmup`` unmeasured requests: the request MLflow's
   runs page makes for its first rows, ``POST /ajax-api/2.0/mlflow/runs/search``
   (``max_results`` 100, newest first: the page's "load more" size), and the HTML shell
   ``GET /``. TTFB and full response, medians and p95, on one kept-alive connection.

This is the server's share only: in a browser MLflow's page then loads and runs its 4.4 MB
``main.js`` before it shows rows (2.5–3.1 s for 1,000 runs, ``shared/research/console.md``),
while loopline's page arrives rendered. Bounded: every step has a timeout and the server's
process group is stopped (SIGTERM, then SIGKILL) on the way out.
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
from pathlib import Path


def seed(db: Path, runs: int) -> str:
    from mlflow.entities import Metric, Param, RunStatus
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    store = SqlAlchemyStore(f"sqlite:///{db}", str(db.parent / "mlruns"))
    experiment = store.create_experiment("bench")
    t0 = 1_793_000_000_000
    for r in range(runs):
        run = store.create_run(experiment, "bench", t0 + r * 60_000, [], f"bench-{r:05d}")
        rid = run.info.run_id
        store.log_batch(rid, metrics=[Metric("accuracy", 0.8 + (r % 100) / 1000,
                                             t0 + r * 60_000, 0)],
                        params=[Param("rows", str(r % 7)), Param("learning_rate", "0.1")],
                        tags=[])  # fmt: skip
        store.update_run_info(rid, RunStatus.FINISHED,
                              t0 + r * 60_000 + 50_000, None)  # fmt: skip
    return str(experiment)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--json", help="write the raw results here")
    parser.add_argument("--keep", help="a folder to keep the seeded database in and reuse")
    args = parser.parse_args()
    import mlflow

    with tempfile.TemporaryDirectory(prefix="mlflow-console-bench-") as tmp:
        db = Path(args.keep or tmp) / "mlflow.db"
        began = time.perf_counter()
        if args.keep and db.exists():  # seeded by an earlier run with the same --keep
            experiment = (db.parent / "experiment").read_text()
        else:
            experiment = seed(db, args.runs)
            (db.parent / "experiment").write_text(experiment)
        seeded = time.perf_counter() - began
        print(f"mlflow {mlflow.__version__}: seeded {args.runs} runs in {seeded:.0f} s",
              file=sys.stderr)  # fmt: skip
        port = free_port()
        log = (Path(tmp) / "server.log").open("wb")
        server = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{db}",
             "--default-artifact-root", str(db.parent / "mlruns"), "--host", "127.0.0.1",
             "--port", str(port)],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + args.timeout
            while True:
                with contextlib.suppress(OSError):
                    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                    c.request("GET", "/health")
                    if c.getresponse().status == 200:
                        break
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((Path(tmp) / "server.log").read_text()[-3000:])
                time.sleep(0.5)
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            search = json.dumps({"experiment_ids": [experiment], "max_results": 100,
                                 "order_by": ["attributes.start_time DESC"]})  # fmt: skip
            requests = {
                "runs search, first 100 (the runs page's data)":
                    ("POST", "/ajax-api/2.0/mlflow/runs/search", search),
                "HTML shell GET / (no rows: the SPA fetches them)": ("GET", "/", None),
            }  # fmt: skip
            results: dict[str, dict[str, list[float] | int]] = {
                k: {"ttfb": [], "full": [], "status": 0, "bytes": 0} for k in requests
            }
            for i in range(args.warmup + args.rounds):
                for name, (method, path, body) in requests.items():
                    for attempt in (1, 2):  # the server may close an idle kept-alive connection
                        start = time.perf_counter()
                        try:
                            conn.request(method, path, body=body,
                                         headers={"Content-Type": "application/json"})  # fmt: skip
                            response = conn.getresponse()
                            break
                        except (http.client.RemoteDisconnected, ConnectionError):
                            conn.close()
                            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
                            if attempt == 2:
                                raise
                    first = time.perf_counter()
                    data = response.read()
                    done = time.perf_counter()
                    if i >= args.warmup:
                        r = results[name]
                        r["ttfb"].append(first - start)  # type: ignore[union-attr]
                        r["full"].append(done - start)  # type: ignore[union-attr]
                        r["status"], r["bytes"] = response.status, len(data)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(server.pid, signal.SIGKILL)
                server.wait(timeout=5)
            log.close()
    load = os.getloadavg()
    print(f"mlflow {mlflow.__version__}, {args.runs} runs, {args.rounds} rounds; load average "
          f"{load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")  # fmt: skip
    for name, r in results.items():
        ttfb, full = r["ttfb"], r["full"]
        assert isinstance(ttfb, list) and isinstance(full, list)
        print(f"{name:52} TTFB p50 {statistics.median(ttfb) * 1e3:8.1f} ms  p95 "
              f"{percentile(ttfb, .95) * 1e3:8.1f}  full p50 {statistics.median(full) * 1e3:8.1f}"
              f"  status {r['status']}  {int(r['bytes']) / 1024:.1f} KB")  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps({"runs": args.runs, "load": load,
                                               "seed_s": seeded, "results": results}))  # fmt: skip


if __name__ == "__main__":
    main()
