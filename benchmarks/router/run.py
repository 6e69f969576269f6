"""Router overhead: wrk through the router (2 backends) vs wrk straight at the 2 backends.

    .venv/bin/python benchmarks/router/run.py [--duration 4] [--rounds 3] [--connections 32]
        [--cases fake-0ms fake-5ms lr lr-batching rf-batching] [--router-workers 1]

Cases (backends):
  ``fake-<N>ms``   ``tests/deploy/fake_server.py`` (raw asyncio, answers an OIP-shaped JSON)
                   with a simulated inference time of N ms (asyncio sleep: no CPU).
  ``lr``, ``lr-batching``, ``rf-batching``   two real ``loopline serve DIR --workers 1
                   [--batching]`` replicas of the serving benchmark's models (bundles from
                   ``benchmarks/serving``: ``$ARTIFACTS/loopline_<model>``, body
                   ``$ARTIFACTS/payload/loopline_1.json``; ARTIFACTS defaults to
                   /tmp/loopline-bench/artifacts).

"Direct" runs two wrk processes at once, one per backend, with half the connections each,
and sums their throughput. Rounds alternate direct/router so noise hits both alike; the
figures reported are medians over rounds. ``router_cpu_us_per_request`` is the router
process tree's CPU time (from /proc) per request served through it;
``backends_cpu_us_per_request_{direct,routed}`` the same for the two backends' process
trees, hit directly and through the router. Measured Python
processes run without PYTHONDONTWRITEBYTECODE (as in benchmarks/serving). Everything binds
127.0.0.1 and stops by itself.
"""

from __future__ import annotations

