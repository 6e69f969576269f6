"""A bounded load generator: a thread pool of httpx clients hitting a router."""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class LoadReport:
    ok: int = 0
    failed: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    versions: Counter[str] = field(default_factory=Counter)
    failure_times: list[float] = field(default_factory=list, repr=False)
    failure_starts: list[float] = field(default_factory=list, repr=False)
    """When each failed request was sent (``time.monotonic()``)."""

    @property
    def downtime(self) -> float:
        """Seconds between the first and the last failed request (0 if none failed)."""
        if not self.failure_times:
            return 0.0
        return max(self.failure_times) - min(self.failure_times)


class LoadGenerator:
    """``threads`` clients POST ``body`` (with ``headers``) to ``url`` until stopped (at most
    ``max_seconds``), each pausing ``pause`` s between requests."""

    def __init__(
        self,
        url: str,
        body: dict[str, Any],
        threads: int = 3,
        max_seconds: float = 120.0,
        pause: float = 0.01,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.url = url
        self.body = body
        self.headers = headers
        self.threads = threads
        self.max_seconds = max_seconds
        self.pause = pause  # between requests of one client: leaves CPU for the rollout
        self.report = LoadReport()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._workers = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self) -> None:
        deadline = time.monotonic() + self.max_seconds
        with httpx.Client(timeout=10.0) as client:
            while not self._stop.is_set() and time.monotonic() < deadline:
                sent = time.monotonic()
                try:
                    r = client.post(self.url, json=self.body, headers=self.headers)
                    problem = None if r.status_code == 200 else f"HTTP {r.status_code}"
                    version = r.json().get("model_version") if problem is None else None
                except httpx.HTTPError as exc:
                    problem, version = type(exc).__name__, None
                with self._lock:
                    if problem is None:
                        self.report.ok += 1
                        self.report.versions[str(version)] += 1
                    else:
                        self.report.failed += 1
                        self.report.errors[problem] += 1
                        self.report.failure_times.append(time.monotonic())
                        self.report.failure_starts.append(sent)
                time.sleep(self.pause if problem is None else 0.02)

    def versions(self) -> Counter[str]:
        """A copy of the answering versions so far (the difference of two copies is what
        answered in between)."""
        with self._lock:
            return Counter(self.report.versions)

    def __enter__(self) -> LoadGenerator:
        for w in self._workers:
            w.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for w in self._workers:
            w.join(15)
