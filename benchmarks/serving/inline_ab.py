"""Served A/B of the batcher's inline decision: base tree vs this one, 1 worker each, wrk c=64.

    BASE_SRC=/tmp/ll-base/src [PERTURB=1] .venv/bin/python benchmarks/serving/inline_ab.py 4

Both servers (``loopline serve lr --workers 1 --batching``; the base one with ``PYTHONPATH``
= ``BASE_SRC``, e.g. ``git archive <commit> src``) run side by side; each round runs wrk
(4 s, c=64, 1-row V2 JSON) on each in alternating order and prints rps, p50/p99, the worker's
CPU per request on its main thread (the event loop) and on its other threads (the batch
thread: ~0 when batches run inline), and the mean batch duration from ``/metrics``.
``PERTURB=1`` first runs 6 s of wrk on both while 3 busy processes starve the CPU for 4 s.
"""
import json
import os
import pathlib
import signal
import subprocess
import sys
import time
import urllib.request

ROOT = pathlib.Path("/work/main")
BUNDLE = "/tmp/loopline-bench/artifacts/loopline_lr"
BODY = "/tmp/loopline-bench/artifacts/payload/loopline_1.json"
TICK = os.sysconf("SC_CLK_TCK")
servers = {}
procs = []
for name, port, pp in (("base", 18461, os.environ.get("BASE_SRC", "/tmp/ll-base/src")), ("now", 18462, "")):
    env = dict(os.environ, PYTHONPATH=pp) if pp else dict(os.environ)
    p = subprocess.Popen([str(ROOT / ".venv/bin/loopline"), "serve", BUNDLE, "--port", str(port),
                          "--workers", "1", "--batching", "--allow-unverified"], env=env,
                         stdout=open(f"/tmp/ll-ab/{name}.log", "w"), stderr=subprocess.STDOUT,
                         start_new_session=True)
    procs.append(p)
    servers[name] = (port, p)
print("pids", [p.pid for p in procs], flush=True)
def ready(port):
    try:
        return urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/health/ready", timeout=2).status == 200
    except Exception:
        return False
deadline = time.monotonic() + 120
while not all(ready(s[0]) for s in servers.values()):
    if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
        sys.exit("servers not ready")
    time.sleep(1)
def children(pid):
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(x) for x in out]
def threads_cpu(pid):
    """(main thread ticks, other threads ticks) of the worker(s) under pid."""
    main = other = 0
    for w in children(pid):
        for t in os.listdir(f"/proc/{w}/task"):
            f = open(f"/proc/{w}/task/{t}/stat").read().rsplit(")", 1)[1].split()
            ticks = int(f[11]) + int(f[12])
            if int(t) == w:
                main += ticks
            else:
                other += ticks
    return main, other
def metric(port, name):
    txt = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    s = c = 0.0
    for line in txt.splitlines():
        if line.startswith(name + "_sum"):
            s += float(line.split()[-1])
        if line.startswith(name + "_count"):
            c += float(line.split()[-1])
    return s, c
results = []
HOG = "import time\nt=time.monotonic()\nwhile time.monotonic()-t<4: pass"
if os.environ.get("PERTURB"):  # a burst of CPU starvation under load, then the same load
    hogs = [subprocess.Popen([sys.executable, "-c", HOG]) for _ in range(3)]
    loads = [subprocess.Popen(["wrk", "-t1", "-c64", "-d6s", "-s", str(ROOT / "benchmarks/serving/post.lua"),
                               f"http://127.0.0.1:{port}/v2/models/lr/infer"],
                              env=dict(os.environ, BODY_FILE=BODY), stdout=subprocess.DEVNULL)
             for port, _ in servers.values()]
    for h in hogs + loads:
        h.wait()
    print("perturbed", flush=True)
try:
    for rnd in range(int(sys.argv[1]) if len(sys.argv) > 1 else 3):
        order = ["base", "now"] if rnd % 2 == 0 else ["now", "base"]
        for name in order:
            port, p = servers[name]
            m0, o0 = threads_cpu(p.pid)
            s0, c0 = metric(port, "loopline_batch_duration_seconds")
            load = open("/proc/loadavg").read().split()[0]
            out = subprocess.run(["wrk", "-t1", "-c64", "-d4s", "--timeout", "10s", "-s",
                                  str(ROOT / "benchmarks/serving/post.lua"),
                                  f"http://127.0.0.1:{port}/v2/models/lr/infer"],
                                 env=dict(os.environ, BODY_FILE=BODY), capture_output=True, text=True).stdout
            m1, o1 = threads_cpu(p.pid)
            s1, c1 = metric(port, "loopline_batch_duration_seconds")
            w = json.loads(out.split("WRKJSON ", 1)[1].splitlines()[0])
            rps = w["requests"] / (w["duration_us"] / 1e6)
            r = {"round": rnd, "code": name, "load": load, "rps": round(rps),
                 "p50_ms": w["lat_p50_us"] / 1000, "p99_ms": w["lat_p99_us"] / 1000,
                 "main_thread_cpu_us_per_req": round((m1 - m0) / TICK / w["requests"] * 1e6, 1),
                 "other_threads_cpu_us_per_req": round((o1 - o0) / TICK / w["requests"] * 1e6, 1),
                 "batches": int(c1 - c0), "mean_batch_wall_ms": round((s1 - s0) / max(c1 - c0, 1) * 1000, 3),
                 "errors": w["err_status"] + w["err_timeout"] + w["err_read"]}
            print(json.dumps(r), flush=True)
            results.append(r)
finally:
    for p in procs:
        os.killpg(p.pid, signal.SIGTERM)
    for p in procs:
        p.wait(timeout=60)
