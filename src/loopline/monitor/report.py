"""The monitor report: ONE self-contained HTML file of a monitor's windows.

::

    html = render_report(status, windows, generated_at=time.time())
    write_report("report.html", html)            # atomic: temp file, fsync, rename

Inline CSS (a light and a dark theme, chosen by the reader's system) and inline SVG drawn in
Python (:mod:`loopline.monitor.report_svg`): no CDN, no script, it opens offline and prints.
Sections: a header (monitor, deployment, model versions, windows, time range), the alert
timeline, drift over time (every feature against its threshold), per feature the latest
window's distribution against the reference's buckets and its drift over time, performance
over time (realised with its interval, estimated by CBPE with its band) and the lineage of
each model version (run, data spans). Every chart has its numbers in a table below it; every
text is escaped.
"""

from __future__ import annotations

import itertools
import os
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape
from pathlib import Path

from loopline.monitor.report_svg import PALETTE, Series, Span, bar_chart, line_chart, timeline
from loopline.monitor.status import MonitorStatus
from loopline.monitor.window_result import (
    Check,
    FeatureResult,
    Histogram,
    PerformanceValue,
    WindowResult,
)

_CSS = """
:root{--bg:#fbfbfa;--fg:#1d2125;--muted:#5d6670;--card:#fff;--line:#e3e5e8;--accent:#0b6bcb;
--bad:#c4320a;--ok:#1a7f37;--warn:#9a6700;--ref:#8a94a0;--cur:#e07b00;
--s0:#0072b2;--s1:#e69f00;--s2:#009e73;--s3:#cc79a7;--s4:#56b4e9;--s5:#d55e00;--s6:#b8a000;
--s7:#555}
@media (prefers-color-scheme:dark){:root{--bg:#15181c;--fg:#e6e8eb;--muted:#9aa4ae;
--card:#1d2126;--line:#30363d;--accent:#58a6ff;--bad:#ff7b72;--ok:#56d364;--warn:#e3b341;
--ref:#8b949e;--cur:#f0a040;--s7:#bbb}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);
font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:1140px;margin:0 auto;padding:28px 24px 48px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;margin:36px 0 10px;padding-bottom:6px;
border-bottom:1px solid var(--line)}h3{font-size:15px;margin:0 0 8px}
.sub{color:var(--muted);margin:0}.sub b{color:var(--fg);font-weight:600}
.kpis{display:flex;flex-wrap:wrap;gap:12px;margin:18px 0 0}
.kpi{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:10px 14px;
min-width:130px}.kpi .v{font-size:22px;font-weight:600}.kpi .k{color:var(--muted);font-size:12px}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:14px 16px;
margin:12px 0}
.grid2{display:grid;grid-template-columns:1fr 1fr;gap:16px}
@media (max-width:860px){.grid2{grid-template-columns:1fr}}
.banner{border-left:4px solid var(--bad);background:var(--card);padding:10px 14px;margin:16px 0}
.badge{display:inline-block;border-radius:10px;padding:0 8px;font-size:12px;font-weight:600;
border:1px solid currentColor}.badge.bad{color:var(--bad)}.badge.ok{color:var(--ok)}
.badge.warn{color:var(--warn)}.badge.muted{color:var(--muted)}
table{border-collapse:collapse;width:100%;font-size:13px;font-variant-numeric:tabular-nums}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid var(--line);vertical-align:top}
th{color:var(--muted);font-weight:600}td.n,th.n{text-align:right}
details{margin-top:6px}summary{cursor:pointer;color:var(--muted);font-size:12px}
.legend{display:flex;flex-wrap:wrap;gap:4px 14px;font-size:12px;color:var(--muted);margin:2px 0}
.legend i{display:inline-block;width:14px;height:3px;vertical-align:middle;margin-right:5px}
.legend i.box{height:10px;border:1.5px solid var(--ref);background:transparent}
svg{display:block;overflow:visible}
svg text{font-size:11px;fill:var(--muted)}
svg .grid{stroke:var(--line);stroke-width:1}svg .axis{stroke:var(--muted);stroke-width:1}
svg .line{fill:none;stroke-width:2}svg .dashed{stroke-dasharray:5 4}
svg .thr{fill:none;stroke:var(--bad);stroke-width:1.5;stroke-dasharray:3 3}
svg .band{stroke:none;opacity:.16}svg .pt{stroke:var(--card);stroke-width:1}
svg .pt.alarm{fill:var(--bad)!important;stroke:var(--bad)}
svg rect.ref{fill:none;stroke:var(--ref);stroke-width:1.5}svg rect.cur{fill:var(--cur)}
svg rect.episode.firing{fill:var(--bad)}svg rect.episode.resolved{fill:var(--warn);opacity:.75}
footer{margin-top:40px;color:var(--muted);font-size:12px}
"""
_CSS += "".join(
    f".s{i}{{stroke:var(--s{i});fill:var(--s{i})}}svg .line.s{i}{{fill:none}}"
    f".legend i.s{i}{{background:var(--s{i})}}"
    for i in range(PALETTE)
)


