"""Production traffic for the continuous-training demo: real taxi trips sent to the deployment
as V2 requests, and each trip's ground truth (did the rider tip?) posted back as feedback a
few seconds later, as a label would arrive after the ride.

Bounded: it stops by itself after ``limit`` seconds, talks only to the router's loopback URL,
and counts every outcome (answers per model version, failed requests, failed feedback posts).
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field

import httpx

FAILED = ("HTTP", "Connect", "Read", "Write", "Remote", "Pool", "Timeout")


def v2_body(rows: list[dict[str, str]], request_id: str) -> dict[str, object]:
    """Trips as one V2 inference request with its own id (the labels' key: id and row)."""

    def tensor(name: str, datatype: str, values: list[object]) -> dict[str, object]:
        return {"name": name, "shape": [len(values)], "datatype": datatype, "data": values}

    return {"id": request_id, "inputs": [
        tensor("distance", "FP64", [float(r["distance"]) for r in rows]),
        *(tensor(c, "BYTES", [r[c] for r in rows]) for c in ("company", "local", "dow", "month")),
        tensor("hour", "INT64", [int(r["hour"]) for r in rows]),
    ]}  # fmt: skip


@dataclass
class Counts:
    versions: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    labels_sent: int = 0
    label_failures: int = 0

    trips: int = 0
    last_request: dict[str, str] = field(default_factory=dict)  # version → a request it answered

    @property
    def requests(self) -> int:
        return sum(self.versions.values()) + sum(self.failures.values())


class LabelledTraffic:
    """``threads`` closed-loop clients paced to ``rate`` requests/s in all, each request
    carrying ``batch`` trips of ``rows`` (in order, cycling), and one thread posting the
    trips' labels ``label_delay`` seconds after each answer."""

    def __init__(
        self,
        url: str,
        rows: list[dict[str, str]],
        *,
        rate: float = 10.0,
        batch: int = 4,
        threads: int = 2,
        label_delay: float = 3.0,
        limit: float = 420.0,
    ) -> None:
        self.url, self.rows, self.limit = url, rows, limit
        self.rate, self.label_delay, self.batch = rate, label_delay, batch
        self.counts = Counts()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._labels: deque[tuple[float, str, list[str]]] = deque()
        self._threads = [
            threading.Thread(target=self._send, args=(i, threads), daemon=True)
            for i in range(threads)
        ] + [threading.Thread(target=self._feedback, daemon=True)]

    def __enter__(self) -> LabelledTraffic:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(15)

    def snapshot(self) -> Counts:
        with self._lock:
            return Counts(
                Counter(self.counts.versions), Counter(self.counts.failures),
                self.counts.labels_sent, self.counts.label_failures, self.counts.trips,
                dict(self.counts.last_request),
            )  # fmt: skip

    def _send(self, offset: int, stride: int) -> None:
        start = time.monotonic()
        deadline = start + self.limit
        period = stride / self.rate
        with httpx.Client(base_url=self.url, timeout=10) as client:
            i, sent = offset * self.batch, 0
            while not self._stop.is_set() and time.monotonic() < deadline:
                trips = [self.rows[(i + k) % len(self.rows)] for k in range(self.batch)]
                request_id = f"trips-{offset}-{sent}"
                i += stride * self.batch
                sent += 1
                try:
                    r = client.post("/v2/models/taxi/infer", json=v2_body(trips, request_id))
                    outcome = (
                        str(r.json().get("model_version"))
                        if r.status_code == 200
                        else f"HTTP {r.status_code}"
                    )
                except httpx.HTTPError as exc:
                    outcome = type(exc).__name__
                with self._lock:
                    if outcome.startswith(FAILED):
                        self.counts.failures[outcome] += 1
                    else:
                        self.counts.versions[f"taxi/{outcome}"] += 1
                        self.counts.trips += len(trips)
                        self.counts.last_request[f"taxi/{outcome}"] = request_id
                        labels = [t["tip"] for t in trips]
                        self._labels.append((time.monotonic(), request_id, labels))
                wait = start + sent * period - time.monotonic()
                if wait > 0:
                    self._stop.wait(wait)

    def _feedback(self) -> None:
        with httpx.Client(base_url=self.url, timeout=10) as client:
            while True:
                stopping = self._stop.wait(1.0)
                due = time.monotonic() - (0 if stopping else self.label_delay)
                batch: list[dict[str, object]] = []
                n = 0
                with self._lock:
                    while self._labels and self._labels[0][0] <= due and len(batch) < 200:
                        _, request_id, labels = self._labels.popleft()
                        batch.append({"request_id": request_id, "labels": labels})
                        n += len(labels)
                if batch:
                    try:
                        r = client.post("/v2/models/taxi/feedback", json={"feedback": batch})
                        ok = r.status_code < 300
                    except httpx.HTTPError:
                        ok = False
                    with self._lock:
                        if ok:
                            self.counts.labels_sent += n
                        else:
                            self.counts.label_failures += n
                if stopping and not self._labels:
                    return
