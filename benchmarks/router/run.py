"""Router overhead: wrk through the router (2 backends) vs wrk straight at the 2 backends.

    .venv/bin/python benchmarks/router/run.py [--duration 4] [--rounds 3] [--connections 32]
        [--cases fake-0ms fake-5ms lr lr-batching rf-batching] [--router-workers 1]
        [--proxies loopline loopline-weighted loopline-mirror loopline-base haproxy haproxy-2t
                   nginx nginx-weighted nginx-mirror nginx-mirror-0 nginx-mirror-empty]
        [--baseline-src DIR] [--loopline-src DIR] [--pin]

Cases (backends):
  ``fake-<N>ms``   ``tests/deploy/fake_server.py`` (raw asyncio, answers an OIP-shaped JSON)
                   with a simulated inference time of N ms (asyncio sleep: no CPU).
  ``lr``, ``lr-batching``, ``rf-batching``   two real ``loopline serve DIR --workers 1
                   [--batching]`` replicas of the serving benchmark's models (bundles from
                   ``benchmarks/serving``: ``$ARTIFACTS/loopline_<model>``, body
                   ``$ARTIFACTS/payload/loopline_1.json``; ARTIFACTS defaults to
                   /tmp/loopline-bench/artifacts).

Proxies (``--proxies``, default ``loopline``), each in front of the same two backends:
  ``loopline``     ``python -m loopline.deploy.router --workers N`` (``--router-workers``),
                   both backends one revision, no weights (the plain case).
  ``loopline-weighted``   the same router with the backends as two revisions, weights 80/20.
  ``loopline-mirror``     weights 80/20 and a mirror of 20 % of the requests to a third,
                   shadow revision: one more backend that only answers copies, a fake server
                   that answers at once (so the mirror's bound of 4 outstanding per backend
                   never drops a copy, and every copy's cost is measured); copies are compared
                   with the served answers.
  ``loopline-base``   the plain case run from another source tree (``--baseline-src``, e.g.
                   ``git archive <commit> src | tar -x -C DIR``): the router before a change.
                   ``--loopline-src DIR`` runs all the other loopline variants from DIR (e.g.
                   a commit, while the working tree is being edited).
  ``haproxy``, ``haproxy-<N>t``   HAProxy as a peer, ``nbthread`` 1 or N (it cannot mirror).
  ``nginx``, ``nginx-weighted``, ``nginx-mirror``, ``nginx-mirror-0``   nginx as a peer (one
                   worker): round robin, 80/20, 80/20 with 20 % mirrored to the shadow, and
                   the mirror subrequest made for every request but returning at once;
                   ``nginx-mirror-empty`` copies to a path the shadow answers with no body
                   (nginx keeps a mirror's upstream connection only then; see peers.py).
                   Configs and install: ``peers.py``; the peers are installed with apt-get
                   only when requested.

"Direct" runs two wrk processes at once, one per backend, with half the connections each,
and sums their throughput. Each round measures direct and every proxy in turn, rotating the
order so each goes first in turn and noise hits all alike; the figures reported are medians
over rounds. ``router_cpu_us_per_request`` (``<proxy>_cpu_us_per_request`` for HAProxy) is
the proxy process tree's CPU time (from /proc) per request served through it (``*_user_us_*``
its user-space part);
``backends_cpu_us_per_request_{direct,routed,<proxy>}`` the same for the two backends'
process trees, hit directly, through the loopline router and through the other proxies. The
loopline variants are also compared with the plain router round by round (``*_vs_plain``:
medians of per-round ratios); the mirror variant reports its counters,
``loopline_mirror_sent_share`` (copies sent / requests served, per round, from the counters;
``loopline_mirror_copied_share`` until 2026-12-07) and ``loopline_mirror_cpu_vs_weighted``
(the copies' cost on top of the same weights). Every mirroring variant's copied share
(``<variant>_copied_share``) is counted at the shadow (the bytes it wrote, from
``/proc/PID/io``, over the bytes of one answer), and what a copy costs in served requests is
computed by ``variants.py``. ``loadavg_by_round`` is the 1-minute load average as each round
starts. Measured Python processes run without PYTHONDONTWRITEBYTECODE (as in
benchmarks/serving). Everything binds 127.0.0.1 and stops by itself.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import peers
import variants

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


# ``--pin``: the load generator and the replicas on CPU 0, the proxy alone on CPU 1 (the
# configuration the goal is about: a proxy whose CPU does not come out of the replicas').
PIN: dict[str, list[str]] = {"load": [], "proxy": []}


def pinned(role: str, argv: list[str]) -> list[str]:
    return [*PIN[role], *argv]


def wrk(port: int, path: str, body: Path | None, connections: int,
        duration: int) -> subprocess.Popen[str]:  # fmt: skip
    env = dict(os.environ, BODY_FILE=str(body) if body else "")
    return subprocess.Popen(
        pinned("load", ["/usr/bin/wrk", "-t1", f"-c{connections}", f"-d{duration}s",
               "--latency", "-s", str(LUA), f"http://127.0.0.1:{port}{path}"]),
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


def cpu_seconds(pid: int, user_only: bool = False) -> float:
    """utime + stime (utime alone if ``user_only``) of ``pid`` and its children, from /proc
    (clock ticks → seconds)."""
    total = 0.0
    pids = [pid]
    while pids:
        p = pids.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            ticks = int(fields[11]) + (0 if user_only else int(fields[12]))
            total += ticks / os.sysconf("SC_CLK_TCK")
            for task in Path(f"/proc/{p}/task").iterdir():
                pids += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return total


class Target:
    """Where wrk points: path and body of the requests, the backends' ports (and the shadow's,
    the mirror variant's third backend, 0 if none)."""

    def __init__(self, path: str, body: Path | None, ports: list[int]) -> None:
        self.path, self.body, self.ports = path, body, ports
        self.shadow = 0

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
                pinned("load", [sys.executable, str(FAKE), "--port", str(port),
                                "--id", f"b{i}", "--latency-ms", m.group(1)]),
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
            pinned("load", [str(LOOPLINE), "serve", str(bundle), "--port", str(port),
                            "--workers", "1", "--allow-unverified",  # a bundle we just built
                            *(["--batching"] if m.group(2) else [])]),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=measured_env(),
        ))  # fmt: skip
        wait_http(f"http://127.0.0.1:{port}{HEALTH}", procs[-1])
    return Target(f"/v2/models/{model}/infer", body, ports)


