"""The Runs screens' data: list rows, two runs compared, a step's log and why it ran.

Pure builders over :class:`~loopline.pipeline.runs.RunRecord` values (the same records
``loopline runs show`` prints) plus the few store reads they need, done by
:class:`~loopline.ui.reads.ConsoleReads`:

- :func:`run_row` — one row of the runs list from the run's context and how many of its
  executions are in each state (one query for the whole page; no events, metrics or
  artifacts are read for a list).
- :func:`compare` — two runs side by side: parameters, per-step status, cache hit, duration,
  output digests, metrics and the cache-key parts that differ (``loopline runs diff``'s
  answer, cell by cell); every row says whether it differs.
- :func:`read_log` — the last lines of a step's log file, bounded in lines and bytes (the
  template escapes it).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import unquote, urlparse

from loopline.errors import InvalidInputError, shown
from loopline.metadata.entities import Context, ExecutionState
from loopline.pipeline.cache import explain
from loopline.pipeline.runs import RunRecord, StepRecord
from loopline.types import Json

LOG_LINES = 200  # the default tail of a step's log on the run page
MAX_LOG_LINES = 5000
MAX_LOG_BYTES = 256 * 1024
MAX_VALUE_CHARS = 200


@dataclass(frozen=True, slots=True)
class RunRow:
    """One row of the runs list."""

    id: int
    name: str
    pipeline: str
    status: str
    started_at: str | None
    ended_at: str | None
    steps: int
    cached: int


def run_row(run: Context, states: Mapping[ExecutionState, int]) -> RunRow:
    """A run's list row from its context and its executions counted by state."""
    props = run.properties
    return RunRow(
        id=int(run.id),
        name=run.name,
        pipeline=str(props.get("pipeline", "")),
        status=str(props.get("status", "unknown")),
        started_at=_text(props.get("started_at")),
        ended_at=_text(props.get("ended_at")),
        steps=sum(states.values()),
        cached=states.get(ExecutionState.CACHED, 0),
    )


# ---- compare ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DiffRow:
    """One compared value: its label, how each run shows it, and whether they differ."""

    label: str
    a: str
    b: str

    @property
    def differs(self) -> bool:
        return self.a != self.b


@dataclass(frozen=True, slots=True)
class StepDiff:
    """One step in both runs (``only_in`` names the run that has it when the other has not)."""

    name: str
    rows: tuple[DiffRow, ...]  # status, cache, duration, then outputs and metrics
    reasons: tuple[str, ...]  # the cache-key parts that differ, as sentences
    only_in: str | None = None

    @property
    def differs(self) -> bool:
        return self.only_in is not None or bool(self.reasons) or any(r.differs for r in self.rows)


@dataclass(frozen=True, slots=True)
class Comparison:
    a: RunRecord
    b: RunRecord
    summary: tuple[DiffRow, ...]
    parameters: tuple[DiffRow, ...]
    steps: tuple[StepDiff, ...]

    @property
    def differences(self) -> int:
        rows = [*self.summary, *self.parameters]
        return sum(r.differs for r in rows) + sum(s.differs for s in self.steps)


def compare(a: RunRecord, b: RunRecord, digests: Mapping[int, str | None]) -> Comparison:
    """Runs ``a`` and ``b`` side by side; ``digests`` maps output artifact ids to their
    content digests (ids it lacks show as their id)."""
    summary = (
        DiffRow("pipeline", a.pipeline, b.pipeline),
        DiffRow("status", a.status, b.status),
        DiffRow("duration", _run_duration(a), _run_duration(b)),
        DiffRow("cache hits", _hits(a.steps), _hits(b.steps)),
    )
    params = tuple(
        DiffRow(k, _value(a.parameters, k), _value(b.parameters, k))
        for k in sorted(set(a.parameters) | set(b.parameters))
    )
    names = [s.name for s in a.steps]
    names += [s.name for s in b.steps if s.name not in set(names)]
    by_a = {s.name: s for s in a.steps}
    by_b = {s.name: s for s in b.steps}
    steps = []
    for name in names:
        sa, sb = by_a.get(name), by_b.get(name)
        if sa is None or sb is None:
            only = a if sb is None else b
            steps.append(StepDiff(name, (), (), only_in=f"run {only.id}"))
            continue
        steps.append(_step_diff(sa, sb, digests))
    return Comparison(a, b, summary, params, tuple(steps))


