"""loopline vs MLServer and PyTriton on every path — V2 JSON, binary HTTP, gRPC — in one
interleaved run (issue 12). Run with the project venv (it has tritonclient for the checks):

    .venv/bin/python benchmarks/serving/paths_bench.py \
        --peers loopline_batch,mlserver_batch,mlserver,pytriton,fastapi --models lr,rf \
        --paths json,binary,grpc --conc 1,64 --duration 5 --rounds 2 \
        --out benchmarks/serving/results/paths.jsonl
    .venv/bin/python benchmarks/serving/paths_bench.py --report results/paths.jsonl

Every server of a model runs at once on its own ports (HTTP p, gRPC p+1), 2 workers or model
instances each. Before any load, each (server, path) is checked with Triton's own clients at
their defaults (``tritonclient.http`` JSON and binary, ``tritonclient.grpc``): the labels must
equal the joblib model's; a path a server does not speak is reported and left out. Then each
load cell runs against every (server, path) back to back in rotating order, ``--rounds`` times;
the report keeps each one's best round. Load generators (one process each, C, on the same 2
cores; their CPU is recorded as ``client_cores``): ``wrk`` for HTTP/1.1 (JSON: post.lua, binary:
post_binary.lua, keep-alive), ``h2load`` for gRPC (h2c, one stream per connection, so c
connections = c requests in flight, like wrk). Bodies: payload/ from train.py, save_loopline.py,
make_bodies.py. Loopback only; every run bounded by ``--duration``.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import resource
import subprocess
import sys
import tempfile
import time
from typing import Any

import run_bench as rb

HERE = rb.HERE
PAY = rb.ART / "payload"
PEER_NAMES = {
    "loopline_batch": "loopline + batching",
    "loopline": "loopline",
    "loopline_batch_base": "loopline + batching, base commit",
    "mlserver_batch": "MLServer + batching",
    "mlserver": "MLServer",
    "pytriton": "PyTriton (dyn. batching)",
    "fastapi": "FastAPI",
}


#: Peers without the taxi case, and why.
NO_TAXI = {
    "pytriton": "its venv has numpy<2 and no pandas: the pipeline cannot be unpickled or "
                "refitted there without another set-up",
    "fastapi": "fastapi_app.py takes a 2-D float array only",
}


def _mlserver_dir(peer: str, model: str, port: int) -> pathlib.Path:
    d = rb.ART / "mlserver_cfg" / f"{peer}_{model}"
    (d / model).mkdir(parents=True, exist_ok=True)
    settings = {
        "debug": False,
        "parallel_workers": int(rb.WORKERS),
        "host": "127.0.0.1",
        "http_port": port,
        "grpc_port": port + 1,
        "metrics_port": port + 2,
        "metrics_endpoint": None,
        "model_repository_root": str(d),
        "load_models_at_startup": True,
    }
    ms: dict[str, Any] = {
        "name": model,
        "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": str(rb.ART / f"{model}.joblib")},
    }
    if peer == "mlserver_batch":
        ms.update(max_batch_size=64, max_batch_time=0.001)
    (d / "settings.json").write_text(json.dumps(settings, indent=1))
    (d / model / "model-settings.json").write_text(json.dumps(ms, indent=1))
    return d


def spec(peer: str, model: str, port: int) -> dict[str, Any]:
    """How to start ``peer`` serving ``model`` on HTTP ``port`` (gRPC on port+1)."""
    env: dict[str, str] = {}
    v2 = f"/v2/models/{model}/infer"
    if peer in ("loopline", "loopline_batch"):
        family, argv, env, health, _, _ = rb.peer_spec(peer, model, port)
        argv = [*argv, "--grpc-port", str(port + 1)]
        paths = ["json", "binary", "grpc"]
    elif peer == "loopline_batch_base":  # another tree's src (LOOPLINE_BASE_SRC): before/after
        family, argv, env, health, _, _ = rb.peer_spec("loopline_batch", model, port)
        env = {"PYTHONPATH": os.environ["LOOPLINE_BASE_SRC"]}
        paths = ["json"]
    elif peer in ("mlserver", "mlserver_batch"):
        family, health = "mlserver", f"/v2/models/{model}/ready"
        argv = [rb.venv("mlserver", "mlserver"), "start", str(_mlserver_dir(peer, model, port))]
        paths = ["json", "binary", "grpc"]
    elif peer == "pytriton":
        family, health = "pytriton", f"/v2/models/{model}/ready"
        argv = [rb.venv("pytriton", "python"), str(HERE / "pytriton_server.py")]
        py = rb.venv("pytriton", "python")
        libdir = subprocess.run(
            [py, "-c", "import sysconfig; print(sysconfig.get_config_var('LIBDIR'))"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()
        # PyTriton's stub otherwise loads the system libpython with another stdlib
        env = {"MODEL_NAME": model, "PORT": str(port), "INSTANCES": rb.WORKERS,
               "LD_LIBRARY_PATH": libdir}
        paths = ["json", "binary", "grpc"]
    elif peer == "fastapi":
        family, argv, env, health, _, _ = rb.peer_spec(peer, model, port)
        paths = ["json"]
    else:
        raise SystemExit(f"unknown peer {peer}")
    return {"family": family, "argv": argv, "env": env, "health": health, "paths": paths,
            "v2": v2 if peer != "fastapi" else "/predict"}


def start(peer: str, model: str, port: int, logs: pathlib.Path) -> dict[str, Any]:
    s = spec(peer, model, port)
    env = dict(os.environ, **s["env"])
    vdir = pathlib.Path(rb.venv(s["family"], "python")).parent.parent
    env["PATH"] = str(vdir / "bin") + os.pathsep + env.get("PATH", "")
    env["VIRTUAL_ENV"] = str(vdir)
    log = open(logs / f"paths_{peer}_{model}.log", "w")
    proc = subprocess.Popen(s["argv"], cwd=HERE, env=env, stdout=log, stderr=subprocess.STDOUT)
    return {**s, "peer": peer, "model": model, "proc": proc, "log": log, "port": port}


# ------------------------------------------------------------------------- checks
def expected_labels(model: str) -> list[Any]:
    if model == "taxi":  # string labels, from save_loopline.py's scikit-learn pipeline
        return list(json.loads((rb.ART / "taxi_labels.json").read_text()))
    import joblib
    import numpy as np

    rows = np.asarray(json.loads((rb.ART / "rows.json").read_text()))
    return [int(v) for v in joblib.load(rb.ART / f"{model}.joblib").predict(rows)]


def check(s: dict[str, Any], path: str, want: list[Any]) -> str | None:
    """None when ``path`` of server ``s`` answers 4 rows right with tritonclient's defaults."""
    import numpy as np

    rows = np.asarray(json.loads((rb.ART / "rows.json").read_text()), dtype=np.float64)[:4]
    model = s["model"]
    try:
        if model == "taxi":
            labels = check_taxi(s, path)
        elif s["peer"] == "fastapi":
            body = json.dumps({"inputs": rows.tolist()}).encode()
            _st, resp = rb.http("POST", "/predict", s["port"], body)
            got = json.loads(resp)["predictions"]
        elif path == "grpc":
            import tritonclient.grpc as tg

            c = tg.InferenceServerClient(f"127.0.0.1:{s['port'] + 1}")
            inp = tg.InferInput("input", list(rows.shape), "FP64")
            inp.set_data_from_numpy(rows)
            got = c.infer(model, [inp], outputs=[tg.InferRequestedOutput("predict")]).as_numpy(
                "predict"
            )
        else:
            import tritonclient.http as th

            c = th.InferenceServerClient(f"127.0.0.1:{s['port']}")
            inp = th.InferInput("input", list(rows.shape), "FP64")
            inp.set_data_from_numpy(rows, binary_data=path == "binary")
            out = th.InferRequestedOutput("predict", binary_data=path == "binary")
            got = c.infer(model, [inp], outputs=[out]).as_numpy("predict")
        if model != "taxi":
            labels = [int(v) for v in np.asarray(got).ravel()]
    except Exception as exc:
        return f"{type(exc).__name__}: {str(exc)[:200]}"
    return None if labels == want[:4] else f"labels {labels} != {want[:4]}"


