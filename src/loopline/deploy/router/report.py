"""The router's numbers: ``GET /stats`` (JSON over a sliding window) and ``GET /metrics``
(Prometheus text), and how a multi-worker router merges its workers' figures.

``/stats?window=S`` (S ≤ 600, whole seconds)::

    {"deployment", "window": S, "bounds": [...],
     "revisions": {rev: {"label", "requests", "errors", "rate", "errorRate", "inFlight",
                         "latency": {"p50", "p90", "p95", "p99"}, "buckets": [...]}},
     "mirror": {rev: {"sent", "compared", "agreed", "errors", "dropped"}},
     "held": int, "heldTotal": int}

``errors`` are 5xx answers, from a replica or made by the router; ``rate`` is requests per
second over the window (over the router's uptime when that is shorter); ``errorRate`` and
the latencies (seconds) are null without requests. ``buckets`` are per-bucket counts (not
cumulative) over ``bounds``, plus one above the last bound, so figures merge by addition.
Revision ``""`` holds the requests the router answered before any revision was chosen (no
ready replica, an expired hold). A revision is listed while it has backends or a label, or
had requests in the window.

Workers send :func:`snapshot` (``GET /metrics?format=json``); the supervisor adds them up
(:func:`merge_snapshots`) and renders the sum once (:func:`render_metrics`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict
from time import monotonic
from typing import TYPE_CHECKING, Any

from loopline.deploy.router.metrics import BOUNDS, MAX_WINDOW, quantiles

if TYPE_CHECKING:
    from loopline.deploy.router.proxy import Router

JsonObj = dict[str, Any]


def window_seconds(raw: str | None) -> int:
    """The ``window`` query parameter as whole seconds (default 60). Raises ValueError."""
    if raw is None:
        return 60
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not 0 < value <= MAX_WINDOW:
        raise ValueError(
            f"Query parameter 'window' must be a number of seconds in (0, {MAX_WINDOW}], "
            f"not {raw!r}."
        )
    return math.ceil(value)


def _in_flight(router: Router) -> dict[str, int]:
    out: dict[str, int] = {}
    bal = router.balancer
    for b in [*bal.backends.values(), *bal.retiring.values()]:
        out[b.revision] = out.get(b.revision, 0) + b.outstanding
    return out


def revision_entry(label: str, requests: int, errors: int, rate: float,
                   buckets: list[int], in_flight: int) -> JsonObj:  # fmt: skip
    """One revision's ``/stats`` entry; the derived figures computed from the counts."""
    return {
        "label": label,
        "requests": requests,
        "errors": errors,
        "rate": round(rate, 6),
        "errorRate": round(errors / requests, 6) if requests else None,
        "latency": quantiles(buckets),
        "buckets": buckets,
        "inFlight": in_flight,
    }


def stats(router: Router, window: int, now: float | None = None) -> JsonObj:
    """The ``/stats`` document of one router process."""
    now = monotonic() if now is None else now
    span = min(float(window), max(1.0, now - router.started_at))
    in_flight = _in_flight(router)
    current = {b.revision for b in router.balancer.backends.values()} | set(router.labels)
    revisions: JsonObj = {}
    for rev, m in router.metrics.items():
        hist, errors = m.window(now, window)
        requests = sum(hist)
        if requests or rev in current or in_flight.get(rev):
            revisions[rev] = revision_entry(
                router.labels.get(rev, ""), requests, errors, requests / span, hist,
                in_flight.get(rev, 0),
            )  # fmt: skip
    return {
        "deployment": router.name,
        "window": window,
        "bounds": list(BOUNDS),
        "revisions": revisions,
        "mirror": {rev: asdict(c) for rev, c in router.mirroring.counters.items()},
        "held": router.hold.held(),
        "heldTotal": router.hold.total,
    }


def merge_stats(reports: Sequence[JsonObj]) -> JsonObj:
    """The ``/stats`` of several workers as one router's: counts, rates and in-flight added,
    error rates and latencies recomputed from the summed counts and buckets."""
    first = reports[0]
    sums: dict[str, JsonObj] = {}
    for report in reports:
        for rev, e in report["revisions"].items():
            s = sums.setdefault(rev, {
                "label": "", "requests": 0, "errors": 0, "rate": 0.0,
                "buckets": [0] * len(e["buckets"]), "inFlight": 0,
            })  # fmt: skip
            s["label"] = s["label"] or e["label"]
            for key in ("requests", "errors", "rate", "inFlight"):
                s[key] += e[key]
            s["buckets"] = [a + b for a, b in zip(s["buckets"], e["buckets"], strict=True)]
    mirror: dict[str, JsonObj] = {}
    for report in reports:
        for rev, c in report["mirror"].items():
            m = mirror.setdefault(rev, dict.fromkeys(c, 0))
            for key, value in c.items():
                m[key] += value
    return {
        **first,
        "revisions": {
            rev: revision_entry(
                s["label"], s["requests"], s["errors"], s["rate"], s["buckets"], s["inFlight"]
            )
            for rev, s in sums.items()
        },
        "mirror": mirror,
        "held": sum(r["held"] for r in reports),
        "heldTotal": sum(r["heldTotal"] for r in reports),
        "workers": len(reports),
    }


