"""(Copied from shared/bench/serving; adds the peers "loopline" and "loopline_batch".)

Orchestrate the peer-server benchmark: start a server, check it answers,
run wrk at each (batch, concurrency), sample the server's memory, stop it.

Stdlib only. Load goes to 127.0.0.1 only; every wrk run is bounded by --duration.
Servers are stopped by the PIDs this script started (SIGTERM to the root, then
SIGKILL to any recorded descendant that is still the same process).

Env:
  VENV_ROOT   folder holding venv-mlflow, venv-bentoml, venv-fastapi, venv-kserve
              (default: ./.venvs next to this file)
  ARTIFACTS   models and payloads from train.py (default: ./artifacts)
  WORKERS     server worker processes (default 2)
Example:
  python3 run_bench.py --peers fastapi,mlflow --models lr,rf --batches 1,32 \
      --conc 1,32,64 --duration 30 --out results/raw.jsonl
"""

import argparse
import json
import os
import pathlib
import re
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

HERE = pathlib.Path(__file__).resolve().parent
VENV_ROOT = pathlib.Path(os.environ.get("VENV_ROOT", HERE / ".venvs"))
ART = pathlib.Path(os.environ.get("ARTIFACTS", HERE / "artifacts"))
WORKERS = os.environ.get("WORKERS", "2")
HOST = "127.0.0.1"
CLK = os.sysconf("SC_CLK_TCK")


LOOPLINE_VENV = pathlib.Path(os.environ.get("LOOPLINE_VENV", HERE.parent.parent / ".venv"))


def venv(family, exe):
    if family == "loopline":
        return str(LOOPLINE_VENV / "bin" / exe)
    return str(VENV_ROOT / f"venv-{family}" / "bin" / exe)


