"""Interleaved (A/B) benchmark for a shared, noisy machine: every server of a model runs at
once on its own port, and each load cell (rows per request × concurrency) is run against
every server back to back, in rotating order, for several rounds. Drifting load from other
tenants then hits all servers alike, so the ratios between servers are meaningful even when
absolute numbers move. Reuses run_bench.py's server specs, wrk driver and samplers.

Usage (see run.sh):
  python3 ab_bench.py --peers loopline_batch,fastapi --models lr,rf --batches 1,32 \
      --conc 1,32,64 --duration 6 --rounds 2 --out results/ab.jsonl
"""

import argparse
import json
import os
import pathlib
import subprocess
import time

import run_bench as rb


def start(peer, model, port, logs):
    family, argv, extra, health, path, pfx = rb.peer_spec(peer, model, port)
    env = dict(os.environ, **extra)
    vdir = pathlib.Path(rb.venv(family, "python")).parent.parent
    env["PATH"] = str(vdir / "bin") + os.pathsep + env.get("PATH", "")
    env["VIRTUAL_ENV"] = str(vdir)
    log = open(logs / f"ab_{peer}_{model}.log", "w")
    proc = subprocess.Popen(argv, cwd=rb.HERE, env=env, stdout=log, stderr=subprocess.STDOUT)
    return {
        "peer": peer,
        "family": family,
        "proc": proc,
        "log": log,
        "port": port,
        "health": health,
        "path": path,
        "pfx": pfx,
        "versions": rb.versions(family),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--peers", required=True)
    ap.add_argument("--models", default="lr,rf")
    ap.add_argument("--batches", default="1,32")
    ap.add_argument("--conc", default="1,32,64")
    ap.add_argument("--duration", type=int, default=6)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--port", type=int, default=18100)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    out = pathlib.Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    logs = pathlib.Path(os.environ.get("BENCH_LOGS", "/tmp/loopline-bench/logs"))  # not in git
    logs.mkdir(parents=True, exist_ok=True)
    peers = a.peers.split(",")
    for model in a.models.split(","):
        servers = []
        try:
            for i, peer in enumerate(peers):  # one at a time: start-up bursts starve the others
                port = a.port + 10 * i
                if not rb.port_free(port):
                    raise SystemExit(f"port {port} busy")
                s = start(peer, model, port, logs)
                ready = rb.wait_ready(s["proc"], s["port"], s["health"], limit=120)
                if ready is None:
                    print(f"!! {peer}/{model} not ready after 120 s; left out", flush=True)
                    rb.stop_server(s["proc"], {p: st for p, st, _ in rb.tree(s["proc"].pid)})
                    s["log"].close()
                    continue
                s["startup_s"] = round(ready, 1)
                servers.append(s)
            time.sleep(2)
            for n in map(int, a.batches.split(",")):
                for s in servers:  # same answers everywhere, then a short warm-up
                    body = (rb.ART / "payload" / f"{s['pfx']}_{n}.json").read_bytes()
                    st, resp = rb.http("POST", s["path"], s["port"], body)
                    print(f"   {s['peer']}/{model} n={n}: HTTP {st} {resp[:90]!r}", flush=True)
                    rb.run_wrk(
                        s["port"], s["path"], rb.ART / "payload" / f"{s['pfx']}_{n}.json", 8, 2
                    )
                for c in map(int, a.conc.split(",")):
                    for rnd in range(a.rounds):
                        order = servers[rnd % len(servers) :] + servers[: rnd % len(servers)]
                        for s in order:
                            body = rb.ART / "payload" / f"{s['pfx']}_{n}.json"
                            pid = s["proc"].pid
                            sampler = rb.Sampler(pid)
                            sampler.start()
                            cpu0, sys0 = rb.cpu_ticks(pid), rb.sys_busy_ticks()
                            r = rb.run_wrk(s["port"], s["path"], body, c, a.duration)
                            cpu1, sys1 = rb.cpu_ticks(pid), rb.sys_busy_ticks()
                            sampler.stop()
                            secs = r["duration_us"] / 1e6
                            server_cpu = (cpu1 - cpu0) / rb.CLK
                            other = (sys1 - sys0) / rb.CLK - server_cpu - r["wrk_cpu_s"]
                            row = {
                                "peer": s["peer"],
                                "model": model,
                                "batch": n,
                                "conc": c,
                                "round": rnd,
                                "duration_s": a.duration,
                                "rps": round((r["requests"] - r["err_status"]) / secs, 1),
                                "p50_ms": r["lat_p50_us"] / 1000,
                                "p99_ms": r["lat_p99_us"] / 1000,
                                "errors": sum(r[k] for k in r if k.startswith("err_")),
                                "peak_rss_mib": round(sampler.peak_rss / 1024, 1),
                                "peak_pss_mib": round(sampler.peak_pss / 1024, 1),
                                "server_cores": round(server_cpu / secs, 2),
                                "other_cores": round(other / secs, 2),
                                "startup_s": s["startup_s"],
                                "versions": s["versions"],
                                "wrk": r,
                            }
                            with out.open("a") as f:
                                f.write(json.dumps(row) + "\n")
                            print(
                                f"{s['peer']:14s} {model} b={n:<2d} c={c:<2d} r{rnd} "
                                f"{row['rps']:8.1f} req/s p50 {row['p50_ms']:7.2f} ms "
                                f"p99 {row['p99_ms']:8.2f} ms err {row['errors']} "
                                f"pss {row['peak_pss_mib']} MiB srv {row['server_cores']} "
                                f"other {row['other_cores']}",
                                flush=True,
                            )
        finally:
            for s in servers:
                seen = {p: st for p, st, _ in rb.tree(s["proc"].pid)}
                rb.stop_server(s["proc"], seen)
                s["log"].close()


if __name__ == "__main__":
    main()