PROXY = re.compile(rf"loopline(?:-weighted|-mirror|-base)?|{peers.PEER.pattern}")
# The modes whose proxy copies requests to the shadow backend.
MIRRORS = ("loopline-mirror", *peers.MIRROR_PERCENT)
ADMIN: dict[str, int] = {}  # loopline variant -> its admin port (for the mirror counters)
# What the loopline variants are given: (revision of each backend, weights, mirror); the
# mirror variant also gets the shadow backend, revision "shadow" (no weight: copies only).
TABLES: dict[str, tuple[tuple[str, str], dict[str, int] | None, dict[str, object] | None]] = {
    "loopline": (("r", "r"), None, None),
    "loopline-base": (("r", "r"), None, None),
    "loopline-weighted": (("r1", "r2"), {"r1": 80, "r2": 20}, None),
    "loopline-mirror": (("r1", "r2"), {"r1": 80, "r2": 20}, {"revision": "shadow", "percent": 20}),
}


def start_shadow(procs: list[subprocess.Popen[bytes]]) -> tuple[int, int, dict[str, int]]:
    """The mirror variants' shadow backend (a fake server answering at once): its port, its
    pid and the bytes it writes per answered copy (measured on one request; mode → bytes,
    ``""`` for all but ``peers.EMPTY_ANSWER``), by which its ``/proc/PID/io`` write count
    tells how many copies a proxy sent it."""
    port = free_port()
    procs.append(subprocess.Popen(
        pinned("load", [sys.executable, str(FAKE), "--port", str(port), "--id", "shadow"]),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=measured_env(),
    ))  # fmt: skip
    wait_http(f"http://127.0.0.1:{port}{HEALTH}", procs[-1])
    pid = procs[-1].pid
    sizes: dict[str, int] = {}
    for mode, path in (("", "/v2/models/m/infer"), *((m, peers.EMPTY_PATH)
                                                     for m in peers.EMPTY_ANSWER)):  # fmt: skip
        before = written_bytes(pid)
        httpx.post(f"http://127.0.0.1:{port}{path}", content=FAKE_BODY)
        sizes[mode] = written_bytes(pid) - before
        if sizes[mode] <= 0:
            raise SystemExit(f"the shadow (pid {pid}) wrote {sizes[mode]} bytes for an answer; "
                             "its /proc/PID/io cannot count the copies here")  # fmt: skip
    return port, pid, sizes