def _step_diff(sa: StepRecord, sb: StepRecord, digests: Mapping[int, str | None]) -> StepDiff:
    rows = [
        DiffRow("status", sa.status, sb.status),
        DiffRow("cache", "hit" if sa.cached else "miss", "hit" if sb.cached else "miss"),
        DiffRow("duration", _run_duration(sa), _run_duration(sb)),
    ]
    for port in sorted(set(sa.outputs) | set(sb.outputs)):
        rows.append(DiffRow(f"output {port}", _digest(sa.outputs.get(port), digests),
                            _digest(sb.outputs.get(port), digests)))  # fmt: skip
    for key in sorted(set(sa.metrics) | set(sb.metrics)):
        rows.append(DiffRow(f"metric {key}", _metric(sa.metrics.get(key)),
                            _metric(sb.metrics.get(key))))  # fmt: skip
    # A cache hit records the key parts of the execution it reused, so the reasons compare
    # what each run's step was made from, hit or not.
    reasons = tuple(explain(sa.properties, sb.properties))
    return StepDiff(sa.name, tuple(rows), reasons)


def compared_ids(values: Sequence[str]) -> tuple[int, int]:
    """The two run ids of ``?runs=A,B`` (or ``?runs=A&runs=B``).

    Raises:
        InvalidInputError: not exactly two positive integer ids (the message names ``runs``).
    """
    ids = [v.strip() for value in values for v in value.split(",") if v.strip()]
    if len(ids) != 2 or not all(i.isdigit() and 0 < len(i) <= 18 for i in ids):
        raise InvalidInputError(
            f"runs = {shown(','.join(ids))} is invalid: compare takes two run ids, "
            "e.g. ?runs=12,15 (tick two runs on the runs page)."
        )
    return int(ids[0]), int(ids[1])


# ---- logs -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StepLog:
    """The tail of a step's log: ``text`` is its last ``lines`` lines (or fewer), ``note``
    says why there is nothing to show."""

    uri: str | None
    text: str
    lines: int
    truncated: bool
    note: str = ""


def log_lines(value: str | None) -> int:
    """The ``tail`` query parameter: how many log lines to show.

    Raises:
        InvalidInputError: not an integer in 1…:data:`MAX_LOG_LINES` (names ``tail``).
    """
    if value is None or value == "":
        return LOG_LINES
    if not value.isdigit() or not 1 <= int(value) <= MAX_LOG_LINES:
        raise InvalidInputError(
            f"tail = {shown(value)} is invalid: it is how many log lines to show, "
            f"from 1 to {MAX_LOG_LINES}."
        )
    return int(value)


def read_log(uri: str | None, lines: int) -> StepLog:
    """The last ``lines`` lines of the log file at ``uri`` (a path or ``file://`` URL),
    reading at most :data:`MAX_LOG_BYTES` from its end; undecodable bytes are replaced."""
    if not uri:
        return StepLog(uri, "", lines, False, "This step recorded no log file.")
    parsed = urlparse(uri)
    if parsed.scheme not in ("", "file"):
        return StepLog(uri, "", lines, False, f"The log is at {uri}, not a local file.")
    path = Path(unquote(parsed.path) if parsed.scheme == "file" else uri)
    try:
        with path.open("rb") as f:
            size = f.seek(0, 2)
            start = max(0, size - MAX_LOG_BYTES)
            f.seek(start)
            data = f.read()
    except FileNotFoundError:
        return StepLog(uri, "", lines, False, f"The log file {path} does not exist (any more).")
    except OSError as exc:
        return StepLog(uri, "", lines, False, f"The log file {path} cannot be read: {exc}.")
    kept = data.decode(errors="replace").splitlines()
    if start > 0 and kept:
        kept = kept[1:]  # the first line was cut by the byte bound
    truncated = start > 0 or len(kept) > lines
    return StepLog(uri, "\n".join(kept[-lines:]), lines, truncated)


# ---- values -----------------------------------------------------------------------------


def _text(value: Json) -> str | None:
    return None if value is None else str(value)


def _value(values: Mapping[str, Json], key: str) -> str:
    if key not in values:
        return "—"
    text = json.dumps(values[key], sort_keys=True, separators=(",", ":"), default=str)
    return text if len(text) <= MAX_VALUE_CHARS else text[: MAX_VALUE_CHARS - 1] + "…"


def _metric(value: float | None) -> str:
    return "—" if value is None else f"{value:.6g}"


def _digest(artifact_id: int | None, digests: Mapping[int, str | None]) -> str:
    if artifact_id is None:
        return "—"
    digest = digests.get(artifact_id)
    return f"artifact {artifact_id}" if not digest else digest.split(":", 1)[-1][:16]


def _hits(steps: Sequence[StepRecord]) -> str:
    return f"{sum(s.cached for s in steps)}/{len(steps)}"


def _run_duration(record: RunRecord | StepRecord) -> str:
    return _duration(record.started_at, record.ended_at)


def _duration(start: str | None, end: str | None) -> str:
    if not start or not end:
        return "—"
    try:
        seconds = (_when(end) - _when(start)).total_seconds()
    except ValueError:
        return "—"
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)} min {rest:02.0f} s"


def _when(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
