"""Router overhead: wrk through the router (2 backends) vs wrk straight at the 2 backends.

    .venv/bin/python benchmarks/router/run.py [--duration 5] [--connections 32]
        [--latency-ms 0 2 5] [--rounds 3] [--router-workers 1]

Backends are ``tests/deploy/fake_server.py`` (asyncio, answers an OIP-shaped JSON), with an
optional simulated inference time (``--latency-ms``; asyncio sleep, so it costs no CPU).
"Direct" runs two wrk processes at once, one per backend, with half the connections each,
and sums their throughput. Rounds alternate direct/router so noise hits both alike; the
figures reported are medians over rounds. Everything binds 127.0.0.1 and stops by itself.
"""

from __future__ import annotations

import argparse
import json
import re
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
FAKE = ROOT / "tests" / "deploy" / "fake_server.py"
LUA = Path(__file__).with_name("post.lua")
PATH = "/v2/models/m/infer"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=0.5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise SystemExit(f"{url} did not come up in {timeout} s")


def wrk(port: int, connections: int, duration: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(LUA),
         f"http://127.0.0.1:{port}{PATH}"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip


def parse(out: str) -> tuple[float, float, int]:
    """(requests/s, p50 ms, errors) from wrk's output."""
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    m = re.search(r"50%\s+([\d.]+)(us|ms|s)", out)
    assert m is not None
    p50 = float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
    errors = 0
    if e := re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        errors += int(e.group(1))
    if e := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out):
        errors += sum(int(x) for x in e.groups())
    return rps, p50, errors


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` and its children, from /proc (clock ticks → seconds)."""
    import os

    total = 0.0
    pids = [pid]
    while pids:
        p = pids.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            for task in Path(f"/proc/{p}/task").iterdir():
                pids += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return total


def run_direct(ports: list[int], connections: int, duration: int) -> tuple[float, float, int]:
    procs = [wrk(p, connections // len(ports), duration) for p in ports]
    results = [parse(p.communicate()[0]) for p in procs]
    return (sum(r[0] for r in results), statistics.mean(r[1] for r in results),
            sum(r[2] for r in results))  # fmt: skip


def run_router(port: int, connections: int, duration: int) -> tuple[float, float, int]:
    return parse(wrk(port, connections, duration).communicate()[0])


def scenario(latency_ms: float, args: argparse.Namespace) -> dict[str, object]:
    procs: list[subprocess.Popen[bytes]] = []
    try:
        ports = [free_port(), free_port()]
        for i, port in enumerate(ports):
            procs.append(subprocess.Popen(
                [sys.executable, str(FAKE), "--port", str(port), "--id", f"b{i}",
                 "--latency-ms", str(latency_ms)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            ))  # fmt: skip
            wait_http(f"http://127.0.0.1:{port}/v2/health/ready")
        rport, aport = free_port(), free_port()
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "loopline.deploy.router", "--name", "bench",
             "--port", str(rport), "--admin-port", str(aport),
             "--workers", str(args.router_workers)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        ))  # fmt: skip
        wait_http(f"http://127.0.0.1:{aport}/healthz")
        httpx.put(
            f"http://127.0.0.1:{aport}/backends",
            json={
                "backends": [
                    {"id": f"b{i}", "host": "127.0.0.1", "port": p, "revision": "r"}
                    for i, p in enumerate(ports)
                ],
                "weights": None,
            },
        ).raise_for_status()
        run_router(rport, args.connections, 1)  # warm-up (pools, JIT-free but caches)
        run_direct(ports, args.connections, 1)
        direct, routed, cpu_us = [], [], []
        router_pid = procs[-1].pid
        for _ in range(args.rounds):
            direct.append(run_direct(ports, args.connections, args.duration))
            before = cpu_seconds(router_pid)
            routed.append(run_router(rport, args.connections, args.duration))
            spent = cpu_seconds(router_pid) - before
            cpu_us.append(spent / (routed[-1][0] * args.duration) * 1e6)
        d_rps = statistics.median(r[0] for r in direct)
        r_rps = statistics.median(r[0] for r in routed)
        d_p50 = statistics.median(r[1] for r in direct)
        r_p50 = statistics.median(r[1] for r in routed)
        return {
            "router_workers": args.router_workers,
            "latency_ms": latency_ms,
            "direct_rps": round(d_rps),
            "router_rps": round(r_rps),
            "throughput_ratio": round(r_rps / d_rps, 3),
            "direct_p50_ms": round(d_p50, 3),
            "router_p50_ms": round(r_p50, 3),
            "added_p50_ms": round(r_p50 - d_p50, 3),
            "router_cpu_us_per_request": round(statistics.median(cpu_us), 1),
            "errors": sum(r[2] for r in direct + routed),
        }
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--router-workers", type=int, default=1)
    parser.add_argument("--latency-ms", type=float, nargs="+", default=[0.0, 2.0, 5.0])
    args = parser.parse_args()
    for latency in args.latency_ms:
        print(json.dumps(scenario(latency, args)), flush=True)


if __name__ == "__main__":
    main()
