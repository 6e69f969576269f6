"""Explicit options of the model server (the composition root fills them from settings/CLI)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from loopline.errors import InvalidInputError
from loopline.serving.limits import HttpLimits
from loopline.types import check_name

if TYPE_CHECKING:
    from loopline.bundle import LoadedModel
    from loopline.serving.repository import RepositoryOptions


@dataclass(frozen=True, slots=True)
class BatchingOptions:
    """Adaptive batching limits.

    Attributes:
        max_batch_size: hard cap on rows per model call.
        max_latency_ms: a request is refused (503 + Retry-After) rather than queued when its
            projected completion exceeds this, and shed if it has waited this long.
        max_queue_rows: bound on queued rows; beyond it requests get 503 at once.
        inline_below_ms: batches whose model call costs the event loop less than this run on
            it (no thread hand-off): a call in the worker thread is charged its own CPU time,
            a call on the loop the wall time it held the loop; slower models run in a worker
            thread so parsing overlaps.
    """

    max_batch_size: int = 1024
    max_latency_ms: float = 1000.0
    max_queue_rows: int = 4096
    inline_below_ms: float = 1.0

    def __post_init__(self) -> None:
        if self.max_batch_size < 1 or self.max_queue_rows < 1 or self.max_latency_ms <= 0:
            raise InvalidInputError(
                f"Batching options {self} are invalid: max_batch_size and max_queue_rows must "
                "be ≥ 1 and max_latency_ms > 0."
            )


@dataclass(frozen=True, slots=True)
class LogOptions:
    """Prediction logging: where, how much, how often segments are flushed, how long kept.

    Attributes:
        directory: the log directory (``predictions/`` and ``feedback/`` under it).
        sample_rate: share of requests logged.
        buffer_rows: rows buffered at most; beyond it records are dropped and counted.
        buffer_bytes: bytes of logged arrays (and string characters) buffered at most, per
            stream and worker; beyond it records are dropped and counted, never waited for.
        flush_rows, flush_seconds: a segment is written when either is reached.
        max_bytes: the segments of the whole directory (both streams, every model and
            version, every writer) total at most this; the oldest go first.
        max_age: segments older than this many seconds are deleted.
        rotate_seconds: how often the writer checks both bounds (off the request path, and
            once at start); between checks the directory may exceed ``max_bytes`` by what
            is written meanwhile.
    """

    directory: Path
    sample_rate: float = 1.0
    buffer_rows: int = 100_000
    buffer_bytes: int = 64 << 20  # 64 MiB
    flush_rows: int = 20_000
    flush_seconds: float = 5.0
    max_bytes: int = 1 << 30  # 1 GiB
    max_age: float = 30 * 86_400.0  # 30 days
    rotate_seconds: float = 60.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.sample_rate <= 1.0:
            raise InvalidInputError(
                f"Log sample rate {self.sample_rate} must be between 0 and 1 (1 = every request)."
            )
        if self.buffer_rows < 1 or self.flush_rows < 1 or self.flush_seconds <= 0:
            raise InvalidInputError(
                "Log buffer_rows and flush_rows must be ≥ 1 and flush_seconds > 0."
            )
        if isinstance(self.buffer_bytes, bool) or not isinstance(self.buffer_bytes, int):
            raise InvalidInputError(
                f"Log buffer_bytes {self.buffer_bytes!r} must be an integer number of bytes."
            )
        if self.buffer_bytes < 1:
            raise InvalidInputError(
                f"Log buffer_bytes {self.buffer_bytes} must be ≥ 1 (the in-memory buffer's "
                "size bound per stream and worker)."
            )
        if isinstance(self.max_bytes, bool) or not isinstance(self.max_bytes, int):
            raise InvalidInputError(
                f"Log max_bytes {self.max_bytes!r} must be an integer number of bytes."
            )
        if self.max_bytes < 1:
            raise InvalidInputError(
                f"Log max_bytes {self.max_bytes} must be ≥ 1 (the log directory's size bound)."
            )
        if not self.max_age > 0 or not self.rotate_seconds > 0:
            raise InvalidInputError(
                f"Log max_age ({self.max_age!r} s) and rotate_seconds "
                f"({self.rotate_seconds!r} s) must be > 0."
            )


@dataclass(frozen=True, slots=True)
class ServerOptions:
    """Options of :func:`loopline.serving.create_app`.

    Attributes:
        max_body_bytes: larger request bodies get 413.
        http: the HTTP connection limits (head and URL size, deadlines, connections,
            pipelining) of each worker.
        batching: limits used by every model served with ``batching=True``.
        log: prediction/feedback logging, or None for off.
        metrics_dir: shared directory where workers publish metric snapshots (None: this
            worker's metrics only).
        worker_id: this worker's name in ``metrics_dir``.
        server_name: reported by ``GET /v2``.
        repository: the model repository extension (its source, token and the state folder
            the workers share); None: the repository index only, no load or unload.
    """

    max_body_bytes: int = 8 * 1024 * 1024
    http: HttpLimits = field(default_factory=HttpLimits)
    batching: BatchingOptions = field(default_factory=BatchingOptions)
    log: LogOptions | None = None
    metrics_dir: Path | None = None
    worker_id: str = "0"
    server_name: str = "loopline"
    repository: RepositoryOptions | None = None


@dataclass(frozen=True, slots=True, eq=False)
class ServedModel:
    """One model version the server answers for.

    ``version`` is the registry version ("3") or another label for a directory model;
    ``aliases`` are extra names for it in versioned paths (``/versions/champion``).
    The first served model of a name answers the unversioned paths unless another one of
    that name has ``default=True``.
    """

    name: str
    version: str
    model: LoadedModel
    aliases: tuple[str, ...] = ()
    batching: bool = False
    default: bool = False

    def __post_init__(self) -> None:
        check_name("Model", self.name)
        check_name("Version", self.version)
        for alias in self.aliases:
            check_name("Alias", alias)
