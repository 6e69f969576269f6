"""Execute one step of a run: cache lookup, metadata rows, staging, the call, publishing."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from loopline import __version__
from loopline.artifacts.owner import Owner
from loopline.artifacts.store import ArtifactStore
from loopline.errors import LooplineError
from loopline.metadata.entities import (
    Artifact,
    ArtifactState,
    Event,
    EventType,
    ExecutionState,
)
from loopline.metadata.steps import PlannedOutput, StepOutput
from loopline.metadata.store import MetadataStore
from loopline.pipeline.artifact_types import ArtifactType
from loopline.pipeline.cache import cache_key
from loopline.pipeline.context import StepContext
from loopline.pipeline.executor import Invocation, Outcome, invoke
from loopline.pipeline.fingerprint import code_parts, fingerprint
from loopline.pipeline.ports import Input, Output
from loopline.pipeline.results import StepResult
from loopline.pipeline.step import Step
from loopline.types import Json

if TYPE_CHECKING:
    from loopline.bundle import Trust

RETRY_BACKOFF_SECONDS = 0.5
RETRY_BACKOFF_CAP_SECONDS = 30.0


@dataclass(frozen=True)
class RunScope:
    """What every step of one run shares."""

    metadata: MetadataStore
    artifacts: ArtifactStore
    pipeline: str
    run_name: str
    context_ids: tuple[int, ...]
    log_dir: Path
    cache: bool
    owner: Owner
    trust: Trust | None = None  # the operator's, for steps that load a model bundle


class StepExecutor:
    """Runs one step to a terminal state and records everything in the metadata store."""

    def __init__(self, scope: RunScope) -> None:
        self.scope = scope

    def terminal(self, step: Step, state: ExecutionState, reason: str) -> StepResult:
        """Record a step that did not run (CANCELED) or could not start (FAILED)."""
        now = datetime.now(UTC)
        md = self.scope.metadata
        execution = md.put_execution(
            step.component.name,
            name=step.id,
            state=state,
            properties={
                "component": step.component.name,
                "step": step.id,
                "run": self.scope.run_name,
                "pipeline": self.scope.pipeline,
                "error": reason,
            },
            started_at=now,
            contexts=self.scope.context_ids,
        )
        return StepResult(step.id, state, execution.id, False, 0.0, reason, False, {})

    def fail(self, step: Step, reason: str) -> StepResult:
        """Record a step that could not start."""
        return self.terminal(step, ExecutionState.FAILED, reason)

    def execute(
        self, step: Step, params: Mapping[str, Json], inputs: Mapping[str, Artifact | None]
    ) -> StepResult:
        """Run ``step`` with resolved parameter values and input artifacts."""
        started = time.monotonic()
        comp = step.component
        if comp.kind == "resolver":
            return self._resolve(step, params, started)
        parts = code_parts(comp.fn)
        code_fp = fingerprint(parts)
        digests = {p: (a.digest if a is not None else None) for p, a in inputs.items()}
        key = cache_key(
            component=comp.name,
            code_fingerprint=code_fp,
            parameters=params,
            input_digests=digests,
            outputs={p: o.type.type_name for p, o in comp.outputs.items()},
            version=__version__,
        )
        properties: dict[str, Json] = {
            "component": comp.name,
            "step": step.id,
            "run": self.scope.run_name,
            "pipeline": self.scope.pipeline,
            "parameters": dict(params),
            "input_digests": dict(digests),
            "code_parts": dict(parts),
            "code_fingerprint": code_fp,
            "cache_parts": dict(key.parts),
            "cache_enabled": self.scope.cache and step.options.cache,
            "loopline_version": __version__,
        }
        if self.scope.cache and step.options.cache:
            hit = self._cached(step, key.key, properties, inputs, started)
            if hit is not None:
                return hit
        return self._run(step, key.key, properties, params, inputs, started)

    # -- resolvers -----------------------------------------------------------------------

    def _resolve(self, step: Step, params: Mapping[str, Json], started: float) -> StepResult:
        md = self.scope.metadata
        execution = md.put_execution(
            step.component.name,
            name=step.id,
            state=ExecutionState.RUNNING,
            properties={
                "component": step.component.name,
                "step": step.id,
                "run": self.scope.run_name,
                "pipeline": self.scope.pipeline,
                "parameters": dict(params),
                "resolver": True,
                "owner": self.scope.owner.as_dict(),
            },
            started_at=datetime.now(UTC),
            contexts=self.scope.context_ids,
        )
        port = next(iter(step.component.outputs))
        expected = step.component.outputs[port].type
        try:
            found = step.component.fn(md, self.scope.pipeline, **params)
        except Exception as exc:
            return self._failed(step, execution.id, f"{type(exc).__name__}: {exc}", started)
        if found is not None and not (
            isinstance(found, Artifact) and _is_type(found.type_name, expected)
        ):
            return self._failed(
                step,
                execution.id,
                f"resolver returned {found!r}; it must return a {expected.type_name} "
                "Artifact from the metadata store, or None",
                started,
            )
        outputs = [] if found is None else [Event(found.id, execution.id, EventType.OUTPUT, port)]
        md.publish_execution(
            execution.id,
            state=ExecutionState.COMPLETE,
            outputs=outputs,
            properties={"resolved": None if found is None else found.id},
            ended_at=datetime.now(UTC),
        )
        return StepResult(
            step.id,
            ExecutionState.COMPLETE,
            execution.id,
            False,
            time.monotonic() - started,
            None,
            False,
            {port: None if found is None else found.id},
        )

    # -- cache ---------------------------------------------------------------------------

    def _cached(
        self,
        step: Step,
        key: str,
        properties: dict[str, Json],
        inputs: Mapping[str, Artifact | None],
        started: float,
    ) -> StepResult | None:
        md = self.scope.metadata
        previous = md.find_cached_execution(key)
        if previous is None:
            return None
        outs = [e for e in md.get_events(execution_ids=[previous.id]) if e.type is EventType.OUTPUT]
        artifacts = md.get_artifacts([e.artifact_id for e in outs])
        by_id = {a.id: a for a in artifacts}
        if any(not self.scope.artifacts.exists(a.uri) for a in artifacts):
            for a in artifacts:  # bytes vanished behind our back: never reuse them again
                if not self.scope.artifacts.exists(a.uri):
                    md.update_artifact(a.id, state=ArtifactState.DELETED)
            return None
        execution = md.put_execution(
            step.component.name,
            name=step.id,
            state=ExecutionState.CACHED,
            properties={**properties, "cached_from": previous.id},
            started_at=datetime.now(UTC),
            inputs=_input_pairs(inputs),
            outputs=[(e.port, e.artifact_id) for e in sorted(outs, key=lambda e: e.index)],
            contexts=self.scope.context_ids,
        )
        return StepResult(
            step_id=step.id,
            state=ExecutionState.CACHED,
            execution_id=execution.id,
            cached=True,
            seconds=time.monotonic() - started,
            error=None,
            gate=False,
            outputs={e.port: e.artifact_id for e in outs},
            artifacts={e.port: by_id[e.artifact_id] for e in outs if e.artifact_id in by_id},
        )

    # -- a real run ----------------------------------------------------------------------

    def _run(
        self,
        step: Step,
        key: str,
        properties: dict[str, Json],
        params: Mapping[str, Json],
        inputs: Mapping[str, Artifact | None],
        started: float,
    ) -> StepResult:
        md, store = self.scope.metadata, self.scope.artifacts
        log_path = self.scope.log_dir / f"{step.id}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        planned = [
            PlannedOutput(
                port,
                spec.type.type_name,
                # One folder level per step and port ("step.port"), not two: every new folder
                # costs publish an fsync of its parent (docs/artifacts.md).
                store.allocate(
                    spec.type.type_name,
                    f"{self.scope.pipeline}/{self.scope.run_name}/{step.id}.{port}",
                ),
                f"{step.id}.{port}",
            )
            for port, spec in step.component.outputs.items()
        ]
        start = md.start_step(
            step.component.name,
            name=step.id,
            cache_key=key,
            properties={**properties, "owner": self.scope.owner.as_dict()},
            started_at=datetime.now(UTC),
            log_uri=str(log_path),
            inputs=_input_pairs(inputs),
            contexts=self.scope.context_ids,
            outputs=planned,
        )
        execution = start.execution
        rows = {p.port: row for p, row in zip(planned, start.outputs, strict=True)}
        attempts = step.options.retries + 1
        outcome = Outcome()
        published: list[StepOutput] = []
        for attempt in range(1, attempts + 1):
            ctx = StepContext(
                self.scope.run_name, step.id, execution.id, attempt=attempt, trust=self.scope.trust
            )
            if step.options.isolation == "thread":
                ctx.metadata, ctx.artifacts = self.scope.metadata, self.scope.artifacts
            outcome, published = self._attempt(step, params, inputs, rows, ctx, log_path)
            if outcome.error is None or outcome.gate or attempt == attempts:
                break
            with open(log_path, "a", encoding="utf-8") as log:
                log.write(f"--- attempt {attempt} failed: {outcome.error}; retrying\n")
            time.sleep(min(RETRY_BACKOFF_SECONDS * 2 ** (attempt - 1), RETRY_BACKOFF_CAP_SECONDS))
        by_step: dict[int, list[tuple[str, float]]] = {}
        for key_, value, index in ctx.metrics:
            by_step.setdefault(index, []).append((key_, value))
        for index, values in by_step.items():
            if len({k for k, _ in values}) == len(values):
                md.log_metrics(execution.id, dict(values), step=index)
            else:  # the same metric logged twice at one step: keep every value, in order
                for key_, value in values:
                    md.log_metrics(execution.id, {key_: value}, step=index)
        final: dict[str, Json] = {"attempts": attempt, "params": ctx.params, "tags": dict(ctx.tags)}
        if outcome.error is None:
            return self._finish(step, execution.id, published, final, started)
        final.update(error=outcome.error, gate=outcome.gate, timed_out=outcome.timed_out)
        dropped = [row.id for row in rows.values()]
        error, gate = outcome.error, outcome.gate
        return self._failed(step, execution.id, error, started, final, gate=gate, discarded=dropped)

    def _failed(
        self,
        step: Step,
        execution_id: int,
        error: str,
        started: float,
        properties: dict[str, Json] | None = None,
        *,
        gate: bool = False,
        discarded: list[int] | None = None,
    ) -> StepResult:
        self.scope.metadata.record_step(
            execution_id,
            state=ExecutionState.FAILED,
            discarded=discarded or (),
            properties=properties or {"error": error},
            ended_at=datetime.now(UTC),
        )
        return StepResult(
            step_id=step.id,
            state=ExecutionState.FAILED,
            execution_id=execution_id,
            cached=False,
            seconds=time.monotonic() - started,
            error=error,
            gate=gate,
            outputs={},
        )

    def _finish(
        self,
        step: Step,
        execution_id: int,
        outputs: list[StepOutput],
        final: dict[str, Json],
        started: float,
    ) -> StepResult:
        record = self.scope.metadata.record_step(
            execution_id,
            state=ExecutionState.COMPLETE,
            outputs=outputs,
            properties=final,
            ended_at=datetime.now(UTC),
            contexts=self.scope.context_ids,
        )
        return StepResult(
            step_id=step.id,
            state=ExecutionState.COMPLETE,
            execution_id=execution_id,
            cached=False,
            seconds=time.monotonic() - started,
            error=None,
            gate=False,
            outputs={o.port: o.artifact_id for o in outputs},
            artifacts={o.port: a for o, a in zip(outputs, record.outputs, strict=True)},
        )

    def _attempt(
        self,
        step: Step,
        params: Mapping[str, Json],
        inputs: Mapping[str, Artifact | None],
        rows: Mapping[str, Artifact],
        ctx: StepContext,
        log_path: Path,
    ) -> tuple[Outcome, list[StepOutput]]:
        """One attempt: stage, call, publish every output's bytes. On failure nothing of
        this attempt stays published (the PENDING rows are reused by the next attempt)."""
        store = self.scope.artifacts
        with contextlib.ExitStack() as stack:
            handles: dict[str, Input[Any] | None] = {}
            for port, art in inputs.items():
                if art is None:
                    handles[port] = None
                    continue
                path = stack.enter_context(store.open_local(art.uri))
                handles[port] = Input(
                    id=art.id,
                    type_name=art.type_name,
                    uri=art.uri,
                    path=path,
                    digest=art.digest,
                    name=art.name,
                    properties=MappingProxyType(dict(art.properties)),
                )
            outs: dict[str, Output[Any]] = {}
            for port, row in rows.items():
                staged = stack.enter_context(store.staging())
                outs[port] = Output(row.type_name, row.uri, staged, f"{step.id}.{port}")
            outcome = invoke(
                Invocation(
                    component=step.component,
                    params=dict(params),
                    inputs=handles,
                    outputs=outs,
                    context=ctx,
                    timeout=step.options.timeout,
                    isolation=step.options.isolation,
                    log_path=log_path,
                )
            )
            published: list[StepOutput] = []
            if outcome.error is None:
                try:
                    for port, out in outs.items():
                        properties = _json_safe(out.properties)
                        digest = store.publish(out.path, out.uri)
                        published.append(StepOutput(rows[port].id, port, digest, properties))
                except (LooplineError, OSError, TypeError, ValueError) as exc:
                    outcome = Outcome(
                        error=f"{type(exc).__name__}: publishing output failed: {exc}",
                        error_type=type(exc).__name__,
                    )
            if outcome.error is not None:
                for row in rows.values():
                    with contextlib.suppress(LooplineError, OSError):
                        store.delete(row.uri)
                return outcome, []
            return outcome, published
        raise AssertionError("unreachable")  # pragma: no cover


def _input_pairs(inputs: Mapping[str, Artifact | None]) -> list[tuple[str, int]]:
    return [(port, a.id) for port, a in inputs.items() if a is not None]


def _is_type(type_name: str, expected: type[ArtifactType]) -> bool:
    return any(cls.type_name == type_name for cls in _subclasses(expected))


def _subclasses(cls: type[ArtifactType]) -> list[type[ArtifactType]]:
    out = [cls]
    for sub in cls.__subclasses__():
        out.extend(_subclasses(sub))
    return out


def _json_safe(props: Mapping[str, Any]) -> dict[str, Json]:
    try:
        value: dict[str, Json] = json.loads(json.dumps(dict(props), allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"output properties must be JSON values (finite numbers, strings, lists, dicts): {exc}"
        ) from exc
    return value