def snapshot(router: Router) -> JsonObj:
    """Every counter of one router process since it started (the source of ``/metrics``)."""
    in_flight = _in_flight(router)
    return {
        "deployment": router.name,
        "revisions": {
            rev: {
                "label": router.labels.get(rev, ""),
                "codes": m.codes[1:6],  # 1xx … 5xx
                "buckets": m.hist.copy(),
                "sum": m.sum,
                "inFlight": in_flight.get(rev, 0),
            }
            for rev, m in router.metrics.items()
        },
        "mirror": {rev: asdict(c) for rev, c in router.mirroring.counters.items()},
        "held": router.hold.held(),
        "heldTotal": router.hold.total,
        "retries": router.stats.retries,
        "failed": router.stats.failed,
        "noBackend": router.stats.no_backend,
    }


def _add(a: Any, b: Any) -> Any:
    """Numbers added, lists element-wise, objects key-wise; strings: the first non-empty."""
    if isinstance(a, dict):
        out = dict(a)
        for key, value in b.items():
            out[key] = _add(out[key], value) if key in out else value
        return out
    if isinstance(a, list):
        return [_add(x, y) for x, y in zip(a, b, strict=True)]
    if isinstance(a, str):
        return a or b
    return a + b


def merge_snapshots(snapshots: Sequence[JsonObj]) -> JsonObj:
    """Several workers' snapshots as one router's (every counter and gauge added)."""
    merged = snapshots[0]
    for other in snapshots[1:]:
        merged = _add(merged, other)
    return merged


def _labels(**labels: str) -> str:
    escaped = (v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
               for v in labels.values())  # fmt: skip
    return "{" + ",".join(f'{k}="{v}"' for k, v in zip(labels, escaped, strict=True)) + "}"


def _family(lines: list[str], name: str, kind: str, text: str) -> None:
    lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]


def render_metrics(snap: JsonObj) -> str:
    """Prometheus text exposition (format 0.0.4) of a snapshot."""
    dep = snap["deployment"]
    revs: dict[str, JsonObj] = snap["revisions"]
    out: list[str] = []
    name = "loopline_router_requests_total"
    _family(out, name, "counter", "Requests answered, by revision and status class.")
    for rev, r in revs.items():
        for i, count in enumerate(r["codes"]):
            if count:
                labels = _labels(deployment=dep, revision=rev, label=r["label"], code=f"{i + 1}xx")
                out.append(f"{name}{labels} {count}")
    name = "loopline_router_request_duration_seconds"
    _family(out, name, "histogram", "Time from dispatch to the end of the answer, by revision.")
    for rev, r in revs.items():
        cumulative = 0
        for bound, count in zip([*BOUNDS, math.inf], r["buckets"], strict=True):
            cumulative += count
            le = "+Inf" if bound == math.inf else repr(bound)
            labels = _labels(deployment=dep, revision=rev, label=r["label"], le=le)
            out.append(f"{name}_bucket{labels} {cumulative}")
        labels = _labels(deployment=dep, revision=rev, label=r["label"])
        out += [f"{name}_sum{labels} {r['sum']!r}", f"{name}_count{labels} {cumulative}"]
    name = "loopline_router_in_flight"
    _family(out, name, "gauge", "Requests (and mirrored copies) being answered, by revision.")
    for rev, r in revs.items():
        out.append(f"{name}{_labels(deployment=dep, revision=rev, label=r['label'])} "
                   f"{r['inFlight']}")  # fmt: skip
    gauges = (
        ("loopline_router_held_requests", "gauge", "held",
         "Requests waiting for a backend (scale from zero)."),
        ("loopline_router_held_requests_total", "counter", "heldTotal",
         "Requests that had to wait for a backend."),
        ("loopline_router_retries_total", "counter", "retries",
         "Requests retried on another backend after a failed connection."),
        ("loopline_router_failed_total", "counter", "failed",
         "Requests answered 502: the retry failed too."),
        ("loopline_router_no_backend_total", "counter", "noBackend",
         "Requests answered 503: no ready backend (or the hold expired)."),
    )  # fmt: skip
    for name, kind, key, text in gauges:
        _family(out, name, kind, text)
        out.append(f"{name}{_labels(deployment=dep)} {snap[key]}")
    for field in ("sent", "compared", "agreed", "errors", "dropped"):
        name = f"loopline_router_mirror_{field}_total"
        _family(out, name, "counter", f"Mirrored copies: {field} (see docs/deploy.md).")
        for rev, c in snap["mirror"].items():
            out.append(f"{name}{_labels(deployment=dep, revision=rev)} {c[field]}")
    return "\n".join(out) + "\n"
