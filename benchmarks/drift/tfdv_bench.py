"""TFDV side of the drift benchmark (runs in its own venv: TFDV 1.16.1 pins numpy 1.26/pyarrow 10).

Reads the same Parquet files as ``bench_drift.py --mode loopline`` (written by its
``make_data``), loads them into pandas (not timed), then times
``generate_statistics_from_dataframe`` for the reference and the current sample,
``infer_schema`` on the reference statistics, and ``validate_statistics(current, schema,
previous_statistics=reference)`` with a drift comparator on *every* column: Jensen–Shannon
divergence ≥ ``--numeric-jsd`` (0.02) for numeric columns and L∞ ≥ ``--categorical-linf``
(0.01) for categorical ones — the thresholds of Google's Vertex AI ``DataDriftSpec`` example.
Prints one JSON line; ``bench_drift.py --tfdv-python`` runs it under GNU ``time -v`` and
counts the alarms by ground truth.

    /tmp/tfdv-venv/bin/python benchmarks/drift/tfdv_bench.py /tmp/loopline-drift-bench 1000000

Install (Python 3.11, several minutes; the pins are the ones that resolve together)::

    python3.11 -m venv /tmp/tfdv-venv
    /tmp/tfdv-venv/bin/pip install tensorflow-data-validation==1.16.1 numpy==1.26.4 \\
        pyarrow==10.0.1 pandas==1.5.3 tensorflow==2.16.2 'apache-beam[gcp]==2.59.0' \\
        protobuf==4.25.9
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("data", type=Path)
    ap.add_argument("rows", type=int)
    ap.add_argument("--numeric-jsd", type=float, default=0.02)
    ap.add_argument("--categorical-linf", type=float, default=0.01)
    a = ap.parse_args()

    import pyarrow.parquet as pq

    t = time.perf_counter()
    import tensorflow_data_validation as tfdv

    t_import = time.perf_counter() - t
    ref = pq.read_table(a.data / f"ref_{a.rows}.parquet").to_pandas()
    cur = pq.read_table(a.data / f"cur_{a.rows}.parquet").to_pandas()
    status = Path("/proc/self/status").read_text()
    base_kib = int(re.search(r"VmRSS:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
    c0, t0 = time.process_time(), time.perf_counter()
    ref_stats = tfdv.generate_statistics_from_dataframe(ref)
    t1 = time.perf_counter()
    cur_stats = tfdv.generate_statistics_from_dataframe(cur)
    t2 = time.perf_counter()
    schema = tfdv.infer_schema(ref_stats)
    for column in ref.columns:
        feature = tfdv.get_feature(schema, column)
        if ref[column].dtype.kind in "biuf":
            feature.drift_comparator.jensen_shannon_divergence.threshold = a.numeric_jsd
        else:
            feature.drift_comparator.infinity_norm.threshold = a.categorical_linf
    t3 = time.perf_counter()
    anomalies = tfdv.validate_statistics(
        statistics=cur_stats, schema=schema, previous_statistics=ref_stats
    )
    t4 = time.perf_counter()
    cpu = time.process_time() - c0
    measurements = {}
    for info in anomalies.drift_skew_info:
        name = ".".join(info.path.step)
        measurements[name] = [
            {"type": str(m.type), "value": round(m.value, 5), "threshold": m.threshold}
            for m in info.drift_measurements
        ]
    # A column drifts when one of its comparators is above its threshold (as TFDV raises it).
    drifted = {
        name: any(m["value"] > m["threshold"] for m in ms) for name, ms in measurements.items()
    }
    res = {
        "tool": "tensorflow-data-validation",
        "version": tfdv.__version__,
        "rows": a.rows,
        "thresholds": {"numeric_jsd": a.numeric_jsd, "categorical_linf": a.categorical_linf},
        "t_import_s": round(t_import, 2),
        "t_stats_ref_s": round(t1 - t0, 3),
        "t_stats_cur_s": round(t2 - t1, 3),
        "t_infer_schema_s": round(t3 - t2, 3),
        "t_validate_s": round(t4 - t3, 3),
        "t_total_s": round(t4 - t0, 3),
        "cpu_total_s": round(cpu, 3),
        "rows_per_s_stats": int(a.rows / (t2 - t1)),
        "rss_after_load_mib": round(base_kib / 1024, 1),
        "anomalies": {k: v.description for k, v in anomalies.anomaly_info.items()},
        "drift_flags": {c: bool(drifted.get(c, False)) for c in ref.columns},
        "drift_measurements": measurements,
    }
    print(json.dumps(res))


if __name__ == "__main__":
    main()
