"""Slowloris against the router: normal load's p99 with 500 slow connections open.

    python benchmarks/router/slowloris.py [--slow 500] [--duration 15] [--rounds 2] [--conc 8]
        [--router-args "--head-timeout 10"]

Starts one fake replica (``tests/deploy/fake_server.py``, answers at once) and a router
process (``python -m loopline.deploy.router``, 1 worker, default limits unless --router-args
adds flags) in front of it, then alternates, ``--rounds`` times:

- baseline: ``wrk -c CONC -d DURATION`` keep-alive V2 POSTs through the router alone;
- attack: the same wrk run while ``--slow`` connections each send a partial head, one byte a
  second; a connection the router closes is opened again at once, so ``--slow`` stay open.

Prints one JSON line per run (p50/p99, errors, the router's RSS, how the slow connections
ended) and the p99 ratio attack/baseline per round. The slow clients, the RSS reading and the
wrk driver are the model server's benchmark's (``benchmarks/serving/slowloris.py``). Load goes
to 127.0.0.1 only and every run is bounded by --duration.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "serving"))
from slowloris import Slow, rss_mib, wrk  # noqa: E402  (the server benchmark's, stdlib only)

from loopline.deploy.route_table import Backend, RouteTable  # noqa: E402
from loopline.deploy.router.client import RouterAdminClient  # noqa: E402
from loopline.deploy.traffic import Traffic  # noqa: E402

FAKE = HERE.parents[1] / "tests" / "deploy" / "fake_server.py"
BODY = b'{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[5.1,3.5,1.4,0.2]}]}'


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(check: object, what: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise SystemExit(f"{what} not up within 60 s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--slow", type=int, default=500)
    ap.add_argument("--duration", type=int, default=15)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--conc", type=int, default=8)
    ap.add_argument("--router-args", default="", help="extra router flags (limits)")
    a = ap.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("needs wrk (apt-get install wrk)")
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="router-slowloris-"))
    body_file = tmp / "body.json"
    body_file.write_bytes(BODY)
    secret = secrets.token_urlsafe(32)
    secret_file = tmp / "admin.secret"
    secret_file.write_text(secret)
    secret_file.chmod(0o600)
    replica_port, port, admin_port = _port(), _port(), _port()
    replica = subprocess.Popen([sys.executable, str(FAKE), "--port", str(replica_port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    router = subprocess.Popen(
        [sys.executable, "-m", "loopline.deploy.router", "--name", "bench", "--port", str(port),
         "--admin-port", str(admin_port), "--admin-secret-file", str(secret_file),
         *a.router_args.split()],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        admin = RouterAdminClient(admin_port, secret)
        _wait(admin.healthy, "the router")
        admin.set_routes(RouteTable((Backend("a", "127.0.0.1", replica_port, "r"),), Traffic()))
        path = "/v2/models/m/infer"
        wrk(port, path, str(body_file), a.conc, 2)  # warm-up
        for rnd in range(a.rounds):
            base = wrk(port, path, str(body_file), a.conc, a.duration)
            base.update(run="baseline", round=rnd, rss_mib=rss_mib(router.pid))
            print(json.dumps(base), flush=True)
            slow = Slow(port, a.slow)
            slow.start()
            hit = wrk(port, path, str(body_file), a.conc, a.duration)
            hit.update(run="attack", round=rnd, rss_mib=rss_mib(router.pid), **slow.stop())
            print(json.dumps(hit), flush=True)
            ratio = hit["p99_ms"] / base["p99_ms"] if base["p99_ms"] else float("nan")
            print(f"round {rnd}: p99 attack/baseline = {ratio:.2f}", flush=True)
            time.sleep(2)
    finally:
        _stop(router)
        _stop(replica)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
