"""Drift benchmark: loopline.data against Evidently, whylogs and TFDV on the same synthetic table.

The table, its ground-truth drift labels and the peers' runs come from the research script
``shared/bench/drift_peers.py`` (imported from ``--peers-script``), so every tool sees the same
rows. Each measurement runs in its own process, so peak memory is per tool.

    .venv/bin/python benchmarks/drift/bench_drift.py --rows 1000000 \\
        --peers-python /tmp/drift-peers-venv/bin/python --peers evidently,whylogs

Modes run in child processes (``--mode``):

* ``loopline``: read the two Parquet files into Arrow tables (that is the input; its size is
  the memory yardstick), then ``repeats`` times: profile the reference, profile the current
  window on the reference's edges, compare. Reports the median wall time, profiling rate and
  the peak RSS above the post-load baseline (``/proc/self/clear_refs`` resets the peak).
* ``loopline-parquet``: the same, streamed from Parquet with ``profile_parquet`` (bounded
  memory: the tables are never loaded whole).

Peers (``--peers``) run ``drift_peers.py evidently|whylogs`` with ``--peers-python`` (a venv
with evidently 0.7.23 / whylogs 1.6.4, numpy<2, pandas<2.3) under GNU ``time -v``. TFDV 1.16.1
runs ``tfdv_bench.py`` (next to this file) with ``--tfdv-python`` (its own venv; the pins are in
that script's docstring) on the same Parquet files, also under GNU ``time -v``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_PEERS_SCRIPT = ROOT.parent / "shared" / "bench" / "drift_peers.py"
ROW_GROUP = 131_072  # Parquet is read a row group at a time: this bounds streaming memory


def load_peers(script: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("drift_peers", script)
    if spec is None or spec.loader is None:
        raise SystemExit(f"Cannot import the peers script {script}; pass --peers-script.")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def make_data(peers: ModuleType, rows: int, out: Path) -> tuple[Path, Path]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    ref_path, cur_path = out / f"ref_{rows}.parquet", out / f"cur_{rows}.parquet"
    if not (ref_path.exists() and cur_path.exists()):
        ref, cur, _ = peers.make_pair(rows)
        out.mkdir(parents=True, exist_ok=True)
        pq.write_table(
            pa.Table.from_pandas(ref, preserve_index=False), ref_path, row_group_size=ROW_GROUP
        )
        pq.write_table(
            pa.Table.from_pandas(cur, preserve_index=False), cur_path, row_group_size=ROW_GROUP
        )
    return ref_path, cur_path


def _status_kib(field: str) -> int:
    m = re.search(rf"{field}:\s+(\d+) kB", Path("/proc/self/status").read_text())
    return int(m.group(1)) if m else 0


def _reset_peak() -> None:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def run_loopline(peers: ModuleType, rows: int, out: Path, repeats: int, streamed: bool) -> dict:
    import pyarrow.parquet as pq

    from loopline.data import Metric, compare, profile_parquet, profile_table

    ref_path, cur_path = out / f"ref_{rows}.parquet", out / f"cur_{rows}.parquet"
    input_bytes = 0
    if not streamed:
        ref_t, cur_t = pq.read_table(ref_path), pq.read_table(cur_path)
        input_bytes = ref_t.nbytes + cur_t.nbytes
    base = _status_kib("VmRSS")
    _reset_peak()
    walls, cpus, t_ref, t_cur, t_cmp = [], [], [], [], []
    report = None
    for _ in range(repeats):
        c0 = time.process_time()
        t0 = time.perf_counter()
        if streamed:
            pr = profile_parquet(ref_path)
            t1 = time.perf_counter()
            pc = profile_parquet(cur_path, reference=pr)
        else:
            pr = profile_table(ref_t)
            t1 = time.perf_counter()
            pc = profile_table(cur_t, reference=pr)
        t2 = time.perf_counter()
        report = compare(pr, pc)
        t3 = time.perf_counter()
        walls.append(t3 - t0)
        cpus.append(time.process_time() - c0)
        t_ref.append(t1 - t0)
        t_cur.append(t2 - t1)
        t_cmp.append(t3 - t2)
    peak = _status_kib("VmHWM")
    assert report is not None
    per_col, flags = {}, {}
    for f in report.features:
        per_col[f.feature] = {
            "truth": peers.LABELS[f.feature],
            "drift": f.drifted,
            "method": f.method,
            "metrics": {m.value: round(v, 5) for m, v in f.metrics.items()},
            "checks": [
                {
                    "metric": c.metric.value,
                    "value": round(c.value, 5),
                    "threshold": c.threshold,
                    "noise": None if c.noise is None else round(c.noise, 5),
                    "drift": c.drifted,
                }
                for c in f.checks
            ],
        }
        flags[f.feature] = f.drifted
    med = statistics.median
    return {
        "tool": "loopline.data" + (" (profile_parquet, streamed)" if streamed else ""),
        "rows_ref": rows,
        "rows_cur": rows,
        "repeats": repeats,
        "t_total_median_s": round(med(walls), 3),
        "t_total_all_s": [round(w, 3) for w in walls],
        "cpu_total_median_s": round(med(cpus), 3),
        "load_avg_1m_after": float(Path("/proc/loadavg").read_text().split()[0]),
        "t_profile_ref_median_s": round(med(t_ref), 3),
        "t_profile_cur_median_s": round(med(t_cur), 3),
        "t_compare_median_s": round(med(t_cmp), 4),
        "rows_per_s_profile_ref": int(rows / med(t_ref)),
        "rows_per_s_profile_cur": int(rows / med(t_cur)),
        "input_arrow_mib": round(input_bytes / 2**20, 1),
        "rss_baseline_mib": round(base / 1024, 1),
        "peak_rss_above_baseline_mib": round((peak - base) / 1024, 1),
        "js_ln_equivalent_note": "Evidently JS (ln) = loopline JS (base 2) × 0.8326",
        "per_column": per_col,
        "alarms_by_truth": peers.alarm_summary(flags),
        "w1_std_by_column": {
            k: v["metrics"].get(Metric.NORMALIZED_WASSERSTEIN.value) for k, v in per_col.items()
        },
    }


def _gnu_time(stderr: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", stderr)
    if m:
        out["peak_rss_mib"] = round(int(m.group(1)) / 1024, 1)
    return out


def child(cmd: list[str], timeout: float) -> tuple[dict[str, Any], str]:
    t = time.perf_counter()
    p = subprocess.run(
        ["/usr/bin/time", "-v", *cmd], capture_output=True, text=True, timeout=timeout, check=False
    )
    info = {"returncode": p.returncode, "process_wall_s": round(time.perf_counter() - t, 1)}
    info.update(_gnu_time(p.stderr))
    if p.returncode != 0:
        info["stderr_tail"] = p.stderr[-1500:]
    return info, p.stdout


def run_tfdv(peers: ModuleType, python: str, out: Path, rows: int, timeout: float) -> dict:
    """TFDV stats ×2 + infer_schema + validate with drift comparators on every column."""
    script = Path(__file__).resolve().parent / "tfdv_bench.py"
    info, stdout = child([python, str(script), str(out), str(rows)], timeout)
    info["measured_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    info["load_avg_1m_after"] = float(Path("/proc/loadavg").read_text().split()[0])
    lines = [ln for ln in stdout.strip().splitlines() if ln.startswith("{")]
    if info["returncode"] == 0 and lines:
        info.update(json.loads(lines[-1]))
        info["alarms_by_truth"] = peers.alarm_summary(info["drift_flags"])
    print(
        f"[tfdv] rc={info['returncode']} compute={info.get('t_total_s')} s "
        f"alarms {info.get('alarms_by_truth')}",
        flush=True,
    )
    return info


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", type=Path, default=Path("/tmp/loopline-drift-bench"))
    ap.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "drift" / "results")
    ap.add_argument("--peers-script", type=Path, default=DEFAULT_PEERS_SCRIPT)
    ap.add_argument("--peers-python", default="")
    ap.add_argument("--peers", default="", help="comma-separated: evidently,whylogs")
    ap.add_argument("--tfdv-python", default="", help="a venv with TFDV 1.16.1 (tfdv_bench.py)")
    ap.add_argument("--peer-timeout", type=float, default=900.0)
    ap.add_argument("--mode", choices=["all", "loopline", "loopline-parquet"], default="all")
    ap.add_argument("--loopline-modes", default="loopline,loopline-parquet")
    ap.add_argument(
        "--update",
        action="store_true",
        help="keep the other runs of an existing summary (each run is timestamped)",
    )
    a = ap.parse_args(argv)
    peers = load_peers(a.peers_script)
    out: Path = a.out
    if a.mode != "all":
        res = run_loopline(peers, a.rows, out, a.repeats, a.mode == "loopline-parquet")
        print(json.dumps(res))
        return
    make_data(peers, a.rows, out)
    summary: dict[str, Any] = {"rows": a.rows, "python": sys.version.split()[0], "runs": {}}
    path = a.results / f"summary_{a.rows}.json"
    if a.update and path.exists():
        summary = json.loads(path.read_text())
    for mode in [m for m in a.loopline_modes.split(",") if m]:
        cmd = [
            sys.executable,
            __file__,
            "--mode",
            mode,
            "--rows",
            str(a.rows),
            "--repeats",
            str(a.repeats),
            "--out",
            str(out),
            "--peers-script",
            str(a.peers_script),
        ]
        info, stdout = child(cmd, a.peer_timeout)
        info["measured_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        if info["returncode"] == 0:
            info.update(json.loads(stdout.strip().splitlines()[-1]))
        summary["runs"][mode] = info
        print(
            f"[{mode}] {info.get('t_total_median_s')} s median, "
            f"alarms {info.get('alarms_by_truth')}",
            flush=True,
        )
    for tool in [t for t in a.peers.split(",") if t]:
        if not a.peers_python:
            raise SystemExit("--peers needs --peers-python (a venv with evidently/whylogs).")
        peer_out = out / "peers"
        cmd = [
            a.peers_python,
            str(a.peers_script),
            tool,
            "--rows",
            str(a.rows),
            "--out",
            str(peer_out),
        ]
        info, _ = child(cmd, a.peer_timeout)
        info["measured_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        result = peer_out / f"{tool}_{a.rows}.json"
        if info["returncode"] == 0 and result.exists():
            info.update(json.loads(result.read_text()))
        summary["runs"][tool] = info
        print(
            f"[{tool}] rc={info['returncode']} wall={info['process_wall_s']} s "
            f"alarms {info.get('alarms_by_truth')}",
            flush=True,
        )
    if a.tfdv_python:
        summary["runs"]["tfdv"] = run_tfdv(peers, a.tfdv_python, out, a.rows, a.peer_timeout)
    a.results.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, indent=2, default=str))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
