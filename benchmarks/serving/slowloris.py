"""Slowloris against `loopline serve`: normal load's p99 with 500 slow connections open.

    python slowloris.py MODEL_DIR [--slow 500] [--duration 15] [--rounds 2] [--conc 8]

Starts `loopline serve MODEL_DIR --allow-unverified --port 0` (1 worker, default limits unless
--serve-args adds flags), then alternates, `--rounds` times:

- baseline: `wrk -c CONC -d DURATION` keep-alive V2 POSTs (post.lua) alone;
- attack: the same wrk run while `--slow` connections each send a partial head, one byte a
  second; a connection the server closes is opened again at once, so `--slow` stay open.

Prints one JSON line per run (p50/p99, errors, the server's RSS, how the slow connections
ended) and the p99 ratio attack/baseline per round. Stdlib only; load goes to 127.0.0.1 only
and every run is bounded by --duration. The body is the first row of the model's input
example unless --body names a JSON file.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = pathlib.Path(__file__).resolve().parent
HOST = "127.0.0.1"
HEAD = b"POST /v2/models/m/infer HTTP/1.1\r\nHost: t\r\nX-Slow: " + b"s" * 4000


class Slow:
    """Keep ``count`` connections open, each sending HEAD one byte a second."""

    def __init__(self, port: int, count: int) -> None:
        self.port = port
        self.count = count
        self.opened = 0
        self.answered_408 = 0
        self.closed_other = 0
        self.refused = 0
        self.lifetimes: list[float] = []
        self._socks: dict[socket.socket, tuple[float, int]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._fill()
        self._thread.start()

    def _fill(self) -> None:
        while len(self._socks) < self.count and not self._stop.is_set():
            try:
                s = socket.create_connection((HOST, self.port), timeout=5)
                s.sendall(HEAD[:1])
            except OSError:
                self.refused += 1
                return
            s.setblocking(False)
            self._socks[s] = (time.monotonic(), 1)
            self.opened += 1

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            for s, (t0, n) in list(self._socks.items()):
                try:
                    data = s.recv(4096)
                except BlockingIOError:
                    data = None
                except OSError:
                    data = b""
                if data is None:
                    try:
                        s.send(HEAD[n : n + 1])
                        self._socks[s] = (t0, n + 1)
                        continue
                    except OSError:
                        data = b""
                if data.startswith(b"HTTP/1.1 408"):
                    self.answered_408 += 1
                else:
                    self.closed_other += 1
                self.lifetimes.append(time.monotonic() - t0)
                del self._socks[s]
                s.close()
            self._fill()

    def stop(self) -> dict[str, object]:
        self._stop.set()
        self._thread.join(10)
        for s in self._socks:
            s.close()
        life = sorted(self.lifetimes)
        return {
            "slow_opened": self.opened,
            "slow_closed_408": self.answered_408,
            "slow_closed_other": self.closed_other,
            "slow_refused": self.refused,
            "slow_lifetime_max_s": round(life[-1], 1) if life else None,
            "slow_lifetime_p50_s": round(life[len(life) // 2], 1) if life else None,
        }


def rss_mib(pid: int) -> float:
    total = 0
    pids = [pid]
    try:
        pids += [int(p) for p in pathlib.Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        pass
    for p in pids:
        try:
            for line in pathlib.Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return round(total / 1024, 1)


def wrk(port: int, path: str, body_file: str, conc: int, duration: int) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{conc}", f"-d{duration}s", "--timeout", "10s", "-s",
         str(HERE / "post.lua"), f"http://{HOST}:{port}{path}"],
        capture_output=True, text=True, env=dict(os.environ, BODY_FILE=body_file), check=True,
    )  # fmt: skip
    line = next(x for x in out.stdout.splitlines() if x.startswith("WRKJSON "))
    r = json.loads(line[len("WRKJSON ") :])
    errors = sum(r[k] for k in r if k.startswith("err_"))
    return {
        "rps": round(r["requests"] / (r["duration_us"] / 1e6), 1),
        "p50_ms": r["lat_p50_us"] / 1000,
        "p99_ms": r["lat_p99_us"] / 1000,
        "max_ms": r["lat_max_us"] / 1000,
        "errors": errors,
    }


def start_server(model_dir: str, extra: list[str]) -> tuple[subprocess.Popen[str], int]:
    argv = [sys.executable, "-c", "from loopline.cli.main import main; main()", "serve",
            model_dir, "--allow-unverified", "--host", HOST, "--port", "0", *extra]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if "listening on" not in line:
        proc.kill()
        raise SystemExit(f"server did not start: {line!r}")
    port = int(line.split("listening on ")[1].split()[0].rsplit(":", 1)[1])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://{HOST}:{port}/v2/health/ready", timeout=2):
                return proc, port
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("server not ready within 60 s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("model_dir")
    ap.add_argument("--slow", type=int, default=500)
    ap.add_argument("--duration", type=int, default=15)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--conc", type=int, default=8)
    ap.add_argument("--body", help="a V2 request body (JSON file)")
    ap.add_argument("--serve-args", default="", help="extra `loopline serve` flags")
    a = ap.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("needs wrk (apt-get install wrk)")
    model_dir = str(pathlib.Path(a.model_dir).resolve())
    proc, port = start_server(model_dir, a.serve_args.split())
    tmp = tempfile.mkdtemp(prefix="slowloris-")
    try:
        with urllib.request.urlopen(f"http://{HOST}:{port}/v2/models", timeout=5) as r:
            name = json.load(r)["models"][0]
        body_file = a.body or _example_body(port, name, tmp)
        path = f"/v2/models/{name}/infer"
        wrk(port, path, body_file, a.conc, 2)  # warm-up
        for rnd in range(a.rounds):
            base = wrk(port, path, body_file, a.conc, a.duration)
            base.update(run="baseline", round=rnd, rss_mib=rss_mib(proc.pid))
            print(json.dumps(base), flush=True)
            slow = Slow(port, a.slow)
            slow.start()
            hit = wrk(port, path, body_file, a.conc, a.duration)
            hit.update(run="attack", round=rnd, rss_mib=rss_mib(proc.pid), **slow.stop())
            print(json.dumps(hit), flush=True)
            ratio = hit["p99_ms"] / base["p99_ms"] if base["p99_ms"] else float("nan")
            print(f"round {rnd}: p99 attack/baseline = {ratio:.2f}", flush=True)
            time.sleep(2)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(tmp, ignore_errors=True)


def _example_body(port: int, name: str, tmp: str) -> str:
    with urllib.request.urlopen(f"http://{HOST}:{port}/v2/models/{name}", timeout=5) as r:
        meta = json.load(r)
    spec = meta["inputs"][0]
    width = 1
    for d in spec["shape"][1:]:
        width *= max(int(d), 1)
    body = {"inputs": [{"name": spec["name"], "shape": [1, width], "datatype": spec["datatype"],
                        "data": [0.0] * width}]}  # fmt: skip
    path = os.path.join(tmp, "body.json")
    with open(path, "w") as f:
        json.dump(body, f)
    return path


if __name__ == "__main__":
    main()
