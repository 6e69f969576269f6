"""The floors loopline is measured against, in-process (no HTTP), project venv.

Usage: .venv/bin/python inproc_loopline.py [out.json]   (reads $ARTIFACTS)
  lean_roundtrip   orjson.loads(V2 body) -> coerce_batch -> LoadedModel.predict -> encode_v2
                   (exactly the server's per-request work, minus HTTP)
  batched_rows_s   rows per second of LoadedModel.predict on batches of 32 and 64 rows,
                   one core (the "in-process batched predict throughput"), twice:
                   predictor "sklearn" = the estimator's own predict (load_model(fast=False)),
                   predictor "loopline" = what the server runs (forests: ForestPredictor,
                   identical outputs; other models: the estimator's own predict)
"""

import json
import os
import pathlib
import statistics
import sys
import timeit

import numpy as np
import orjson

from loopline.bundle import coerce_batch, load_model
from loopline.serving.protocols import decode_v2, encode_v2

HERE = pathlib.Path(__file__).resolve().parent
ART = pathlib.Path(os.environ.get("ARTIFACTS", HERE / "artifacts"))
rows = np.asarray(json.loads((ART / "rows.json").read_text()))


def bench(fn):
    t = timeit.Timer(fn)
    n, _ = t.autorange()
    n = max(n, 20)
    times = [x / n * 1e6 for x in t.repeat(repeat=7, number=n)]
    return {"median_us": round(statistics.median(times), 1), "best_us": round(min(times), 1)}


results = []
for name in ("lr", "rf"):
    model = load_model(ART / f"loopline_{name}")
    plain = load_model(ART / f"loopline_{name}", fast=False)
    sig = model.signature
    for n in (1, 32):
        body = (ART / "payload" / f"loopline_{n}.json").read_bytes()

        def lean(body=body):
            raw, _, rid = decode_v2(orjson.loads(body), sig)
            batch, _ = coerce_batch(sig, raw)
            return encode_v2(name, "1", rid, model.predict(batch), sig)

        r = {"model": name, "rows": n, "case": "lean_roundtrip", **bench(lean)}
        results.append(r)
        print(json.dumps(r), flush=True)
    for n, predictor, m in [
        (n, p, m) for n in (32, 64) for p, m in (("sklearn", plain), ("loopline", model))
    ]:
        x = np.concatenate([rows, rows])[:n]
        timing = bench(lambda x=x, m=m: m.predict(x))
        r = {
            "model": name,
            "rows": n,
            "case": "batched_rows_s",
            "predictor": predictor,
            "rows_per_s": round(n / (timing["median_us"] / 1e6)),
            **timing,
        }
        results.append(r)
        print(json.dumps(r), flush=True)
if len(sys.argv) > 1:
    pathlib.Path(sys.argv[1]).write_text(json.dumps({"results": results}, indent=1))
