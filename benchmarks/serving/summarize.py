"""Markdown tables from run_bench.py / inproc.py output.

Usage: python3 summarize.py RESULTS_DIR  -> prints markdown, writes RESULTS_DIR/tables.md
If a cell (peer, model, batch, conc) was measured more than once: among its runs where
other processes took <= 0.25 cores ("other load"), the fastest is kept (noise only slows
a run down); if every run was loaded, the least loaded one is kept and flagged †.
"""

import json
import pathlib
import sys

res = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "results")
rows = [json.loads(l) for l in (res / "raw.jsonl").read_text().splitlines() if l.strip()]
QUIET = 0.25


def rank(r):
    return (0, -r["rps"]) if r["other_cores"] <= QUIET else (1, r["other_cores"])


best = {}
for r in rows:
    k = (r["peer"], r["model"], r["batch"], r["conc"])
    if k not in best or rank(r) < rank(best[k]):
        best[k] = r

ORDER = {
    "loopline": -2,
    "loopline_batch": -1,
    "fastapi": 0,
    "bentoml": 1,
    "bentoml_batch": 2,
    "mlflow": 3,
    "kserve_v1": 4,
    "kserve_v2": 5,
}
NAME = {
    "loopline": "loopline",
    "loopline_batch": "loopline + adaptive batching",
    "fastapi": "FastAPI+uvicorn (hand-rolled)",
    "bentoml": "BentoML",
    "bentoml_batch": "BentoML + adaptive batching",
    "mlflow": "MLflow models serve",
    "kserve_v1": "KServe ModelServer (V1)",
    "kserve_v2": "KServe ModelServer (V2)",
}
VKEYS = {
    "loopline": ["loopline", "uvicorn"],
    "loopline_batch": ["loopline", "uvicorn"],
    "fastapi": ["fastapi", "uvicorn"],
    "bentoml": ["bentoml"],
    "bentoml_batch": ["bentoml"],
    "mlflow": ["mlflow", "uvicorn"],
    "kserve_v1": ["kserve", "uvicorn"],
    "kserve_v2": ["kserve", "uvicorn"],
}


def ver(r):
    v = r["versions"]
    return " ".join(f"{k} {v[k]}" for k in VKEYS[r["peer"]] if k in v)


out = []
out.append(
    "| server | model | batch | conc | req/s | p50 ms | p99 ms | errors | peak RSS MiB (PSS) | server cores | other load | versions |"
)
out.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
for k in sorted(best, key=lambda k: (ORDER.get(k[0], 9), k[1], k[2], k[3])):
    r = best[k]
    flag = " †" if r["other_cores"] > QUIET else ""
    out.append(
        f"| {NAME.get(r['peer'], r['peer'])} | {r['model']} | {r['batch']} | {r['conc']} | "
        f"{r['rps']:.0f} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['errors']} | "
        f"{r['peak_rss_mib']:.0f} ({r['peak_pss_mib']:.0f}) | {r['server_cpu_s'] / r['duration_s']:.2f} | "
        f"{r['other_cores']:.2f}{flag} | {ver(r)} |"
    )

inp = res / "inproc.json"
if inp.exists():
    d = json.loads(inp.read_text())
    ip = {(x["model"], x["rows"], x["case"]): x for x in d["results"]}
    out.append("")
    out.append(
        f"In-process (sklearn {d['meta']['sklearn']}, numpy {d['meta']['numpy']}), "
        "median µs per call over 7 timeit repeats:"
    )
    out.append("")
    out.append(
        "| model | rows | predict(ndarray) | same, in a worker thread | predict(DataFrame) | json→predict→json |"
    )
    out.append("|---|---:|---:|---:|---:|---:|")
    for m in ("lr", "rf"):
        for n in (1, 32):
            g = lambda c: ip.get((m, n, c), {}).get("median_us", float("nan"))
            out.append(
                f"| {m} | {n} | {g('predict_numpy'):.0f} | {g('predict_in_thread'):.0f} | "
                f"{g('predict_pandas'):.0f} | {g('json_roundtrip'):.0f} |"
            )
    out.append("")
    out.append(
        "Serving overhead at concurrency 1: server p50 minus in-process json→predict→json "
        "(DataFrame predict for MLflow), ms:"
    )
    out.append("")
    peers = sorted({k[0] for k in best}, key=lambda p: ORDER.get(p, 9))
    out.append(
        "| model | rows | in-process ms | " + " | ".join(NAME.get(p, p) for p in peers) + " |"
    )
    out.append("|---|---:|---:|" + "---:|" * len(peers))
    for m in ("lr", "rf"):
        for n in (1, 32):
            base = ip.get((m, n, "json_roundtrip"), {}).get("median_us", float("nan")) / 1000
            cells = []
            for p in peers:
                r = best.get((p, m, n, 1))
                if not r:
                    cells.append("–")
                    continue
                b = (
                    ip.get((m, n, "predict_pandas" if p == "mlflow" else "json_roundtrip"), {}).get(
                        "median_us", float("nan")
                    )
                    / 1000
                )
                cells.append(f"{r['p50_ms']:.2f} (+{r['p50_ms'] - b:.2f})")
            out.append(f"| {m} | {n} | {base:.2f} | " + " | ".join(cells) + " |")

text = "\n".join(out) + "\n"
(res / "tables.md").write_text(text)
print(text)