def check_taxi(s: dict[str, Any], path: str) -> list[str]:
    """The labels server ``s`` gives the first 4 taxi rows over ``path`` (one input per column,
    request parameter content_type=pd as MLServer needs for a DataFrame)."""
    import numpy as np

    cols = json.loads((rb.ART / "taxi_rows.json").read_text())
    kinds = {"distance": ("FP64", np.float64), "hour": ("INT64", np.int64)}
    if path == "grpc":
        import tritonclient.grpc as client
    else:
        import tritonclient.http as client  # type: ignore[no-redef]
    inputs = []
    for name, values in cols.items():
        wire, dtype = kinds.get(name, ("BYTES", object))
        inp = client.InferInput(name, [4], wire)
        arr = np.asarray(values[:4], dtype=dtype)
        if path == "grpc":
            inp.set_data_from_numpy(arr)
        else:
            inp.set_data_from_numpy(arr, binary_data=path == "binary")
        inputs.append(inp)
    if path == "grpc":
        c = client.InferenceServerClient(f"127.0.0.1:{s['port'] + 1}")
        outs = [client.InferRequestedOutput("predict")]
    else:
        c = client.InferenceServerClient(f"127.0.0.1:{s['port']}")
        outs = [client.InferRequestedOutput("predict", binary_data=path == "binary")]
    got = c.infer("taxi", inputs, outputs=outs, parameters={"content_type": "pd"})
    return [v.decode() if isinstance(v, bytes) else str(v)
            for v in np.asarray(got.as_numpy("predict")).ravel()]