def peer_spec(peer, model, port):
    """Return (family, argv, extra_env, health_path, predict_path, payload_prefix)."""
    mp = str(ART / f"{model}.joblib")
    if peer in ("loopline", "loopline_batch"):
        argv = [
            venv("loopline", "loopline"),
            "serve",
            str(ART / f"loopline_{model}"),
            "--allow-unverified",  # a bundle save_loopline.py just built
            "--host",
            HOST,
            "--port",
            str(port),
            "--workers",
            WORKERS,
        ]
        if peer == "loopline_batch":
            argv.append("--batching")
        return ("loopline", argv, {}, "/v2/health/ready", f"/v2/models/{model}/infer", "loopline")
    if peer == "fastapi":
        return (
            "fastapi",
            [
                venv("fastapi", "uvicorn"),
                "fastapi_app:app",
                "--host",
                HOST,
                "--port",
                str(port),
                "--workers",
                WORKERS,
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            {"MODEL_PATH": mp},
            "/health",
            "/predict",
            "fastapi",
        )
    if peer in ("bentoml", "bentoml_batch"):
        return (
            "bentoml",
            [
                venv("bentoml", "bentoml"),
                "serve",
                "bento_service:Classifier",
                "--host",
                HOST,
                "--port",
                str(port),
            ],
            {
                "MODEL_PATH": mp,
                "BENTO_WORKERS": WORKERS,
                "BENTO_BATCHING": "1" if peer == "bentoml_batch" else "0",
                "BENTOML_DO_NOT_TRACK": "True",
            },
            "/readyz",
            "/predict",
            "bentoml",
        )
    if peer == "mlflow":
        return (
            "mlflow",
            [
                venv("mlflow", "mlflow"),
                "models",
                "serve",
                "-m",
                str(ART / f"mlflow_{model}"),
                "--env-manager",
                "local",
                "-h",
                HOST,
                "-p",
                str(port),
                "--workers",
                WORKERS,
            ],
            # mlflow execs `uvicorn ...`; uvicorn reads UVICORN_* env vars
            {"UVICORN_ACCESS_LOG": "false"},
            "/ping",
            "/invocations",
            "mlflow",
        )
    if peer in ("kserve_v1", "kserve_v2"):
        return (
            "kserve",
            [
                venv("kserve", "python"),
                "kserve_server.py",
                "--http_port",
                str(port),
                "--grpc_port",
                str(port + 1000),
                "--workers",
                WORKERS,
                "--enable_grpc",
                "false",
                "--enable_latency_logging",
                "false",
            ],
            {"MODEL_PATH": mp},
            "/v2/health/ready",
            "/v1/models/clf:predict" if peer == "kserve_v1" else "/v2/models/clf/infer",
            peer,
        )
    raise SystemExit(f"unknown peer {peer}")


# ---------------------------------------------------------------- process tree
def _stat(pid):
    with open(f"/proc/{pid}/stat") as f:
        s = f.read()
    rest = s[s.rindex(")") + 2 :].split()
    # fields after comm: state(0) ppid(1) ... utime(11) stime(12) ... starttime(19)
    return int(rest[1]), int(rest[11]) + int(rest[12]), int(rest[19])


def tree(root):
    """[(pid, starttime, cpu_ticks)] for root and all descendants."""
    parent = {}
    info = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                ppid, ticks, start = _stat(int(d))
            except (OSError, ValueError, IndexError):
                continue
            parent[int(d)] = ppid
            info[int(d)] = (start, ticks)
    out, frontier = [], [root]
    while frontier:
        p = frontier.pop()
        if p in info:
            out.append((p, info[p][0], info[p][1]))
            frontier.extend(c for c, pp in parent.items() if pp == p)
    return out


def mem_kib(pid):
    rss = pss = 0
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss


class Sampler(threading.Thread):
    def __init__(self, root, every=0.5):
        super().__init__(daemon=True)
        self.root, self.every = root, every
        self.peak_rss = self.peak_pss = 0
        self.nproc = 0
        self.seen = {}
        self._halt = threading.Event()

    def sample(self):
        t = tree(self.root)
        rss = pss = 0
        for pid, start, _ in t:
            self.seen[pid] = start
            r, p = mem_kib(pid)
            rss += r
            pss += p
        self.peak_rss = max(self.peak_rss, rss)
        self.peak_pss = max(self.peak_pss, pss)
        self.nproc = max(self.nproc, len(t))
        return rss, pss

    def run(self):
        while not self._halt.is_set():
            self.sample()
            self._halt.wait(self.every)

    def stop(self):
        self._halt.set()
        self.join()
        self.sample()


def cpu_ticks(root):
    return sum(t for _, _, t in tree(root))


def sys_busy_ticks():
    """Machine-wide non-idle CPU ticks (all cores) from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return sum(v) - v[3] - v[4]  # minus idle, iowait


def wait_quiet(max_wait=10, threshold=0.3):
    """The machine may be shared: wait (bounded) until other processes use < threshold cores."""
    t0 = time.time()
    while True:
        b0 = sys_busy_ticks()
        time.sleep(1)
        busy = (sys_busy_ticks() - b0) / CLK
        if busy < threshold or time.time() - t0 > max_wait:
            return round(busy, 2), round(time.time() - t0, 1)


# ---------------------------------------------------------------- server control
def port_free(port):
    with socket.socket() as s:
        return s.connect_ex((HOST, port)) != 0


def http(method, path, port, body=None, timeout=10):
    req = urllib.request.Request(
        f"http://{HOST}:{port}{path}",
        data=body,
        method=method,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.status, r.read()


def wait_ready(proc, port, path, limit=180):
    t0 = time.time()
    while time.time() - t0 < limit:
        if proc.poll() is not None:
            return None
        try:
            st, _ = http("GET", path, port, timeout=2)
            if st == 200:
                return time.time() - t0
        except Exception:
            pass
        time.sleep(0.5)
    return None


def stop_server(proc, seen):
    """SIGTERM our root PID; then SIGKILL recorded descendants still alive (same starttime)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    time.sleep(1)
    for pid, start in seen.items():
        try:
            if _stat(pid)[2] == start:
                os.kill(pid, signal.SIGKILL)
        except (OSError, ValueError, IndexError):
            pass


# ---------------------------------------------------------------- wrk
def run_wrk(port, path, body_file, conc, duration, threads=1):
    env = dict(os.environ, BODY_FILE=str(body_file))
    cmd = [
        "wrk",
        f"-t{threads}",
        f"-c{conc}",
        f"-d{duration}s",
        "--timeout",
        "10s",
        "-s",
        str(HERE / "post.lua"),
        f"http://{HOST}:{port}{path}",
    ]
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=duration + 60)
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    m = re.search(r"^WRKJSON (.*)$", p.stdout, re.M)
    if not m:
        raise RuntimeError(f"wrk failed: {p.stdout}\n{p.stderr}")
    res = json.loads(m.group(1))
    res["wrk_cpu_s"] = round((r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime), 2)
    return res