def written_bytes(pid: int) -> int:
    """Bytes ``pid`` wrote with write(2)-family calls (``wchar`` in /proc/PID/io)."""
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    raise SystemExit(f"no wchar line in /proc/{pid}/io")


def start_proxy(
    name: str, target: Target, args: argparse.Namespace, tmp: Path,
    procs: list[subprocess.Popen[bytes]],
) -> tuple[int, int]:  # fmt: skip
    """Start proxy ``name`` in front of the target's backends; (its port, its pid)."""
    port = free_port()
    if name in TABLES:
        aport = free_port()
        env = measured_env()
        tree = args.baseline_src if name == "loopline-base" else args.loopline_src
        if tree is not None:
            env["PYTHONPATH"] = str(tree / "src")
        argv = [sys.executable, "-m", "loopline.deploy.router", "--name", "bench", "--port",
                str(port), "--admin-port", str(aport), "--workers", str(args.router_workers)]
        headers = {}
        main_py = (tree or ROOT) / "src" / "loopline" / "deploy" / "router" / "__main__.py"
        if "--admin-secret-file" in main_py.read_text():  # routers that guard their admin API
            secret = tmp / "admin-secret"
            if not secret.exists():
                secret.write_text(secrets.token_urlsafe(32))
                secret.chmod(0o600)
            argv += ["--admin-secret-file", str(secret)]
            headers["authorization"] = f"Bearer {secret.read_text()}"
        procs.append(subprocess.Popen(
            pinned("proxy", argv), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
        ))  # fmt: skip
        wait_http(f"http://127.0.0.1:{aport}/healthz", procs[-1])
        revisions, weights, mirror = TABLES[name]
        backends = [
            {"id": f"b{i}", "host": "127.0.0.1", "port": p, "revision": rev}
            for i, (p, rev) in enumerate(zip(target.ports, revisions, strict=True))
        ]
        table: dict[str, object] = {"backends": backends, "weights": weights}
        if mirror is not None:
            backends.append({"id": "shadow", "host": "127.0.0.1", "port": target.shadow,
                             "revision": "shadow"})  # fmt: skip
            table["mirror"] = mirror
        httpx.put(f"http://127.0.0.1:{aport}/backends", json=table,
                  headers=headers).raise_for_status()  # fmt: skip
        ADMIN[name] = aport
        return port, procs[-1].pid
    argv = peers.peer_argv(name, port, target.ports, target.shadow, tmp, args.binaries)
    with (tmp / f"{name}.log").open("ab") as log:
        procs.append(subprocess.Popen(pinned("proxy", argv), stdout=log, stderr=subprocess.STDOUT))
    try:
        wait_http(f"http://127.0.0.1:{port}{HEALTH}", procs[-1], timeout=30)
    except SystemExit:
        sys.stderr.write((tmp / f"{name}.log").read_text())
        raise
    return port, procs[-1].pid


def result_keys(mode: str) -> dict[str, str]:
    """JSON keys of one proxy's figures (the loopline router keeps the historical names)."""
    if mode == "loopline":
        return {"rps": "router_rps", "p50": "router_p50_ms", "ratio": "throughput_ratio",
                "added": "added_p50_ms", "cpu": "router_cpu_us_per_request",
                "user": "router_user_us_per_request",
                "backends": "backends_cpu_us_per_request_routed"}  # fmt: skip
    p = mode.replace("-", "_")
    return {"rps": f"{p}_rps", "p50": f"{p}_p50_ms", "ratio": f"{p}_throughput_ratio",
            "added": f"{p}_added_p50_ms", "cpu": f"{p}_cpu_us_per_request",
            "user": f"{p}_user_us_per_request",
            "backends": f"backends_cpu_us_per_request_{p}"}  # fmt: skip


def scenario(case: str, args: argparse.Namespace) -> dict[str, object]:
    procs: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory(prefix="router-bench-") as tmp:
        try:
            return {**measure(case, args, Path(tmp), procs), "pinned": args.pin}
        finally:  # stop everything before its temp dir (HAProxy's config, log) goes
            for p in procs:
                p.terminate()
            for p in procs:
                try:
                    p.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(timeout=5)