# ---------------------------------------------------------------------------- load
def run_client(cmd: list[str], env: dict[str, str], timeout: float) -> tuple[str, float]:
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
    if p.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed: {p.stdout[-500:]}\n{p.stderr[-500:]}")
    return p.stdout, cpu


def load(s: dict[str, Any], path: str, rows: int, conc: int, dur: int) -> dict[str, Any]:
    """One bounded load run; rps counts successful answers only."""
    port, model = s["port"], s["model"]
    if path == "grpc":
        body = PAY / f"grpc_{model}_{rows}.bin"  # taxi: make_bodies.py's per-column request
        with tempfile.NamedTemporaryFile("r", suffix=".log") as logf:
            cmd = ["h2load", "-t1", f"-c{conc}", "-m1", f"-D{dur}", "--warm-up-time=1",
                   "-H", "content-type: application/grpc", "-H", "te: trailers",
                   "-d", str(body), f"--log-file={logf.name}",
                   f"http://127.0.0.1:{port + 1}/inference.GRPCInferenceService/ModelInfer"]
            _, cpu = run_client(cmd, dict(os.environ), dur + 60)
            lines = [ln.split("\t") for ln in open(logf.name).read().splitlines() if ln]
        lat = sorted(int(f[2]) for f in lines if f[1] == "200")
        if lines:
            t0 = min(int(f[0]) for f in lines)
            span = (max(int(f[0]) + int(f[2]) for f in lines) - t0) / 1e6
        else:
            span = float(dur)
        ok = len(lat)
        pct = (lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] / 1000) if lat else None
        return {"requests": len(lines), "ok": ok, "secs": span, "errors": len(lines) - ok,
                "p50_ms": pct(0.5) if pct else None, "p99_ms": pct(0.99) if pct else None,
                "client_cpu_s": round(cpu, 2)}
    if s["peer"] == "fastapi":
        body, script, extra = PAY / f"fastapi_{rows}.json", HERE / "post.lua", {}
    elif model == "taxi" and path == "json":
        body, script, extra = PAY / f"v2_taxi_{rows}.json", HERE / "post.lua", {}
    elif model == "taxi":
        hlen = (PAY / f"v2bin_taxi_{rows}.hlen").read_text().strip()
        body, script, extra = PAY / f"v2bin_taxi_{rows}.bin", HERE / "post_binary.lua", {
            "HEADER_LEN": hlen}
    elif path == "json":
        body, script, extra = PAY / f"loopline_{rows}.json", HERE / "post.lua", {}
    else:
        hlen = (PAY / f"v2bin_{rows}.hlen").read_text().strip()
        body, script, extra = PAY / f"v2bin_{rows}.bin", HERE / "post_binary.lua", {
            "HEADER_LEN": hlen}
    env = dict(os.environ, BODY_FILE=str(body), **extra)
    out, cpu = run_client(
        ["wrk", "-t1", f"-c{conc}", f"-d{dur}s", "--timeout", "10s", "-s", str(script),
         f"http://127.0.0.1:{port}{s['v2']}"], env, dur + 60)
    line = next(ln for ln in out.splitlines() if ln.startswith("WRKJSON "))
    r = json.loads(line[len("WRKJSON "):])
    secs = r["duration_us"] / 1e6
    errors = sum(v for k, v in r.items() if k.startswith("err_"))
    return {"requests": r["requests"], "ok": r["requests"] - r["err_status"], "secs": secs,
            "errors": errors, "p50_ms": r["lat_p50_us"] / 1000, "p99_ms": r["lat_p99_us"] / 1000,
            "client_cpu_s": round(cpu, 2)}


