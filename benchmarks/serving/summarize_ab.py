"""Markdown tables from ab_bench.py output (+ the in-process floors).

Usage: python3 summarize_ab.py results [ab.jsonl]
  -> prints markdown, writes results/<name>_tables.md
For each (server, model, rows, concurrency) the best round (most req/s; noise only slows a
run down) is shown with that round's latencies. Ratios compare servers measured in the same
interleaved rounds.
"""

import json
import pathlib
import sys

res = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "results")
src = res / (sys.argv[2] if len(sys.argv) > 2 else "ab.jsonl")
rows = [json.loads(x) for x in src.read_text().splitlines() if x.strip()]
NAME = {
    "loopline_batch": "loopline + batching",
    "loopline": "loopline",
    "fastapi": "FastAPI",
    "kserve_v1": "KServe (V1)",
    "bentoml_batch": "BentoML + batching",
    "bentoml": "BentoML",
    "mlflow": "MLflow",
}
ORDER = list(NAME)
best = {}
for r in rows:
    k = (r["peer"], r["model"], r["batch"], r["conc"])
    if k not in best or r["rps"] > best[k]["rps"]:
        best[k] = r
cells = sorted({k[1:] for k in best})
out = [
    "| model | rows | conc | server | req/s | p50 ms | p99 ms | errors | PSS MiB "
    "| server cores | other load (cores) |",
    "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|",
]
for model, n, c in cells:
    for p in ORDER:
        r = best.get((p, model, n, c))
        if r:
            out.append(
                f"| {model} | {n} | {c} | {NAME[p]} | {r['rps']:.0f} | {r['p50_ms']:.2f} | "
                f"{r['p99_ms']:.2f} | {r['errors']} | {r['peak_pss_mib']:.0f} | "
                f"{r['server_cores']:.2f} | {r['other_cores']:.2f} |"
            )
out += [
    "",
    "Ratio loopline + batching / best peer (req/s; p99 of both):",
    "",
    "| model | rows | conc | loopline+batching | best peer | ratio | p99 loopline / peer ms |",
    "|---|---:|---:|---:|---|---:|---:|",
]
for model, n, c in cells:
    mine = best.get(("loopline_batch", model, n, c))
    peers = [best[(p, model, n, c)] for p in ORDER[2:] if (p, model, n, c) in best]
    if mine and peers:
        top = max(peers, key=lambda r: r["rps"])
        out.append(
            f"| {model} | {n} | {c} | {mine['rps']:.0f} | {NAME[top['peer']]} {top['rps']:.0f} | "
            f"{mine['rps'] / top['rps']:.2f}× | {mine['p99_ms']:.1f} / {top['p99_ms']:.1f} |"
        )
for name in ("inproc.json", "inproc_loopline.json"):
    f = res / name
    if f.exists():
        out += [
            "",
            f"In-process ({name}), median µs per call:",
            "",
            "| model | rows | case | median µs | rows/s |",
            "|---|---:|---|---:|---:|",
        ]
        for x in json.loads(f.read_text())["results"]:
            out.append(
                f"| {x['model']} | {x['rows']} | {x['case']}{' (' + x['predictor'] + ')' if 'predictor' in x else ''} | {x['median_us']:.0f} | "
                f"{x.get('rows_per_s', '')} |"
            )
text = "\n".join(out) + "\n"
(res / f"{src.stem}_tables.md").write_text(text)
print(text)