def measure(
    case: str, args: argparse.Namespace, tmp: Path, procs: list[subprocess.Popen[bytes]]
) -> dict[str, object]:
    target = start_backends(case, procs)
    backend_pids = [p.pid for p in procs]  # the shadow's CPU is not the backends'
    shadow_pid, answer_bytes = 0, {"": 1}
    if any(m in MIRRORS for m in args.proxies):
        target.shadow, shadow_pid, answer_bytes = start_shadow(procs)
    check = httpx.post(
        f"http://127.0.0.1:{target.ports[0]}{target.path}",
        content=target.body.read_bytes() if target.body else FAKE_BODY,
        headers={"content-type": "application/json"},
    )
    if check.status_code != 200:
        raise SystemExit(f"{case}: backend answered {check.status_code}: {check.text[:200]}")
    proxies = {name: start_proxy(name, target, args, tmp, procs) for name in args.proxies}
    for port, _ in proxies.values():  # warm-up (pools, caches)
        target.routed(port, args.connections, 1)
    target.direct(args.connections, 1)

    def backends_cpu() -> float:
        return sum(cpu_seconds(pid) for pid in backend_pids)

    def mirror_counters() -> dict[str, int]:
        url = f"http://127.0.0.1:{ADMIN['loopline-mirror']}/stats?window=600"
        counters: dict[str, int] = httpx.get(url).json()["mirror"]["shadow"]
        return counters

    modes = ["direct", *args.proxies]
    # mode -> per round: req/s, p50 ms, errors, proxy CPU µs/request, backends CPU µs/request,
    # proxy user-space CPU µs/request
    samples: dict[str, list[tuple[float, float, int, float, float, float]]] = {m: [] for m in modes}
    copied: list[float] = []  # mirror variant, per round: copies sent / requests served
    # mode -> per round: copies the shadow answered / requests served (from its /proc/PID/io)
    shares: dict[str, list[float]] = {m: [] for m in modes}
    loads: list[float] = []  # the 1-minute load average as each round starts
    for r in range(args.rounds):
        loads.append(round(os.getloadavg()[0], 2))
        shift = r % len(modes)  # rotate the order so each mode goes first in turn
        for mode in modes[shift:] + modes[:shift]:
            pid = proxies[mode][1] if mode != "direct" else None
            b0 = backends_cpu()
            c0, u0 = (cpu_seconds(pid), cpu_seconds(pid, user_only=True)) if pid else (0.0, 0.0)
            sent0 = mirror_counters()["sent"] if mode == "loopline-mirror" else 0
            w0 = written_bytes(shadow_pid) if shadow_pid else 0
            if pid is None:
                rps, p50, errors = target.direct(args.connections, args.duration)
            else:
                rps, p50, errors = target.routed(proxies[mode][0], args.connections, args.duration)
            served = rps * args.duration
            proxy_us = (cpu_seconds(pid) - c0) / served * 1e6 if pid else 0.0
            user_us = (cpu_seconds(pid, user_only=True) - u0) / served * 1e6 if pid else 0.0
            backends_us = (backends_cpu() - b0) / served * 1e6
            samples[mode].append((rps, p50, errors, proxy_us, backends_us, user_us))
            if shadow_pid:  # whole answers only: the router's health checks write a few bytes
                size = answer_bytes.get(mode, answer_bytes[""])
                shares[mode].append((written_bytes(shadow_pid) - w0) // size / served)
            if mode == "loopline-mirror":
                copied.append((mirror_counters()["sent"] - sent0) / served)

    def med(mode: str, i: int) -> float:
        return statistics.median(s[i] for s in samples[mode])

    d_rps, d_p50 = med("direct", 0), med("direct", 1)
    result: dict[str, object] = {
        "case": case,
        "proxies": args.proxies,
        "router_workers": args.router_workers,
        "connections": args.connections,
        "direct_rps": round(d_rps),
        "direct_p50_ms": round(d_p50, 3),
        "backends_cpu_us_per_request_direct": round(med("direct", 4), 1),
    }
    for mode in args.proxies:
        k = result_keys(mode)
        result[k["rps"]] = round(med(mode, 0))
        result[k["ratio"]] = round(med(mode, 0) / d_rps, 3)
        result[k["p50"]] = round(med(mode, 1), 3)
        result[k["added"]] = round(med(mode, 1) - d_p50, 3)
        result[k["cpu"]] = round(med(mode, 3), 1)
        result[k["user"]] = round(med(mode, 5), 1)
        result[k["backends"]] = round(med(mode, 4), 1)
    # the variants against their plain proxy, round by round; what a mirrored copy costs
    result.update(variants.compare(
        {m: [(s[0], s[3]) for s in samples[m]] for m in args.proxies},
        {m: shares[m] for m in args.proxies if m in MIRRORS and shadow_pid},
    ))  # fmt: skip
    if shadow_pid:  # copies counted while a proxy that does not mirror was measured
        result["shadow_copies_from_non_mirrors"] = round(sum(
            v * s[0] * args.duration for m in modes if m not in MIRRORS
            for v, s in zip(shares[m], samples[m], strict=True)))  # fmt: skip
    if "loopline-mirror" in args.proxies:  # were the copies sent, answered, compared?
        result["loopline_mirror_counters"] = mirror_counters()
        result["loopline_mirror_sent_share"] = round(statistics.median(copied), 3)
    result["errors"] = sum(s[2] for m in modes for s in samples[m])
    result["rps_by_round"] = {m: [round(s[0]) for s in samples[m]] for m in modes}
    result["cpu_us_by_round"] = {m: [round(s[3], 1) for s in samples[m]] for m in args.proxies}
    if shadow_pid:
        result["copied_share_by_round"] = {m: [round(v, 4) for v in shares[m]] for m in MIRRORS
                                           if m in args.proxies}  # fmt: skip
    result["loadavg_by_round"] = loads
    result["rounds"] = args.rounds
    result["duration_s"] = args.duration
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=4)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--router-workers", type=int, default=1)
    parser.add_argument("--cases", nargs="+", default=DEFAULT_CASES)
    parser.add_argument(
        "--proxies", nargs="+", default=["loopline"],
        help="measured in turn against direct: loopline, loopline-weighted, loopline-mirror, "
        "loopline-base, haproxy (nbthread 1), haproxy-<N>t, nginx, nginx-weighted, "
        "nginx-mirror, nginx-mirror-0, nginx-mirror-empty",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, help="also append each result line to this file")
    parser.add_argument(
        "--baseline-src", type=Path,
        help="source tree (with src/loopline) of the loopline-base proxy",
    )  # fmt: skip
    parser.add_argument(
        "--loopline-src", type=Path,
        help="source tree (with src/loopline) of the loopline variants; default: this one",
    )  # fmt: skip
    parser.add_argument(
        "--pin", action="store_true",
        help="taskset: wrk and the replicas on CPU 0, the proxy on CPU 1",
    )  # fmt: skip
    args = parser.parse_args()
    if args.pin:
        PIN["load"], PIN["proxy"] = ["taskset", "-c", "0"], ["taskset", "-c", "1"]
    for name in args.proxies:
        if PROXY.fullmatch(name) is None:
            parser.error(
                f"unknown proxy {name!r}; use loopline, loopline-weighted, loopline-mirror, "
                "loopline-base, haproxy, haproxy-<N>t, nginx, nginx-weighted, nginx-mirror, "
                "nginx-mirror-0 or nginx-mirror-empty"
            )
    if len(set(args.proxies)) != len(args.proxies):
        parser.error(f"--proxies lists a proxy twice: {args.proxies}")
    if "loopline-base" in args.proxies and (
        args.baseline_src is None or not (args.baseline_src / "src" / "loopline").is_dir()
    ):
        parser.error("loopline-base needs --baseline-src DIR with DIR/src/loopline in it")
    if args.loopline_src is not None and not (args.loopline_src / "src" / "loopline").is_dir():
        parser.error(f"--loopline-src {args.loopline_src}: no src/loopline in it")
    args.binaries = {
        binary: peers.ensure(binary, package)
        for binary, package in (("haproxy", "haproxy"), ("nginx", "nginx-light"))
        if any(p.startswith(binary) for p in args.proxies)
    }
    for case in args.cases:
        line = json.dumps(scenario(case, args))
        print(line, flush=True)
        if args.out is not None:
            with args.out.open("a") as f:
                f.write(line + "\n")


if __name__ == "__main__":
    main()