def bench(a: argparse.Namespace) -> None:
    out = pathlib.Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    logs = pathlib.Path(os.environ.get("BENCH_LOGS", "/tmp/loopline-bench/logs"))
    logs.mkdir(parents=True, exist_ok=True)
    for model in a.models.split(","):
        want = expected_labels(model)
        servers: list[dict[str, Any]] = []
        try:
            for i, peer in enumerate(a.peers.split(",")):  # one at a time: start-up bursts
                port = a.port + 10 * i
                if model == "taxi" and peer in NO_TAXI:
                    print(f"!! {peer}/taxi: {NO_TAXI[peer]}; left out")
                    continue
                if not (rb.port_free(port) and rb.port_free(port + 1)):
                    raise SystemExit(f"port {port} or {port + 1} busy")
                s = start(peer, model, port, logs)
                ready = rb.wait_ready(s["proc"], port, s["health"], limit=180)
                if ready is None:
                    print(f"!! {peer}/{model} not ready; left out (log {s['log'].name})")
                    rb.stop_server(s["proc"], {p: t for p, t, _ in rb.tree(s["proc"].pid)})
                    continue
                s["startup_s"] = round(ready, 1)
                s["versions"] = rb.versions(s["family"])
                servers.append(s)
            time.sleep(3)
            targets = []
            for s in servers:
                for path in a.paths.split(","):
                    if path not in s["paths"]:
                        continue
                    problem = check(s, path, want)
                    print(f"   check {s['peer']}/{model}/{path}: {problem or 'OK'}", flush=True)
                    with out.open("a") as f:
                        f.write(json.dumps({"kind": "check", "peer": s["peer"], "model": model,
                                            "path": path, "ok": problem is None,
                                            "problem": problem}) + "\n")
                    if problem is None:
                        targets.append((s, path))
            for rows in map(int, a.batches.split(",")):
                for s, path in targets:  # warm-up
                    load(s, path, rows, 8, 2)
                for conc in map(int, a.conc.split(",")):
                    for rnd in range(a.rounds):
                        k = rnd % max(1, len(targets))
                        for s, path in targets[k:] + targets[:k]:
                            cell(s, path, model, rows, conc, rnd, a.duration, out)
        finally:
            for s in servers:
                rb.stop_server(s["proc"], {p: t for p, t, _ in rb.tree(s["proc"].pid)})
                s["log"].close()


def cell(s: dict[str, Any], path: str, model: str, rows: int, conc: int, rnd: int, dur: int,
         out: pathlib.Path) -> None:
    pid = s["proc"].pid
    load_before = open("/proc/loadavg").read().split()[0]
    cpu0, sys0, t0 = rb.cpu_ticks(pid), rb.sys_busy_ticks(), time.monotonic()
    r = load(s, path, rows, conc, dur)
    cpu1, sys1, wall = rb.cpu_ticks(pid), rb.sys_busy_ticks(), time.monotonic() - t0
    secs = r["secs"] or dur
    server = (cpu1 - cpu0) / rb.CLK  # over the whole client run (h2load adds a 1 s warm-up)
    other = (sys1 - sys0) / rb.CLK - server - r["client_cpu_s"]
    rps = r["ok"] / secs
    row = {
        "kind": "run", "peer": s["peer"], "path": path, "model": model, "batch": rows,
        "conc": conc, "round": rnd, "duration_s": dur,
        "rps": round(rps, 1), "p50_ms": r["p50_ms"], "p99_ms": r["p99_ms"],
        "errors": r["errors"], "server_cores": round(server / wall, 2),
        "server_cpu_us_per_req": round(server / wall / max(rps, 1e-9) * 1e6, 1),
        "client_cores": round(r["client_cpu_s"] / wall, 2),
        "other_cores": round(other / wall, 2), "loadavg_before": float(load_before),
        "startup_s": s.get("startup_s"), "versions": s.get("versions"),
    }
    with out.open("a") as f:
        f.write(json.dumps(row) + "\n")
    print(f"{s['peer']:15s} {path:6s} {model} b={rows:<2d} c={conc:<2d} r{rnd} "
          f"{row['rps']:8.1f} rps p50 {row['p50_ms']} p99 {row['p99_ms']} err {row['errors']} "
          f"srv {row['server_cores']} ({row['server_cpu_us_per_req']} µs/req) "
          f"client {row['client_cores']} other {row['other_cores']}", flush=True)


