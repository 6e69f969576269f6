"""Render benchmarks/drift/results/summary_*.json as the Markdown tables of the README."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def _row(size: int, name: str, run: dict[str, Any]) -> str:
    if run.get("returncode") != 0:
        return f"| {size:,} | {name} | failed (rc={run.get('returncode')}) | | | | |"
    if name.startswith("loopline"):
        compute = run["t_total_median_s"]
        detail = (
            f"median of {run['repeats']}: ref {run['t_profile_ref_median_s']} s + cur "
            f"{run['t_profile_cur_median_s']} s + compare {run['t_compare_median_s']} s; "
            f"CPU {run.get('cpu_total_median_s', '?')} s"
        )
        rate = f"{run['rows_per_s_profile_cur']:,} (cur) / {run['rows_per_s_profile_ref']:,} (ref)"
        mem = f"{run['peak_rss_above_baseline_mib']} above baseline"
        if run.get("input_arrow_mib"):
            mem += f" (input {run['input_arrow_mib']} MiB)"
    elif name == "evidently":
        compute = round(run["t_report_run_s"] + run["t_dataset_wrap_s"], 2)
        detail = f"Report.run {run['t_report_run_s']} s + Dataset wrap {run['t_dataset_wrap_s']} s"
        rate = "—"
        mem = f"{run.get('peak_rss_mib')} process peak"
    elif name == "tfdv":
        compute = run["t_total_s"]
        detail = (
            f"stats ref {run['t_stats_ref_s']} s + cur {run['t_stats_cur_s']} s + infer_schema "
            f"{run['t_infer_schema_s']} s + validate {run['t_validate_s']} s; CPU "
            f"{run['cpu_total_s']} s (import {run['t_import_s']} s not counted)"
        )
        rate = f"{run['rows_per_s_stats']:,}"
        mem = f"{run.get('peak_rss_mib')} process peak (input {run['rss_after_load_mib']} loaded)"
    else:
        compute = round(run["t_total_profile_both_s"] + run["t_drift_from_profiles_s"], 2)
        detail = (
            f"profiles {run['t_total_profile_both_s']} s + drift {run['t_drift_from_profiles_s']} s"
        )
        rate = f"{run['rows_per_s_profile']:,}"
        mem = f"{run.get('peak_rss_mib')} process peak"
    alarms = run.get("alarms_by_truth", {})
    alarm = " · ".join(f"{k} {v}" for k, v in alarms.items())
    return f"| {size:,} | {name} | **{compute} s** | {detail} | {rate} | {mem} | {alarm} |"


def main() -> None:
    print(
        "| rows (each side) | tool | drift wall | breakdown | profile rows/s | memory MiB "
        "| alarms by truth |"
    )
    print("|---|---|---|---|---|---|---|")
    ratios = []
    for path in sorted(RESULTS.glob("summary_*.json"), key=lambda p: int(p.stem.split("_")[1])):
        summary = json.loads(path.read_text())
        size = summary["rows"]
        runs = summary["runs"]
        for name, run in runs.items():
            print(_row(size, name, run))
        ll, ev, wl = runs.get("loopline"), runs.get("evidently"), runs.get("whylogs")
        if ll and ev and ev.get("returncode") == 0:
            ev_t = ev["t_report_run_s"] + ev["t_dataset_wrap_s"]
            ratios.append(f"{size:,}: Evidently / loopline = {ev_t / ll['t_total_median_s']:.0f}x")
        if ll and wl and wl.get("returncode") == 0:
            wl_rate = wl["rows_per_s_profile"]
            ratios.append(
                f"{size:,}: loopline / whylogs profiling rate = "
                f"{ll['rows_per_s_profile_cur'] / wl_rate:.0f}x"
            )
    print()
    for r in ratios:
        print(f"* {r}")
    if len(sys.argv) > 1 and sys.argv[1] == "--columns":
        _columns()


def _columns() -> None:
    summary = json.loads((RESULTS / "summary_1000000.json").read_text())
    ll = summary["runs"]["loopline"]["per_column"]
    ev = summary["runs"].get("evidently", {}).get("per_column", {})
    tf = summary["runs"].get("tfdv", {})
    print(
        "\n| column | truth | loopline check (value / threshold) | drift | Evidently score | "
        "drift | TFDV (JSD numeric, L∞ categorical) | drift |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for col, v in ll.items():
        checks = "; ".join(
            f"{c['metric']} {c['value']:.4f} / {c['threshold']}" for c in v["checks"]
        )
        if v.get("method"):
            checks += f" ({v['method']})"
        e = ev.get(col, {})
        score = f"{e.get('score', float('nan')):.4f} ({e.get('method', '?')})" if e else "—"
        t = tf.get("drift_measurements", {}).get(col, [])
        tfdv = "; ".join(f"{m['value']:.4f} / {m['threshold']}" for m in t) or "—"
        flag = tf.get("drift_flags", {}).get(col, "—")
        print(
            f"| {col} | {v['truth']} | {checks} | {v['drift']} | {score} | {e.get('drift')} "
            f"| {tfdv} | {flag} |"
        )


if __name__ == "__main__":
    main()
