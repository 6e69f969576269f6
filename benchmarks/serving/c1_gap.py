"""Served p50 at concurrency 1 against the in-process json→predict→json time, interleaved.

Usage: .venv/bin/python c1_gap.py [--rounds 5] [--seconds 3] [--models lr rf] [--out F]
(reads $ARTIFACTS, default /tmp/loopline-bench/artifacts; needs wrk)

This VM's speed drifts by ±30 % from minute to minute, so the two figures are taken in
alternation — in-process lean path for ``--seconds``, then ``wrk -c1`` against a running
``loopline serve --workers 2`` for ``--seconds`` — and the gap is computed per round. The
in-process side is measured twice: in a tight loop ("warm": caches stay hot, which flatters
it) and with a 0.5 ms pause before each call ("paced": like one client whose next request
arrives after a round trip).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import time
from pathlib import Path

import httpx
import orjson

from loopline.bundle import coerce_batch, load_model
from loopline.serving.protocols import decode_v2, encode_v2

HERE = Path(__file__).resolve().parent
ART = Path(os.environ.get("ARTIFACTS", "/tmp/loopline-bench/artifacts"))
ROOT = HERE.parents[1]


def lean_median_us(name: str, seconds: float, pause_s: float) -> float:
    model = load_model(ART / f"loopline_{name}")
    sig = model.signature
    body = (ART / "payload" / "loopline_1.json").read_bytes()
    times = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if pause_s:
            time.sleep(pause_s)
        t = time.perf_counter()
        raw, _, rid = decode_v2(orjson.loads(body), sig)
        batch, _ = coerce_batch(sig, raw)
        encode_v2(name, "1", rid, model.predict(batch), sig)
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e6


def served_p50_us(port: int, name: str, seconds: float) -> float:
    env = {**os.environ, "BODY_FILE": str(ART / "payload" / "loopline_1.json")}
    out = subprocess.run(
        ["wrk", "-t1", "-c1", f"-d{seconds:.0f}s", "--latency", "-s", str(HERE / "post.lua"),
         f"http://127.0.0.1:{port}/v2/models/{name}/infer"],
        capture_output=True, text=True, env=env, check=True,
    ).stdout  # fmt: skip
    m = re.search(r"50%\s+([\d.]+)(us|ms|s)", out)
    assert m is not None, out
    return float(m.group(1)) * {"us": 1.0, "ms": 1e3, "s": 1e6}[m.group(2)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--models", nargs="+", default=["lr", "rf"])
    ap.add_argument("--batching", action="store_true")
    ap.add_argument("--out")
    args = ap.parse_args()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    for name in args.models:
        port = 19400 + (hash(name) % 300)
        server = subprocess.Popen(
            [str(ROOT / ".venv/bin/loopline"), "serve", str(ART / f"loopline_{name}"),
             "--allow-unverified", "--port", str(port), "--workers", "2",
             *(["--batching"] if args.batching else [])],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/v2/health/ready").status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.2)
            served_p50_us(port, name, 2)  # warm-up
            for r in range(args.rounds):
                warm = lean_median_us(name, args.seconds, 0.0)
                paced = lean_median_us(name, args.seconds, 0.0005)
                served = served_p50_us(port, name, args.seconds)
                line = {
                    "model": name, "batching": args.batching, "round": r,
                    "inproc_warm_us": round(warm), "inproc_paced_us": round(paced),
                    "served_p50_us": round(served), "gap_vs_warm_us": round(served - warm),
                    "gap_vs_paced_us": round(served - paced),
                }  # fmt: skip
                print(json.dumps(line), flush=True)
                if args.out:
                    with open(args.out, "a") as f:
                        f.write(json.dumps(line) + "\n")
        finally:
            server.terminate()
            server.wait(30)


if __name__ == "__main__":
    main()