def report(path: pathlib.Path) -> str:
    rows = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    best: dict[tuple[Any, ...], dict[str, Any]] = {}
    for r in rows:
        if r.get("kind") != "run":
            continue
        key = (r["model"], r["batch"], r["conc"], r["path"], r["peer"])
        if key not in best or r["rps"] > best[key]["rps"]:
            best[key] = r
    lines = ["| model | rows | c | path | server | rps | p50 ms | p99 ms | err | server cores "
             "| µs CPU/req | client cores | other cores |", "|" + "---|" * 13]
    for key in sorted(best):
        r = best[key]
        lines.append(
            f"| {r['model']} | {r['batch']} | {r['conc']} | {r['path']} | "
            f"{PEER_NAMES.get(r['peer'], r['peer'])} | {r['rps']:,.0f} | {r['p50_ms']} | "
            f"{r['p99_ms']} | {r['errors']} | {r['server_cores']} | "
            f"{r['server_cpu_us_per_req']} | {r['client_cores']} | {r['other_cores']} |")
    lines += ["", "Ratio of loopline + batching to the best peer on the same path, and to the "
              "best peer on any path (best round each):", "",
              "| model | rows | c | path | loopline + batching | best peer, same path | ratio "
              "| best peer, any path | ratio |", "|" + "---|" * 9]
    cells = sorted({k[:4] for k in best})
    for m, b, c, p in cells:
        mine = best.get((m, b, c, p, "loopline_batch"))
        if mine is None:
            continue
        same = [v for k, v in best.items() if k[:4] == (m, b, c, p) and
                not k[4].startswith("loopline")]
        anyp = [v for k, v in best.items() if k[:3] == (m, b, c) and
                not k[4].startswith("loopline")]
        def fmt(vs: list[dict[str, Any]]) -> tuple[str, str]:
            if not vs:
                return "—", "—"
            top = max(vs, key=lambda v: v["rps"])
            return (f"{PEER_NAMES.get(top['peer'], top['peer'])} {top['path']} "
                    f"{top['rps']:,.0f} (p99 {top['p99_ms']})",
                    f"{mine['rps'] / top['rps']:.1f}×")
        s1, r1 = fmt(same)
        s2, r2 = fmt(anyp)
        lines.append(f"| {m} | {b} | {c} | {p} | {mine['rps']:,.0f} (p99 {mine['p99_ms']}) | "
                     f"{s1} | {r1} | {s2} | {r2} |")
    checks = [r for r in rows if r.get("kind") == "check" and not r["ok"]]
    if checks:
        lines += ["", "Paths that failed the tritonclient check (left out):", ""]
        lines += [f"- {r['peer']} {r['model']} {r['path']}: {r['problem']}" for r in checks]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--peers", default="loopline_batch,mlserver_batch,mlserver,pytriton,fastapi")
    ap.add_argument("--models", default="lr,rf")
    ap.add_argument("--paths", default="json,binary,grpc")
    ap.add_argument("--batches", default="1")
    ap.add_argument("--conc", default="1,64")
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--port", type=int, default=18300)
    ap.add_argument("--out", default=str(HERE / "results" / "paths.jsonl"))
    ap.add_argument("--report", type=pathlib.Path, default=None)
    a = ap.parse_args()
    if a.report is not None:
        print(report(a.report))
        return 0
    bench(a)
    return 0


if __name__ == "__main__":
    sys.exit(main())