import argparse
import json
import os
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
LOOPLINE = ROOT / ".venv" / "bin" / "loopline"
LUA = Path(__file__).with_name("post.lua")
ARTIFACTS = Path(os.environ.get("ARTIFACTS", "/tmp/loopline-bench/artifacts"))
HEALTH = "/v2/health/ready"
DEFAULT_CASES = ["fake-0ms", "fake-5ms", "lr", "lr-batching", "rf-batching"]
FAKE_BODY = b'{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[5.1,3.5,1.4,0.2]}]}'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def measured_env() -> dict[str, str]:
    """The environment of measured processes: bytecode caches allowed (as in production)."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    delay = 0.05
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{proc.args!r} exited with {proc.returncode} before {url} answered")
        try:
            if httpx.get(url, timeout=0.5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(delay)
        delay = min(delay * 1.5, 0.5)
    raise SystemExit(f"{url} did not come up in {timeout} s")


def wrk(port: int, path: str, body: Path | None, connections: int,
        duration: int) -> subprocess.Popen[str]:  # fmt: skip
    env = dict(os.environ, BODY_FILE=str(body) if body else "")
    return subprocess.Popen(
        ["/usr/bin/wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency",
         "-s", str(LUA), f"http://127.0.0.1:{port}{path}"],
        stdout=subprocess.PIPE, text=True, env=env,
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


class Target:
    """Where wrk points: path and body of the requests, the backends' ports."""

    def __init__(self, path: str, body: Path | None, ports: list[int]) -> None:
        self.path, self.body, self.ports = path, body, ports

    def direct(self, connections: int, duration: int) -> tuple[float, float, int]:
        procs = [
            wrk(p, self.path, self.body, connections // len(self.ports), duration)
            for p in self.ports
        ]
        results = [parse(p.communicate()[0]) for p in procs]
        return (sum(r[0] for r in results), statistics.mean(r[1] for r in results),
                sum(r[2] for r in results))  # fmt: skip

    def routed(self, port: int, connections: int, duration: int) -> tuple[float, float, int]:
        return parse(wrk(port, self.path, self.body, connections, duration).communicate()[0])


def start_backends(case: str, procs: list[subprocess.Popen[bytes]]) -> Target:
    """Start the case's two backends (appended to ``procs``) and say how to load them."""
    ports = [free_port(), free_port()]
    if m := re.fullmatch(r"fake-([\d.]+)ms", case):
        for i, port in enumerate(ports):
            procs.append(subprocess.Popen(
                [sys.executable, str(FAKE), "--port", str(port), "--id", f"b{i}",
                 "--latency-ms", m.group(1)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=measured_env(),
            ))  # fmt: skip
            wait_http(f"http://127.0.0.1:{port}{HEALTH}", procs[-1])
        return Target("/v2/models/m/infer", None, ports)
    m = re.fullmatch(r"(lr|rf)(-batching)?", case)
    if m is None:
        raise SystemExit(f"Unknown case {case!r}; use fake-<N>ms, lr, lr-batching, rf-batching.")
    model = m.group(1)
    bundle, body = ARTIFACTS / f"loopline_{model}", ARTIFACTS / "payload" / "loopline_1.json"
    if not bundle.is_dir() or not body.is_file():
        raise SystemExit(
            f"Missing {bundle} or {body}: create them with `cd benchmarks/serving && "
            f"ARTIFACTS={ARTIFACTS} ../../.venv/bin/python train.py && ARTIFACTS={ARTIFACTS} "
            "../../.venv/bin/python save_loopline.py`."
        )
    for port in ports:  # one at a time: two start-ups at once starve each other
        procs.append(subprocess.Popen(
            [str(LOOPLINE), "serve", str(bundle), "--port", str(port), "--workers", "1",
             *(["--batching"] if m.group(2) else [])],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=measured_env(),
        ))  # fmt: skip
        wait_http(f"http://127.0.0.1:{port}{HEALTH}", procs[-1])
    return Target(f"/v2/models/{model}/infer", body, ports)


def scenario(case: str, args: argparse.Namespace) -> dict[str, object]:
    procs: list[subprocess.Popen[bytes]] = []
    try:
        target = start_backends(case, procs)
        check = httpx.post(
            f"http://127.0.0.1:{target.ports[0]}{target.path}",
            content=target.body.read_bytes() if target.body else FAKE_BODY,
            headers={"content-type": "application/json"},
        )
        if check.status_code != 200:
            raise SystemExit(f"{case}: backend answered {check.status_code}: {check.text[:200]}")
        rport, aport = free_port(), free_port()
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "loopline.deploy.router", "--name", "bench",
             "--port", str(rport), "--admin-port", str(aport),
             "--workers", str(args.router_workers)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=measured_env(),
        ))  # fmt: skip
        router_pid = procs[-1].pid
        wait_http(f"http://127.0.0.1:{aport}/healthz", procs[-1])
        httpx.put(
            f"http://127.0.0.1:{aport}/backends",
            json={
                "backends": [
                    {"id": f"b{i}", "host": "127.0.0.1", "port": p, "revision": "r"}
                    for i, p in enumerate(target.ports)
                ],
                "weights": None,
            },
        ).raise_for_status()
        target.routed(rport, args.connections, 1)  # warm-up (pools, caches)
        target.direct(args.connections, 1)
        backend_pids = [p.pid for p in procs[:-1]]

        def backends_cpu() -> float:
            return sum(cpu_seconds(pid) for pid in backend_pids)

        direct, routed, cpu_us, b_direct, b_routed = [], [], [], [], []
        for _ in range(args.rounds):
            b0 = backends_cpu()
            direct.append(target.direct(args.connections, args.duration))
            b_direct.append((backends_cpu() - b0) / (direct[-1][0] * args.duration) * 1e6)
            before, b0 = cpu_seconds(router_pid), backends_cpu()
            routed.append(target.routed(rport, args.connections, args.duration))
            spent = cpu_seconds(router_pid) - before
            cpu_us.append(spent / (routed[-1][0] * args.duration) * 1e6)
            b_routed.append((backends_cpu() - b0) / (routed[-1][0] * args.duration) * 1e6)
        d_rps = statistics.median(r[0] for r in direct)
        r_rps = statistics.median(r[0] for r in routed)
        d_p50 = statistics.median(r[1] for r in direct)
        r_p50 = statistics.median(r[1] for r in routed)
        return {
            "case": case,
            "router_workers": args.router_workers,
            "connections": args.connections,
            "direct_rps": round(d_rps),
            "router_rps": round(r_rps),
            "throughput_ratio": round(r_rps / d_rps, 3),
            "direct_p50_ms": round(d_p50, 3),
            "router_p50_ms": round(r_p50, 3),
            "added_p50_ms": round(r_p50 - d_p50, 3),
            "router_cpu_us_per_request": round(statistics.median(cpu_us), 1),
            "backends_cpu_us_per_request_direct": round(statistics.median(b_direct), 1),
            "backends_cpu_us_per_request_routed": round(statistics.median(b_routed), 1),
            "errors": sum(r[2] for r in direct + routed),
            "rounds": args.rounds,
            "duration_s": args.duration,
        }
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=4)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--router-workers", type=int, default=1)
    parser.add_argument("--cases", nargs="+", default=DEFAULT_CASES)
    parser.add_argument("--out", type=Path, help="also append each result line to this file")
    args = parser.parse_args()
    for case in args.cases:
        line = json.dumps(scenario(case, args))
        print(line, flush=True)
        if args.out is not None:
            with args.out.open("a") as f:
                f.write(line + "\n")


if __name__ == "__main__":
    main()
