"""Memory per extra model: one `loopline serve --repository` worker with 1 vs N copies.

    .venv/bin/python benchmarks/serving/repository_memory.py [--copies 8] [--workers 1]

For each model kind — the LR benchmark model (StandardScaler + LogisticRegression, 30
features) and a taxi-like model (ColumnTransformer(StandardScaler, OneHotEncoder) +
HistGradientBoostingClassifier, 100 iterations × 15 leaves, on 10,000 synthetic trips shaped
like examples/taxi) — it measures the worker's RSS and PSS (/proc/PID/smaps_rollup) and the
supervisor's PSS in two ways:

- at start: a repository holding N copies (lr_1 … lr_N), all loaded by the supervisor
  before it forks (the worker shares their pages copy-on-write);
- by request: a server started with 1 copy, then POST /v2/repository/models/lr_K/load for
  the other N-1 (each worker loads its own copy).

Each served copy answers 3 requests before the measurement. Prints one JSON line per
measurement and a table of MiB per extra copy: (value with N - value with 1) / (N - 1).
Offline: the data are scikit-learn's breast_cancer and a seeded generator.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from loopline.bundle import infer_signature, save_model

METHODS = ("predict", "predict_proba")


def build(root: Path) -> dict[str, tuple[Path, dict[str, Any]]]:
    """Bundles of both kinds under ``root``; kind → (bundle, one V2 request body)."""
    x, y = load_breast_cancer(return_X_y=True)
    lr = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(x, y)
    save_model(lr, root / "lr", signature=infer_signature(x, y), methods=METHODS,
               input_example=x[:2])  # fmt: skip
    lr_body = {"inputs": [{"name": "input", "shape": [1, 30], "datatype": "FP64",
                           "data": x[0].tolist()}]}  # fmt: skip
    rng = np.random.default_rng(0)
    n = 10_000
    companies = np.array([f"company-{i}" for i in range(25)], dtype=object)
    trips = pd.DataFrame({
        "distance": rng.gamma(2.0, 3.0, n),
        "company": rng.choice(companies, n),
        "local": rng.choice(np.array(["yes", "no"], dtype=object), n),
        "dow": rng.choice(np.array(["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"],
                                   dtype=object), n),
        "month": rng.choice(np.array(["Jan", "Feb", "Mar", "Apr"], dtype=object), n),
        "hour": rng.integers(0, 24, n).astype(np.int64),
    })  # fmt: skip
    tip = ((trips.distance > 6) ^ (trips.local == "yes")).map({True: "yes", False: "no"})
    taxi = make_pipeline(
        ColumnTransformer([
            ("numeric", StandardScaler(), ["distance", "hour"]),
            ("categorical", OneHotEncoder(handle_unknown="ignore", sparse_output=False),
             ["company", "local", "dow", "month"]),
        ]),
        HistGradientBoostingClassifier(max_iter=100, max_leaf_nodes=15, early_stopping=False,
                                       random_state=0),
    ).fit(trips, tip)  # fmt: skip
    save_model(taxi, root / "taxi", signature=infer_signature(trips, tip), methods=METHODS,
               input_example=trips.head(3))  # fmt: skip
    row = trips.iloc[0]
    taxi_body = {"inputs": [
        {"name": c, "shape": [1], "datatype": "FP64" if c == "distance" else
         "INT64" if c == "hour" else "BYTES", "data": [row[c].item() if c in ("distance", "hour")
                                                       else row[c]]}
        for c in trips.columns
    ]}  # fmt: skip
    return {"lr": (root / "lr", lr_body), "taxi": (root / "taxi", taxi_body)}


def smaps(pid: int) -> dict[str, float]:
    """RSS and PSS of ``pid`` in MiB."""
    out = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("Rss", "Pss"):
            out[key.lower()] = int(rest.split()[0]) / 1024
    return out


class Server:
    def __init__(self, repo: Path, workers: int) -> None:
        argv = [sys.executable, "-m", "loopline.cli.serve_process", "--repository", str(repo),
                "--allow-unverified", "--repository-allow-unauthenticated", "--port", "0",
                "--workers", str(workers)]  # fmt: skip
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     text=True)  # fmt: skip
        line: list[str] = []
        reader = threading.Thread(target=lambda: line.append(self.proc.stdout.readline()),  # type: ignore[union-attr]
                                  daemon=True)  # fmt: skip
        reader.start()
        reader.join(300)
        if not line or "listening on" not in line[0]:
            self.stop()
            raise RuntimeError(f"the server did not start: {line}")
        self.url = line[0].split("listening on ")[1].split()[0]
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/v2/health/ready", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)

    def workers(self) -> list[int]:
        path = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        return [int(p) for p in path.read_text().split()]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(60)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def measure(server: Server, names: list[str], body: dict[str, Any]) -> dict[str, float]:
    with httpx.Client(base_url=server.url, timeout=60) as client:
        for name in names:
            for _ in range(3):
                response = client.post(f"/v2/models/{name}/infer", json=body)
                response.raise_for_status()
    time.sleep(1.0)  # let the allocator settle
    workers = [smaps(pid) for pid in server.workers()]
    return {
        "worker_rss": sum(w["rss"] for w in workers) / len(workers),
        "worker_pss": sum(w["pss"] for w in workers) / len(workers),
        "supervisor_pss": smaps(server.proc.pid)["pss"],
    }


def run(kind: str, bundle: Path, body: dict[str, Any], copies: int, workers: int,
        scratch: Path) -> list[dict[str, Any]]:  # fmt: skip
    rows = []
    names = [f"{kind}_{i}" for i in range(1, copies + 1)]
    for how, at_start in (("at start", copies), ("one at start", 1)):
        repo = scratch / f"{kind}-{how.replace(' ', '-')}"
        for name in names[:at_start]:
            shutil.copytree(bundle, repo / name / "1")
        server = Server(repo, workers)
        try:
            rows.append({"kind": kind, "how": how, "copies": at_start,
                         **measure(server, names[:at_start], body)})  # fmt: skip
            if at_start == 1:
                for name in names[1:]:
                    shutil.copytree(bundle, repo / name / "1")
                    response = httpx.post(f"{server.url}/v2/repository/models/{name}/load",
                                          timeout=300)  # fmt: skip
                    response.raise_for_status()
                rows.append({"kind": kind, "how": "by request", "copies": copies,
                             **measure(server, names, body)})  # fmt: skip
        finally:
            server.stop()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=8)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="loopline-repo-mem-") as tmp:
        scratch = Path(tmp)
        kinds = build(scratch / "bundles")
        rows = []
        for kind, (bundle, body) in kinds.items():
            for row in run(kind, bundle, body, args.copies, args.workers, scratch):
                print(json.dumps({k: round(v, 1) if isinstance(v, float) else v
                                  for k, v in row.items()}), flush=True)  # fmt: skip
                rows.append(row)
    print(f"\nMiB per extra copy ({args.copies} copies vs 1, {args.workers} worker(s), "
          f"{os.uname().machine}; worker figures are per worker):")  # fmt: skip
    print(f"{'model':6} {'loaded':12} {'worker RSS':>11} {'worker PSS':>11} {'superv. PSS':>12}")
    for kind in kinds:
        one = next(r for r in rows if r["kind"] == kind and r["copies"] == 1)
        for how in ("at start", "by request"):
            many = next(r for r in rows if r["kind"] == kind and r["how"] == how)
            per = {k: (many[k] - one[k]) / (args.copies - 1)
                   for k in ("worker_rss", "worker_pss", "supervisor_pss")}  # fmt: skip
            print(f"{kind:6} {how:12} {per['worker_rss']:11.2f} {per['worker_pss']:11.2f} "
                  f"{per['supervisor_pss']:12.2f}")


if __name__ == "__main__":
    main()
