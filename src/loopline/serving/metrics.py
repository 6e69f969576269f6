"""Prometheus metrics of one server, cheap on the hot path and mergeable across workers.

Each worker keeps plain dictionaries (no locks: everything runs on the event loop thread,
except the log writer's counters, which are read racily by design). ``snapshot()`` is a JSON
document; the ``/metrics`` endpoint of any worker merges the snapshots that the other
workers of the same server publish every second into a shared directory, so a scrape through
the shared port sees the whole server.
"""

from __future__ import annotations

import bisect
import json
import math
import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)

Labels = tuple[str, ...]


class Metric:
    """A named family: counter, gauge or histogram, with a fixed tuple of label names."""

    def __init__(
        self,
        name: str,
        kind: str,
        help_text: str,
        labels: Sequence[str],
        buckets: Sequence[float] = (),
    ) -> None:
        self.name = name
        self.kind = kind
        self.help = help_text
        self.labels = tuple(labels)
        self.buckets = tuple(float(b) for b in buckets)
        self.values: dict[Labels, float] = {}
        self.hist: dict[Labels, list[float]] = {}  # bucket counts..., sum, count

    def inc(self, labels: Labels, amount: float = 1.0) -> None:
        self.values[labels] = self.values.get(labels, 0.0) + amount

    def set(self, labels: Labels, value: float) -> None:
        self.values[labels] = value

    def observe(self, labels: Labels, value: float) -> None:
        h = self.hist.get(labels)
        if h is None:
            h = self.hist[labels] = [0.0] * (len(self.buckets) + 2)
        i = bisect.bisect_left(self.buckets, value)
        if i < len(self.buckets):  # above the last bound counts only in +Inf (= count)
            h[i] += 1.0
        h[-2] += value
        h[-1] += 1.0

    def snapshot(self) -> dict[str, Any]:
        series: list[Any] = [[list(k), v] for k, v in self.values.items()]
        series += [[list(k), v] for k, v in self.hist.items()]
        return {"kind": self.kind, "series": series}


