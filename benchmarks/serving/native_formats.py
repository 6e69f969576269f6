"""XGBoost and LightGBM flavors in process: loopline's served model vs the library's own predict.

Usage: .venv/bin/python benchmarks/serving/native_formats.py [out.jsonl]
       (default results/native_formats.jsonl; trains its models, needs no artifacts)

Models: XGBClassifier(100 trees, depth 6) and LGBMClassifier(100 trees, 31 leaves) on
scikit-learn's breast_cancer (30 features, 569 rows), random_state 0; each saved with
``save_model`` (flavors xgboost / lightgbm) and loaded with ``load_model``.

Cases, per model, for 1-row and 32-row calls (median of 7 timeit repeats, µs per call):

  library          est.predict_proba(x) and est.predict(x) on the rows as a pandas frame:
                   the scikit-learn wrapper as a user calls it (default threads: n_jobs=None,
                   i.e. every core)
  library_1thread  the same with n_jobs=1
  library_array_1thread  the same on a 2-D float array (the wrapper's cheapest input)
  loopline         LoadedModel.predict(batch) — both outputs, from the columns a request
                   carries: what a server worker runs per (batched) call; one thread
  loopline_proba   LoadedModel.predict(batch, outputs=["predict_proba"]) — one booster call
  loopline_allthreads  loopline with the loaded booster on every core (nthread=0 /
                   num_threads=0): the setting the flavors do NOT use

Every case is checked to answer exactly what the library answers before it is timed.
The load average is recorded with each line: the machine is shared, quote ratios.
"""

from __future__ import annotations

import functools
import json
import os
import pathlib
import statistics
import sys
import tempfile
import timeit
import warnings

import lightgbm as lgb
import numpy as np
import xgboost as xgb
from sklearn.datasets import load_breast_cancer

from loopline.bundle import infer_signature, load_model, save_model

HERE = pathlib.Path(__file__).resolve().parent
OUT = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "results" / "native_formats.jsonl"
BOTH = ("predict", "predict_proba")


def bench(fn) -> dict[str, float]:
    t = timeit.Timer(fn)
    n, _ = t.autorange()
    n = max(n, 20)
    times = [x / n * 1e6 for x in t.repeat(repeat=7, number=n)]
    return {"median_us": round(statistics.median(times), 1), "best_us": round(min(times), 1)}


def all_threads(model, library: str):
    """A copy of the loaded model whose booster predicts on every core."""
    est = model.estimator
    if library == "xgboost":
        booster = xgb.Booster()
        booster.load_model(bytearray(est.booster.save_raw("ubj")))
        booster.set_param({"nthread": 0})
        call = functools.partial(booster.inplace_predict, iteration_range=(0, 0),
                                 missing=np.nan, validate_features=True)
    else:
        booster = est.booster
        call = functools.partial(booster.predict, num_threads=0)
    import dataclasses

    return dataclasses.replace(model, estimator=dataclasses.replace(est, run=call))


def main() -> None:
    # the array case on a model fitted with column names: scikit-learn warns on every call
    warnings.filterwarnings("ignore", message="X does not have valid feature names")
    x, y = load_breast_cancer(return_X_y=True, as_frame=True)
    estimators = {
        "xgboost": lambda jobs: xgb.XGBClassifier(n_estimators=100, max_depth=6, random_state=0,
                                                  n_jobs=jobs),
        "lightgbm": lambda jobs: lgb.LGBMClassifier(n_estimators=100, random_state=0,
                                                    n_jobs=jobs, verbose=-1),
    }
    rows_all = np.concatenate([x.to_numpy()] * 2)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, open(OUT, "a") as out:
        for library, make in estimators.items():
            lib_default = make(None).fit(x, y)
            lib_one = make(1).fit(x, y)
            path = save_model(lib_one, pathlib.Path(tmp) / library,
                              signature=infer_signature(x, y), methods=BOTH,
                              input_example=x.head(3))  # fmt: skip
            model = load_model(path)
            threaded = all_threads(model, library)
            for n in (1, 32):
                frame = x.iloc[:n] if n <= len(x) else None
                cols = {str(c): rows_all[:n, i] for i, c in enumerate(x.columns)}
                array = np.ascontiguousarray(rows_all[:n])
                served = model.predict(cols)
                assert np.array_equal(served["predict"], lib_one.predict(frame))
                assert np.array_equal(served["predict_proba"], lib_one.predict_proba(frame))
                assert np.array_equal(threaded.predict(cols)["predict_proba"],
                                      served["predict_proba"])  # fmt: skip
                cases = {
                    "library": lambda e=lib_default, f=frame: (e.predict_proba(f), e.predict(f)),
                    "library_1thread": lambda e=lib_one, f=frame: (e.predict_proba(f),
                                                                   e.predict(f)),
                    "library_array_1thread": lambda e=lib_one, a=array: (e.predict_proba(a),
                                                                         e.predict(a)),
                    "loopline": lambda c=cols: model.predict(c),
                    "loopline_proba": lambda c=cols: model.predict(c, outputs=["predict_proba"]),
                    "loopline_allthreads": lambda c=cols: threaded.predict(c),
                }
                for case, fn in cases.items():
                    record = {"library": library, "version": (xgb if library == "xgboost"
                                                              else lgb).__version__,
                              "rows": n, "case": case, **bench(fn),
                              "loadavg_1m": round(os.getloadavg()[0], 1)}  # fmt: skip
                    line = json.dumps(record)
                    print(line, flush=True)
                    out.write(line + "\n")


if __name__ == "__main__":
    main()