def render_report(
    status: MonitorStatus, windows: Sequence[WindowResult], *, generated_at: float
) -> str:
    """The whole report as one HTML document. ``windows``: oldest first, any versions."""
    ordered = sorted(windows, key=lambda w: (w.end_ts, w.version, w.index))
    parts = [
        _header(status, ordered, generated_at),
        _alerts(status, ordered),
        _drift_overview(ordered),
        _features(ordered),
        _performance(ordered),
        _lineage(status),
    ]
    stamp = _when(generated_at)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        '<meta name="color-scheme" content="light dark">'
        f"<title>Monitor {escape(status.name)} — loopline report</title>"
        f"<style>{_CSS}</style></head><body><main>"
        + "".join(parts)
        + f"<footer>Generated by loopline at {escape(stamp)} UTC from the monitor's stored "
        "windows. Shares, distances and intervals are in loopline.data's units: Jensen–Shannon "
        "distance (base 2), Wasserstein distance over the reference's σ, PSI in nats.</footer>"
        "</main></body></html>\n"
    )


def write_report(path: str | os.PathLike[str], html: str) -> Path:
    """Write ``html`` to ``path`` atomically (a temporary file in the same directory, fsynced,
    then renamed over ``path``); returns the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(html)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


# ---- sections ------------------------------------------------------------------------------


def _header(status: MonitorStatus, windows: Sequence[WindowResult], generated_at: float) -> str:
    versions = ", ".join(v.version for v in status.versions) or "none yet"
    size = ", ".join(f"{k} {v}" for k, v in status.window.items())
    span = (
        f"{_when(windows[0].start_ts)} → {_when(windows[-1].end_ts)} UTC"
        if windows
        else "no window yet"
    )
    last = status.versions[-1] if status.versions else None
    for v in status.versions:
        if v.end_ts is not None and (last is None or (last.end_ts or 0) <= v.end_ts):
            last = v
    drifted = (
        f"{len(last.drifted)}/{len(last.features)}" if last is not None and last.features else "–"
    )
    kpis = [
        ("windows", f"{status.windows:,}"),
        ("rows ingested", f"{status.rows:,}"),
        ("labels", f"{status.labels:,}"),
        ("drifted, last window", drifted),
        ("alerts firing", str(len(status.firing))),
    ]
    error = (
        f'<div class="banner"><b>Last tick:</b> {escape(status.error)}</div>'
        if status.error
        else ""
    )
    return (
        f"<header><h1>Monitor {escape(status.name)}</h1>"
        f'<p class="sub">deployment <b>{escape(status.deployment)}</b> · model '
        f"<b>{escape(status.model or '?')}</b> · versions <b>{escape(versions)}</b> · window "
        f"<b>{escape(size)}</b></p>"
        f'<p class="sub">{escape(span)} · report of {len(windows)} stored window(s)</p>'
        '<div class="kpis">'
        + "".join(
            f'<div class="kpi"><div class="v">{escape(v)}</div><div class="k">{escape(k)}</div>'
            "</div>"
            for k, v in kpis
        )
        + f"</div>{error}</header>"
    )


def _alerts(status: MonitorStatus, windows: Sequence[WindowResult]) -> str:
    bounds = {(w.version, w.index): (w.start_ts, w.end_ts) for w in windows}
    events = sorted([*status.firing, *status.resolved], key=lambda a: a.id)
    spans = []
    end_all = max([w.end_ts for w in windows] + [a.at for a in events] + [0.0])
    start_all = min([w.start_ts for w in windows] + [a.at for a in events] or [0.0])
    for a in events:
        start = bounds.get((a.version, a.first_window), (a.at, a.at))[0]
        if a.state == "firing":
            end = end_all
        else:
            end = bounds.get((a.version, a.last_window), (a.at, a.at))[1]
        tip = f"{a.state}: {a.reason}"
        spans.append(Span(f"{a.rule} · v{a.version}", start, end, a.state, tip))
    rows = "".join(
        f"<tr><td>{_badge(a.state)}</td><td>{escape(a.rule)}</td><td>{escape(a.version)}</td>"
        f'<td class="n">{a.first_window}–{a.last_window}</td><td>{escape(a.severity)}</td>'
        f"<td>{escape(_when(a.at))}</td><td>{escape(a.reason)}</td></tr>"
        for a in reversed(events)
    )
    table = (
        "<table><tr><th>state</th><th>rule</th><th>version</th><th class=n>windows</th>"
        f"<th>severity</th><th>at (UTC)</th><th>reason</th></tr>{rows}</table>"
        if events
        else '<p class="sub">No alert has fired.</p>'
    )
    chart = timeline(spans, label="Alert timeline", x=(start_all, end_all))
    legend = (
        '<div class="legend"><span><i style="background:var(--bad);height:10px"></i>firing'
        '</span><span><i style="background:var(--warn);height:10px"></i>fired, then resolved'
        "</span></div>"
    )
    return f'<h2>Alerts</h2><div class="card">{legend}{chart}{table}</div>'


def _drift_overview(windows: Sequence[WindowResult]) -> str:
    out = []
    for version, ws in _by_version(windows).items():
        names = [f.name for f in ws[-1].features]
        series = []
        for i, name in enumerate(names):
            xs, ys, marks = [], [], []
            for w in ws:
                f, check = _check(w, name, None)
                xs.append(w.end_ts)
                ratio = (
                    None if check is None or not check.threshold else check.value / check.threshold
                )
                ys.append(ratio)
                marks.append(bool(f and f.drifted))
            series.append(Series(name, tuple(xs), tuple(ys), f"s{i % PALETTE}", marks=tuple(marks)))
        xs_all = tuple(w.end_ts for w in ws)
        chart = line_chart(
            series,
            label=f"Drift of version {version}: each feature's distance over its threshold",
            threshold=(xs_all, tuple(1.0 for _ in xs_all)),
            width=1080,
            height=240,
        )
        out.append(
            f'<div class="card"><h3>Version {escape(version)}: distance ÷ threshold per feature '
            "(above 1: drifted)</h3>" + _legend(names) + chart + "</div>"
        )
    body = "".join(out) or '<p class="sub">No window has closed yet.</p>'
    return f"<h2>Drift over time</h2>{body}"


def _features(windows: Sequence[WindowResult]) -> str:
    if not windows:
        return ""
    latest = windows[-1]
    history = _by_version(windows)[latest.version]
    cards = []
    for f in latest.features:
        cards.append(_feature_card(f, latest, history))
    if latest.prediction is not None:
        cards.append(_feature_card(latest.prediction, latest, history, prediction=True))
    return f"<h2>Features (version {escape(latest.version)}, window {latest.index})</h2>" + "".join(
        cards
    )


def _feature_card(
    f: FeatureResult,
    latest: WindowResult,
    history: Sequence[WindowResult],
    *,
    prediction: bool = False,
) -> str:
    check = f.primary
    metric = check.metric if check is not None else None
    verdict = (
        _badge("drifted")
        if f.drifted
        else _badge("not compared", "muted")
        if f.reason
        else _badge("stable", "ok")
    )
    how = ""
    if check is not None:
        kind = "calibrated" if check.calibrated else "fixed"
        how = (
            f" · {escape(check.metric)} <b>{check.value:.4g}</b> vs {kind} threshold "
            f"{check.threshold:.4g}"
        )
    why = f" · {escape(f.reason)}" if f.reason else ""
    dist = _distribution(f.histogram, f.name)
    xs, ys, thr, marks = [], [], [], []
    for w in history:
        seen, c = _check(w, f.name, metric, prediction=prediction)
        xs.append(w.end_ts)
        ys.append(None if c is None else c.value)
        thr.append(None if c is None else c.threshold)
        marks.append(bool(seen and seen.drifted))
    trend = line_chart(
        [Series(metric or "distance", tuple(xs), tuple(ys), "s0", marks=tuple(marks))],
        label=f"{f.name}: {metric or 'distance'} per window and its threshold",
        threshold=(tuple(xs), tuple(thr)),
    )
    rows = "".join(
        f'<tr><td class="n">{w.index}</td><td>{escape(_when(w.end_ts))}</td>'
        f'<td class="n">{_num(y)}</td><td class="n">{_num(t)}</td>'
        f"<td>{'drifted' if m else ''}</td></tr>"
        for w, y, t, m in zip(history, ys, thr, marks, strict=True)
    )
    title = "prediction" if prediction else "feature"
    return (
        f'<div class="card"><h3>{title} {escape(f.name)} <span class="sub">({escape(f.kind)})'
        f"</span> {verdict}</h3>"
        f'<p class="sub">missing {f.missing_share:.1%}{how}{why}</p>'
        '<div class="grid2"><div>'
        '<div class="legend"><span><i class="box"></i>reference</span><span><i '
        'style="background:var(--cur);height:10px"></i>latest window</span></div>'
        f"{dist[0]}</div><div>"
        '<div class="legend"><span><i class="s0"></i>distance</span><span><i '
        'style="background:var(--bad)"></i>threshold</span><span><i style="background:var(--bad);'
        'height:8px;width:8px;border-radius:4px"></i>drifted window</span></div>'
        f"{trend}</div></div>"
        f"<details><summary>numbers</summary>{dist[1]}<table><tr><th class=n>window</th>"
        f"<th>end (UTC)</th><th class=n>{escape(metric or 'distance')}</th><th class=n>threshold"
        f"</th><th></th></tr>{rows}</table></details></div>"
    )


def _distribution(h: Histogram | None, name: str) -> tuple[str, str]:
    if h is None:
        return '<p class="sub">No histogram for this window.</p>', ""
    labels = _bucket_labels(h)
    chart = bar_chart(
        labels, h.reference, h.current, label=f"{name}: latest window vs reference, per bucket"
    )
    rows = "".join(
        f'<tr><td>{escape(label)}</td><td class="n">{r:.2%}</td><td class="n">{c:.2%}</td></tr>'
        for label, r, c in zip(labels, h.reference, h.current, strict=False)
    )
    table = (
        "<table><tr><th>bucket</th><th class=n>reference</th><th class=n>latest</th></tr>"
        f"{rows}</table>"
    )
    return chart, table


def _bucket_labels(h: Histogram) -> list[str]:
    n = len(h.reference)
    if h.categories is not None:
        return [("other" if c == "__other__" else c) for c in h.categories][:n] + [
            "other" for _ in range(n - len(h.categories))
        ]
    edges = list(h.edges or ())
    if n == len(edges) + 1:
        return (
            [f"< {edges[0]:.4g}"]
            + [f"{a:.4g}–{b:.4g}" for a, b in itertools.pairwise(edges)]
            + [f"≥ {edges[-1]:.4g}"]
        )
    if n == len(edges) - 1:
        return [f"{a:.4g}–{b:.4g}" for a, b in itertools.pairwise(edges)]
    return [str(i) for i in range(n)]


def _performance(windows: Sequence[WindowResult]) -> str:
    cards = []
    for version, ws in _by_version(windows).items():
        names = list(dict.fromkeys(p.name for w in ws for p in (*w.performance, *w.estimated)))
        for name in names:
            xs = tuple(w.end_ts for w in ws)
            real = [w.metric(name) for w in ws]
            est = [w.metric(name, estimated=True) for w in ws]
            if all(p is None or p.value is None for p in real + est):
                continue
            series = [
                Series(
                    f"realised {name}",
                    xs,
                    tuple(None if p is None else p.value for p in real),
                    "s0",
                    lower=tuple(None if p is None else p.lower for p in real),
                    upper=tuple(None if p is None else p.upper for p in real),
                ),
                Series(
                    f"estimated {name} (CBPE)",
                    xs,
                    tuple(None if p is None else p.value for p in est),
                    "s3",
                    lower=tuple(None if p is None else p.lower for p in est),
                    upper=tuple(None if p is None else p.upper for p in est),
                    dashed=True,
                ),
            ]
            alert = [None if p is None else p.alert_lower for p in est]
            chart = line_chart(
                series,
                label=f"{name} of version {version} over time",
                threshold=(xs, tuple(alert)) if any(a is not None for a in alert) else None,
                y_floor=None,
            )
            rows = "".join(
                f'<tr><td class="n">{w.index}</td><td>{escape(_when(w.end_ts))}</td>'
                f"<td class=n>{_perf(r)}</td><td class=n>{_perf(e)}</td></tr>"
                for w, r, e in zip(ws, real, est, strict=True)
            )
            cards.append(
                f'<div class="card"><h3>{escape(name)} · version {escape(version)}</h3>'
                '<div class="legend"><span><i class="s0"></i>realised (labels), '
                'shaded: interval</span><span><i class="s3"></i>estimated (CBPE), shaded: band'
                '</span><span><i style="background:var(--bad)"></i>CBPE alert threshold</span>'
                f"</div>{chart}<details><summary>numbers</summary><table><tr><th class=n>window"
                "</th><th>end (UTC)</th><th class=n>realised [interval]</th><th class=n>estimated "
                f"[band]</th></tr>{rows}</table></details></div>"
            )
    body = "".join(cards) or (
        '<p class="sub">No performance yet: labels have not arrived and no CBPE estimator '
        "could be fitted (it needs a binary classifier with predict_proba).</p>"
    )
    return f"<h2>Performance over time</h2>{body}"


def _lineage(status: MonitorStatus) -> str:
    rows = []
    for v in status.versions:
        lin = v.lineage
        if lin is None:
            rows.append(f"<tr><td>{escape(v.version)}</td><td colspan=6>unknown</td></tr>")
            continue
        spans = ", ".join(str(s) for s in lin.spans) or "–"
        rows.append(
            f"<tr><td>{escape(lin.model)}/{escape(lin.version)}</td>"
            f'<td class="n">{lin.artifact_id}</td><td>{escape((lin.digest or "–")[:19])}</td>'
            f"<td>{escape(lin.pipeline or '–')} / {escape(lin.run or '–')}</td>"
            f"<td>{escape(lin.producer or 'registered by hand')}</td><td>{escape(spans)}"
            f"{'' if lin.rows is None else f' ({lin.rows:,} rows)'}</td>"
            f"<td>{escape(_when(lin.created_at))}</td></tr>"
        )
    table = (
        "<table><tr><th>model version</th><th class=n>artifact</th><th>digest</th>"
        "<th>pipeline / run</th><th>made by</th><th>data spans</th><th>created (UTC)</th></tr>"
        + "".join(rows)
        + "</table>"
    )
    return (
        '<h2>Lineage</h2><div class="card"><p class="sub">Trace one prediction further with '
        "<code>loopline lineage prediction/ID</code>.</p>"
        f"{table}</div>"
    )


# ---- helpers -------------------------------------------------------------------------------


def _by_version(windows: Sequence[WindowResult]) -> dict[str, list[WindowResult]]:
    out: dict[str, list[WindowResult]] = {}
    for w in sorted(windows, key=lambda w: (w.version, w.index)):
        out.setdefault(w.version, []).append(w)
    return out


def _check(
    w: WindowResult, name: str, metric: str | None, *, prediction: bool = False
) -> tuple[FeatureResult | None, Check | None]:
    """The feature in ``w`` and its check of ``metric`` (None: its deciding check)."""
    f = w.prediction if prediction else w.feature(name)
    if f is None:
        return None, None
    if metric is None:
        return f, f.primary
    return f, next((c for c in f.checks if c.metric == metric), None)


def _legend(names: Sequence[str]) -> str:
    return (
        '<div class="legend">'
        + "".join(
            f'<span><i class="s{i % PALETTE}"></i>{escape(n)}</span>' for i, n in enumerate(names)
        )
        + '<span><i style="background:var(--bad)"></i>threshold</span></div>'
    )


def _badge(text: str, kind: str | None = None) -> str:
    css = kind or {"firing": "bad", "drifted": "bad", "resolved": "warn"}.get(text, "ok")
    return f'<span class="badge {css}">{escape(text)}</span>'


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _num(x: float | None) -> str:
    return "–" if x is None or x != x else f"{x:.4g}"


def _perf(p: PerformanceValue | None) -> str:
    if p is None or p.value is None:
        return "–"
    if p.lower is None or p.upper is None:
        return f"{p.value:.4f}"
    return f"{p.value:.4f} [{p.lower:.4f}, {p.upper:.4f}]"