class Metrics:
    """The metric families of one worker, rendered in the Prometheus text format 0.0.4."""

    def __init__(self) -> None:
        self.families: dict[str, Metric] = {}
        self.requests = self._add(
            "loopline_requests_total",
            "counter",
            "Inference requests by model, version, protocol and HTTP status.",
            ("model", "version", "protocol", "code"),
        )
        self.latency = self._add(
            "loopline_request_duration_seconds",
            "histogram",
            "Inference request latency in seconds (body read to response).",
            ("model", "version"),
            LATENCY_BUCKETS,
        )
        self.in_flight = self._add(
            "loopline_requests_in_flight",
            "gauge",
            "Inference requests being answered now.",
            ("model", "version"),
        )
        self.batch_size = self._add(
            "loopline_batch_size_rows",
            "histogram",
            "Rows per batch sent to the model by the adaptive batcher.",
            ("model", "version"),
            BATCH_BUCKETS,
        )
        self.queue_delay = self._add(
            "loopline_batch_queue_delay_seconds",
            "histogram",
            "Time a request waited in the batch queue before its batch started.",
            ("model", "version"),
            LATENCY_BUCKETS,
        )
        self.batch_duration = self._add(
            "loopline_batch_duration_seconds",
            "histogram",
            "Time of one model call on a batch (the latency model's input).",
            ("model", "version"),
            LATENCY_BUCKETS,
        )
        self.shed = self._add(
            "loopline_batch_shed_total",
            "counter",
            "Requests refused with 503 because the batch queue was full or too slow.",
            ("model", "version", "reason"),
        )
        self.ready = self._add(
            "loopline_model_ready",
            "gauge",
            "1 when the model is loaded and warmed up, else 0.",
            ("model", "version"),
        )
        self.log_written = self._add(
            "loopline_prediction_log_rows_total",
            "counter",
            "Prediction and feedback rows written to Parquet segments.",
            ("stream",),
        )
        self.log_dropped = self._add(
            "loopline_prediction_log_dropped_total",
            "counter",
            "Rows dropped because the log buffer was full or a write failed.",
            ("stream",),
        )
        self.log_rotated = self._add(
            "loopline_prediction_log_segments_deleted_total",
            "counter",
            "Log segments deleted by rotation, by reason (size: over max_bytes; age: older "
            "than max_age).",
            ("reason",),
        )
        self.send_failed = self._add(
            "loopline_response_send_failures_total",
            "counter",
            "Responses that could not be sent (the connection was gone or a header invalid).",
            (),
        )

    def _add(
        self,
        name: str,
        kind: str,
        help_text: str,
        labels: Sequence[str],
        buckets: Sequence[float] = (),
    ) -> Metric:
        metric = Metric(name, kind, help_text, labels, buckets)
        self.families[name] = metric
        return metric

    def snapshot(self) -> dict[str, Any]:
        return {name: m.snapshot() for name, m in self.families.items()}

    def render(self, others: Iterable[dict[str, Any]] = ()) -> bytes:
        """Prometheus text for this worker's metrics plus the given snapshots of others."""
        merged: dict[str, dict[Labels, Any]] = {}
        for snap in [self.snapshot(), *others]:
            for name, data in snap.items():
                if name not in self.families:
                    continue
                into = merged.setdefault(name, {})
                for labels, value in data.get("series", []):
                    key = tuple(labels)
                    if isinstance(value, list):
                        old = into.get(key)
                        into[key] = (
                            value
                            if old is None
                            else [a + b for a, b in zip(old, value, strict=False)]
                        )
                    elif self.families[name].kind == "gauge" and name == "loopline_model_ready":
                        into[key] = min(into.get(key, value), value)
                    else:
                        into[key] = into.get(key, 0.0) + value
        lines: list[str] = []
        for name, metric in self.families.items():
            lines.append(f"# HELP {name} {metric.help}")
            lines.append(f"# TYPE {name} {metric.kind}")
            for key, value in sorted(merged.get(name, {}).items()):
                lab = ",".join(
                    f'{n}="{_escape(v)}"' for n, v in zip(metric.labels, key, strict=False)
                )
                if metric.kind != "histogram":
                    labelled = f"{name}{{{lab}}}" if lab else name
                    lines.append(f"{labelled} {_num(value)}")
                    continue
                cum = 0.0
                for bound, count in zip(metric.buckets, value, strict=False):
                    cum += count
                    lines.append(f'{name}_bucket{{{lab},le="{_num(bound)}"}} {_num(cum)}')
                lines.append(f'{name}_bucket{{{lab},le="+Inf"}} {_num(value[-1])}')
                lines.append(f"{name}_sum{{{lab}}} {_num(value[-2])}")
                lines.append(f"{name}_count{{{lab}}} {_num(value[-1])}")
        return ("\n".join(lines) + "\n").encode()


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _num(value: float) -> str:
    if math.isinf(value):
        return "+Inf"
    return repr(int(value)) if float(value).is_integer() else repr(float(value))


def publish_snapshot(directory: Path, worker: str, snapshot: dict[str, Any]) -> None:
    """Atomically write a worker's snapshot as ``<directory>/<worker>.json``."""
    fd, tmp = tempfile.mkstemp(prefix=f".{worker}.", dir=directory)
    with os.fdopen(fd, "w") as f:
        json.dump(snapshot, f)
    os.replace(tmp, directory / f"{worker}.json")


def read_snapshots(directory: Path, exclude: str) -> list[dict[str, Any]]:
    """Snapshots published by the other workers (unreadable files are skipped)."""
    out = []
    for p in directory.glob("*.json"):
        if p.stem == exclude:
            continue
        try:
            out.append(json.loads(p.read_text()))
        except (OSError, ValueError):
            continue
    return out
