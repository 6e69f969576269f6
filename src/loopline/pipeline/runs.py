"""Reading runs back: list, show, diff two runs, and explain why a step ran again.

A run is a metadata Context of type ``run``; its steps are the executions associated with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from loopline.errors import NotFoundError
from loopline.metadata.entities import Context, EventType, Execution, ExecutionState
from loopline.metadata.store import MetadataStore
from loopline.pipeline.cache import explain
from loopline.types import Json

PREVIOUS_PAGE = 20


@dataclass(frozen=True, slots=True)
class StepRecord:
    """One step of a recorded run."""

    name: str
    status: str
    cached: bool
    execution_id: int
    error: str | None
    started_at: str | None
    ended_at: str | None
    inputs: Mapping[str, int]
    outputs: Mapping[str, int]
    metrics: Mapping[str, float]
    properties: Mapping[str, Json] = field(repr=False)

    def to_json(self) -> dict[str, Json]:
        """The step as JSON for ``--json`` output."""
        return {
            "name": self.name,
            "status": self.status,
            "cached": self.cached,
            "execution_id": self.execution_id,
            "error": self.error,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "inputs": dict(self.inputs),
            "outputs": dict(self.outputs),
            "metrics": dict(self.metrics),
        }


@dataclass(frozen=True, slots=True)
class RunRecord:
    """A recorded run and its steps."""

    id: int
    name: str
    pipeline: str
    status: str
    parameters: Mapping[str, Json]
    started_at: str | None
    ended_at: str | None
    steps: tuple[StepRecord, ...]

    def to_json(self) -> dict[str, Json]:
        """The run as JSON for ``--json`` output."""
        return {
            "id": self.id,
            "name": self.name,
            "pipeline": self.pipeline,
            "status": self.status,
            "parameters": dict(self.parameters),
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "steps": [s.to_json() for s in self.steps],
        }

    def step(self, name: str) -> StepRecord:
        """The step called ``name``. Raises NotFoundError listing the steps."""
        for s in self.steps:
            if s.name == name:
                return s
        raise NotFoundError(
            f"Run {self.name!r} has no step {name!r}. Steps: "
            f"{', '.join(s.name for s in self.steps)}."
        )


class RunHistory:
    """Queries over recorded runs."""

    def __init__(self, metadata: MetadataStore) -> None:
        self.metadata = metadata

    def find(self, ref: str) -> Context:
        """A run by id (``12``), name, or ``latest`` (optionally ``latest:PIPELINE``).

        Raises:
            NotFoundError: no such run; the message says how to list runs.
        """
        md = self.metadata
        if ref.startswith("latest"):
            pipeline = ref.partition(":")[2] or None
            for ctx in md.list_contexts(type_name="run"):
                if pipeline is None or ctx.properties.get("pipeline") == pipeline:
                    return ctx
            raise NotFoundError(
                f"There are no runs{' of ' + repr(pipeline) if pipeline else ''} yet; start "
                "one with: loopline run PIPELINE_FILE"
            )
        if ref.isdigit():
            try:
                by_id: Context | None = md.get_context(int(ref))
            except NotFoundError:
                by_id = None
            if by_id is not None and by_id.type_name == "run":
                return by_id
        found = md.find_context("run", ref)
        if found is None:
            raise NotFoundError(f"No run {ref!r}. List runs with: loopline runs list")
        return found

    def recent(self, *, pipeline: str | None = None, limit: int = 20) -> list[RunRecord]:
        """Newest runs first, with their steps."""
        out: list[RunRecord] = []
        for ctx in self.metadata.list_contexts(type_name="run"):
            if pipeline is not None and ctx.properties.get("pipeline") != pipeline:
                continue
            out.append(self.show(ctx))
            if len(out) >= limit:
                break
        return out

    def show(self, run: Context | str) -> RunRecord:
        """One run with its steps in the order they started."""
        ctx = self.find(run) if isinstance(run, str) else run
        md = self.metadata
        executions = md.list_executions(context_id=ctx.id, newest_first=False)
        events = md.get_events(execution_ids=[e.id for e in executions])
        ins: dict[int, dict[str, int]] = {}
        outs: dict[int, dict[str, int]] = {}
        for ev in events:
            target = ins if ev.type is EventType.INPUT else outs
            target.setdefault(ev.execution_id, {})[ev.port] = ev.artifact_id
        steps = tuple(
            _record(e, ins.get(e.id, {}), outs.get(e.id, {}), _last_metrics(md, e))
            for e in executions
        )
        props = ctx.properties
        params = props.get("parameters")
        return RunRecord(
            id=ctx.id,
            name=ctx.name,
            pipeline=str(props.get("pipeline", "")),
            status=str(props.get("status", "unknown")),
            parameters=params if isinstance(params, dict) else {},
            started_at=_str(props.get("started_at")),
            ended_at=_str(props.get("ended_at")),
            steps=steps,
        )

    def diff(self, a: str, b: str) -> dict[str, Json]:
        """What differs between two runs: parameters, and per step code, parameters, inputs,
        metrics and status."""
        ra, rb = self.show(a), self.show(b)
        steps: dict[str, Json] = {}
        names = [s.name for s in ra.steps] + [
            s.name for s in rb.steps if s.name not in {x.name for x in ra.steps}
        ]
        for name in names:
            sa = next((s for s in ra.steps if s.name == name), None)
            sb = next((s for s in rb.steps if s.name == name), None)
            if sa is None or sb is None:
                steps[name] = {"only_in": ra.name if sb is None else rb.name}
                continue
            entry: dict[str, Json] = {}
            if _outcome(sa.status) != _outcome(sb.status):
                entry["status"] = [sa.status, sb.status]
            reasons = explain(sa.properties, sb.properties)
            if reasons:
                entry["changes"] = list(reasons)
            metric_diff: dict[str, Json] = {
                k: [sa.metrics.get(k), sb.metrics.get(k)]
                for k in sorted(set(sa.metrics) | set(sb.metrics))
                if sa.metrics.get(k) != sb.metrics.get(k)
            }
            if metric_diff:
                entry["metrics"] = metric_diff
            if entry:
                steps[name] = entry
        params = {
            k: [ra.parameters.get(k), rb.parameters.get(k)]
            for k in sorted(set(ra.parameters) | set(rb.parameters))
            if ra.parameters.get(k) != rb.parameters.get(k)
        }
        return {"a": ra.name, "b": rb.name, "parameters": dict(params), "steps": steps}

    def why(self, run: str, step: str) -> list[str]:
        """Sentences explaining why ``step`` ran (or was reused) in ``run``."""
        record = self.show(run)
        current = self.metadata.get_execution(record.step(step).execution_id)
        props = current.properties
        if current.state is ExecutionState.CACHED:
            return [f"cache hit: reused the outputs of execution {props.get('cached_from')}"]
        if current.state is ExecutionState.CANCELED:
            return [f"did not run: {props.get('error')}"]
        if not props.get("cache_enabled", True):
            return ["caching was disabled for this step or run"]
        previous = self._previous(current)
        if previous is None:
            return ["first run of this step: nothing to reuse"]
        reasons = explain(previous.properties, props)
        if reasons:
            return reasons
        if previous.state is not ExecutionState.COMPLETE:
            return [
                f"the cache key is unchanged, but the last execution with it "
                f"({previous.id}) ended {previous.state.value}, so there was nothing to reuse"
            ]
        return [
            f"the cache key is unchanged, but the outputs of execution {previous.id} are no "
            "longer live (deleted or missing), so the step ran again"
        ]

    def _previous(self, current: Execution) -> Execution | None:
        """The newest earlier execution of the same step, read in keyset pages of
        :data:`PREVIOUS_PAGE` older than ``current`` (a pipeline with 10,000 runs is not
        read whole; the answer is nearly always on the first page)."""
        pipeline = current.properties.get("pipeline")
        ctx = self.metadata.find_context("pipeline", str(pipeline)) if pipeline else None
        after: int | None = current.id
        while after is not None:
            page = self.metadata.list_executions(
                type_name=current.type_name,
                context_id=ctx.id if ctx else None,
                after=after,
                limit=PREVIOUS_PAGE,
            )
            for e in page:
                if e.name == current.name and "cache_parts" in e.properties:
                    return e
            after = page[-1].id if len(page) == PREVIOUS_PAGE else None
        return None


def _record(
    e: Execution, ins: dict[str, int], outs: dict[str, int], metrics: dict[str, float]
) -> StepRecord:
    err = e.properties.get("error")
    return StepRecord(
        name=e.name or e.type_name,
        status=e.state.value,
        cached=e.state is ExecutionState.CACHED,
        execution_id=e.id,
        error=err if isinstance(err, str) else None,
        started_at=e.started_at.isoformat() if e.started_at else None,
        ended_at=e.ended_at.isoformat() if e.ended_at else None,
        inputs=ins,
        outputs=outs,
        metrics=metrics,
        properties=e.properties,
    )


def _last_metrics(md: MetadataStore, e: Execution) -> dict[str, float]:
    source = e.properties.get("cached_from")
    eid = source if isinstance(source, int) else e.id
    values: dict[str, float] = {}
    for m in md.get_metrics(eid):
        values[m.key] = m.value
    return values


def _outcome(status: str) -> str:
    """A cached step succeeded as much as a completed one."""
    return "complete" if status == "cached" else status


def _str(value: Json) -> str | None:
    return value if isinstance(value, str) else None