def versions(family):
    pkgs = {
        "fastapi": ["fastapi", "uvicorn", "starlette"],
        "bentoml": ["bentoml"],
        "mlflow": ["mlflow", "uvicorn", "gunicorn"],
        "kserve": ["kserve", "fastapi", "uvicorn"],
        "loopline": ["loopline", "uvicorn", "uvloop", "httptools"],
        "mlserver": ["mlserver", "mlserver-sklearn", "uvloop"],
        "pytriton": ["nvidia-pytriton"],
    }[family]
    pkgs += ["scikit-learn", "numpy"]
    code = (
        f"import importlib.metadata as m, json\nout={{}}\nfor p in {pkgs!r}:\n"
        "    try: out[p]=m.version(p)\n    except Exception: pass\nprint(json.dumps(out))"
    )
    out = subprocess.run([venv(family, "python"), "-c", code], capture_output=True, text=True)
    return json.loads(out.stdout)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--peers", default="fastapi,bentoml,bentoml_batch,mlflow,kserve_v1")
    ap.add_argument("--models", default="lr,rf")
    ap.add_argument("--batches", default="1,32")
    ap.add_argument("--conc", default="1,32,64")
    ap.add_argument("--duration", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--port", type=int, default=18080)
    ap.add_argument("--out", default=str(HERE / "results" / "raw.jsonl"))
    a = ap.parse_args()
    out = pathlib.Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    logs = out.parent / "logs"
    logs.mkdir(exist_ok=True)

    for peer in a.peers.split(","):
        for model in a.models.split(","):
            port = a.port
            family, argv, extra, health, path, pfx = peer_spec(peer, model, port)
            if not port_free(port):
                raise SystemExit(f"port {port} busy")
            vers = versions(family)
            log = open(logs / f"{peer}_{model}.log", "w")
            env = dict(os.environ, **extra)  # as if the peer's venv were activated:
            vdir = pathlib.Path(venv(family, "python")).parent.parent
            env["PATH"] = str(vdir / "bin") + os.pathsep + env.get("PATH", "")
            env["VIRTUAL_ENV"] = str(vdir)
            t0 = time.time()
            proc = subprocess.Popen(argv, cwd=HERE, env=env, stdout=log, stderr=subprocess.STDOUT)
            sampler = Sampler(proc.pid)
            try:
                ready = wait_ready(proc, port, health)
                if ready is None:
                    print(
                        f"!! {peer}/{model}: server did not become ready; see {log.name}",
                        flush=True,
                    )
                    continue
                time.sleep(2)  # let all workers finish booting
                idle_rss, idle_pss = sampler.sample()
                checks = {}
                for n in map(int, a.batches.split(",")):
                    st, resp = http(
                        "POST", path, port, (ART / "payload" / f"{pfx}_{n}.json").read_bytes()
                    )
                    checks[n] = resp[:160].decode(errors="replace")
                    print(f"   {peer}/{model} n={n}: HTTP {st} {checks[n][:100]}", flush=True)
                for n in map(int, a.batches.split(",")):
                    body = ART / "payload" / f"{pfx}_{n}.json"
                    if a.warmup:
                        run_wrk(port, path, body, 8, a.warmup)
                    for c in map(int, a.conc.split(",")):
                        pre_busy, waited = wait_quiet()
                        sampler = Sampler(proc.pid)
                        sampler.start()
                        cpu0, sys0 = cpu_ticks(proc.pid), sys_busy_ticks()
                        r = run_wrk(port, path, body, c, a.duration)
                        cpu1, sys1 = cpu_ticks(proc.pid), sys_busy_ticks()
                        sampler.stop()
                        server_cpu = (cpu1 - cpu0) / CLK
                        other_cpu = (sys1 - sys0) / CLK - server_cpu - r["wrk_cpu_s"]
                        row = {
                            "peer": peer,
                            "model": model,
                            "batch": n,
                            "conc": c,
                            "duration_s": a.duration,
                            "workers": int(WORKERS),
                            # successful (2xx) responses per second; wrk's own
                            # request count also includes non-2xx answers
                            "rps": round(
                                (r["requests"] - r["err_status"]) / (r["duration_us"] / 1e6), 1
                            ),
                            "rps_all": round(r["requests"] / (r["duration_us"] / 1e6), 1),
                            "p50_ms": r["lat_p50_us"] / 1000,
                            "p99_ms": r["lat_p99_us"] / 1000,
                            "errors": sum(r[k] for k in r if k.startswith("err_")),
                            "peak_rss_mib": round(sampler.peak_rss / 1024, 1),
                            "peak_pss_mib": round(sampler.peak_pss / 1024, 1),
                            "idle_rss_mib": round(idle_rss / 1024, 1),
                            "idle_pss_mib": round(idle_pss / 1024, 1),
                            "nproc": sampler.nproc,
                            "server_cpu_s": round(server_cpu, 2),
                            # CPU burnt by everything else (other tenants, this script):
                            "other_cores": round(other_cpu / (r["duration_us"] / 1e6), 2),
                            "pre_busy_cores": pre_busy,
                            "quiet_wait_s": waited,
                            "startup_s": round(ready, 1),
                            "versions": vers,
                            "check": checks[n][:80],
                            "wrk": r,
                        }
                        with out.open("a") as f:
                            f.write(json.dumps(row) + "\n")
                        print(
                            f"{peer:13s} {model} b={n:<2d} c={c:<2d} {row['rps']:8.1f} req/s "
                            f"p50 {row['p50_ms']:7.2f} ms p99 {row['p99_ms']:7.2f} ms "
                            f"err {row['errors']} rss {row['peak_rss_mib']} MiB "
                            f"pss {row['peak_pss_mib']} MiB srv {row['server_cpu_s']}s "
                            f"wrk {r['wrk_cpu_s']}s other {row['other_cores']} cores",
                            flush=True,
                        )
            finally:
                seen = dict(sampler.seen)
                seen.update({p: s for p, s, _ in tree(proc.pid)})
                stop_server(proc, seen)
                log.close()
                print(f"   stopped {peer}/{model} ({time.time() - t0:.0f}s)", flush=True)


if __name__ == "__main__":
    sys.exit(main())
