"""In-process latency of the compiled path: scikit-learn vs ONNX, for the taxi model, LR and RF.

Usage (project venv, from the repository root):

    .venv/bin/python benchmarks/serving/compiled.py [--calls 2000] [--rounds 3] [--out FILE]

Builds the three models (the taxi example's own code and data; LR and RF exactly as
``save_loopline.py``), saves each with ``save_model(compile="auto")`` checked on its training
rows, and times ``LoadedModel.predict`` (both served methods) on 1-row and 32-row batches:

- ``sklearn-plain``: ``load_model(fast=False, compiled=False)`` — the estimator's own
  ``predict`` and ``predict_proba``, as before issue #12 (the pipeline runs twice);
- ``sklearn``: ``load_model(compiled=False)`` — loopline's exact fast paths (ForestPredictor,
  LinearPredictor) and predict derived from predict_proba (the pipeline runs once);
- ``onnx``: ``load_model()`` — the compiled path through onnxruntime, one thread;
- ``onnx-2threads``: the same ONNX model in a session with two intra-op threads.

Each round times every path back to back (rotating order; the machine is shared), ``calls``
calls each; the report keeps each path's best round (median and p99 per call, in µs).
Results: ``results/compiled.json``; the table is printed as Markdown.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import pathlib
import platform
import tempfile
import time
from typing import Any

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from loopline.bundle import Manifest, coerce_batch, infer_signature, load_model, save_model
from loopline.bundle.onnx_flavor import OnnxPredictor, session
from loopline.bundle.signature import _columns_of

HERE = pathlib.Path(__file__).resolve().parent
TAXI = HERE.parents[1] / "examples" / "taxi"
BOTH = ("predict", "predict_proba")


def _example_module(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, TAXI / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def taxi_model() -> tuple[Any, Any]:
    """The taxi example's model on span 1 (Jan-Mar): ColumnTransformer + HGB (train_fn)."""
    taxi_data, taxi_utils = _example_module("taxi_data"), _example_module("taxi_utils")
    trips = taxi_data.trips(*taxi_data.FIRST_MONTHS)
    x, y = trips.drop(columns=["tip"]), trips["tip"].to_numpy()
    transform = ColumnTransformer(
        [
            ("numeric", StandardScaler(), ["distance", "hour"]),
            (
                "categorical",
                OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                ["company", "local", "dow", "month"],
            ),
        ]
    ).fit(x)
    model = taxi_utils.train_fn(transform.transform(x), y, {})
    return Pipeline([("transform", transform), ("model", model)]), x


def cancer_models() -> dict[str, tuple[Any, Any]]:
    data = load_breast_cancer()
    x_tr, _, y_tr, _ = train_test_split(
        data.data, data.target, test_size=0.25, random_state=0, stratify=data.target
    )
    lr = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(x_tr, y_tr)
    rf = RandomForestClassifier(n_estimators=100, max_depth=8, random_state=0).fit(x_tr, y_tr)
    return {"lr": (lr, x_tr), "rf": (rf, x_tr)}


def batch_of(model: Any, x: Any, rows: int) -> dict[str, np.ndarray]:
    cols = _columns_of(x[:rows] if isinstance(x, np.ndarray) else x.head(rows))
    raw = dict(cols) if cols is not None else {model.signature.inputs[0].name: x[:rows]}
    batch, _ = coerce_batch(model.signature, raw)
    return batch


def time_calls(fn: Any, calls: int) -> dict[str, float]:
    for _ in range(min(50, calls)):
        fn()
    times = np.empty(calls)
    for i in range(calls):
        t = time.perf_counter_ns()
        fn()
        times[i] = time.perf_counter_ns() - t
    return {
        "p50_us": round(float(np.percentile(times, 50)) / 1e3, 1),
        "p99_us": round(float(np.percentile(times, 99)) / 1e3, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default=str(HERE / "results" / "compiled.json"))
    args = parser.parse_args()
    models = {"taxi": taxi_model(), **cancer_models()}
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, (estimator, x) in models.items():
            y = None if name == "taxi" else estimator.predict(x)
            path = pathlib.Path(tmp) / name
            t = time.perf_counter()
            save_model(
                estimator, path, signature=infer_signature(x, y), methods=BOTH,
                input_example=x[:5] if y is not None else x.head(5), compile="auto",
                check_data=x,
            )  # fmt: skip
            save_s = time.perf_counter() - t
            part = Manifest.read(path).onnx
            assert part is not None and part.serves == "onnx" and part.check, part
            onnx = load_model(path)
            data = (path / "model.onnx").read_bytes()
            two = OnnxPredictor.of(
                session(data, "model.onnx", threads=2), onnx.signature, part.outputs, "x"
            )
            paths = {
                "sklearn-plain": load_model(path, fast=False, compiled=False),
                "sklearn": load_model(path, compiled=False),
                "onnx": onnx,
                "onnx-2threads": dataclasses.replace(onnx, compiled=two),
            }
            for rows in (1, 32):
                batch = batch_of(onnx, x, rows)
                want = paths["sklearn-plain"].predict(batch)
                for label, model in paths.items():
                    got = model.predict(batch)
                    assert np.array_equal(got["predict"], want["predict"]), (name, label)
                best: dict[str, dict[str, float]] = {}
                order = list(paths)
                for r in range(args.rounds):
                    for label in order[r % len(order) :] + order[: r % len(order)]:
                        model = paths[label]
                        slow = label == "sklearn-plain" or (label == "sklearn" and name == "taxi")
                        calls = max(30, args.calls // 40) if slow else args.calls
                        timing = time_calls(lambda m=model, b=batch: m.predict(b), calls)
                        if label not in best or timing["p50_us"] < best[label]["p50_us"]:
                            best[label] = timing
                for label, timing in best.items():
                    results.append(
                        {"model": name, "rows": rows, "path": label, **timing,
                         "check_max_abs_diff": part.check.max_abs_diff,
                         "check_rows": part.check.rows, "save_s": round(save_s, 2)}
                    )  # fmt: skip
    meta = {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "calls": args.calls,
        "rounds": args.rounds,
    }
    pathlib.Path(args.out).write_text(json.dumps({"meta": meta, "results": results}, indent=1))
    print("| model | rows | sklearn-plain p50 | sklearn p50 | onnx p50 (p99) | onnx 2 threads p50 |")
    print("|---|---:|---:|---:|---:|---:|")
    for name in models:
        for rows in (1, 32):
            r = {x["path"]: x for x in results if x["model"] == name and x["rows"] == rows}
            print(
                f"| {name} | {rows} | {r['sklearn-plain']['p50_us']} µs | "
                f"{r['sklearn']['p50_us']} µs | {r['onnx']['p50_us']} µs "
                f"({r['onnx']['p99_us']}) | {r['onnx-2threads']['p50_us']} µs |"
            )
    for name in models:
        r = next(x for x in results if x["model"] == name)
        print(
            f"{name}: check max |diff| {r['check_max_abs_diff']:.2g} on {r['check_rows']} rows, "
            f"save with compile=auto {r['save_s']} s"
        )
    print("load average", meta["load_average"])


if __name__ == "__main__":
    main()
