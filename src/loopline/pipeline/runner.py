"""The local runner: executes a ``Pipeline`` in topological order, independent branches in
parallel on a bounded pool, recording every step in the metadata store.

This is the only module that executes pipelines; definitions never import it.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopline import __version__
from loopline.artifacts.owner import Owner
from loopline.artifacts.store import ArtifactStore
from loopline.errors import InvalidDefinitionError
from loopline.metadata.entities import Artifact, ExecutionState
from loopline.metadata.store import MetadataStore
from loopline.pipeline import capture
from loopline.pipeline.component import accepts
from loopline.pipeline.graph import Pipeline, resolve_params
from loopline.pipeline.progress import RunProgress
from loopline.pipeline.recovery import recover
from loopline.pipeline.results import RunResult, RunStatus, StepResult
from loopline.pipeline.step import OutputRef, Param, Step
from loopline.pipeline.step_executor import RunScope, StepExecutor
from loopline.types import Json

if TYPE_CHECKING:
    from rich.console import Console

    from loopline.bundle import Trust

_OK = (ExecutionState.COMPLETE, ExecutionState.CACHED)


class LocalRunner:
    """Runs pipelines in this process (steps as threads or child processes).

    Args:
        metadata: where executions, artifacts and lineage are recorded.
        artifacts: where artifact bytes are published.
        log_dir: one sub-directory per run holds a log file per step.
        max_workers: how many steps run at once.
        console: where live progress goes; None for silence.
        trust: what a step that loads a model bundle (Evaluator) lets it run: the operator's
            trust, built by the composition root from ``LOOPLINE_TRUSTED_LOADERS`` and
            ``LOOPLINE_TRUSTED_TYPES`` (None: loopline's built-in trust only). Steps receive
            it as ``StepContext.trust``, also in a child process.
    """

    def __init__(
        self,
        metadata: MetadataStore,
        artifacts: ArtifactStore,
        *,
        log_dir: Path,
        max_workers: int = 2,
        console: Console | None = None,
        trust: Trust | None = None,
    ) -> None:
        self.metadata = metadata
        self.artifacts = artifacts
        self.log_dir = log_dir
        self.max_workers = max_workers
        self.console = console
        self.trust = trust

    def run(
        self,
        pipeline: Pipeline,
        *,
        params: Mapping[str, Any] | None = None,
        cache: bool = True,
        source: str | None = None,
    ) -> RunResult:
        """Run the pipeline once and return what happened to each step.

        Args:
            params: overrides of the pipeline's ``Param`` defaults.
            cache: False re-runs every step (the new outputs become the cached ones).
            source: the pipeline file, recorded on the run.

        Raises:
            InvalidDefinitionError: an override names an unknown parameter or has a value of
                the wrong type for a step that uses it.
        """
        values = resolve_params(pipeline, params or {})
        step_params = {s.id: _step_params(pipeline, s, values) for s in pipeline.steps}
        recover(self.metadata, self.artifacts)
        owner = Owner.current()
        pipe_ctx = self.metadata.ensure_context("pipeline", pipeline.name)
        run_name = f"{pipeline.name}-{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"
        run_ctx = self.metadata.put_context(
            "run",
            run_name,
            properties={
                "pipeline": pipeline.name,
                "status": RunStatus.RUNNING.value,
                "parameters": dict(values),
                "started_at": datetime.now(UTC).isoformat(),
                "owner": owner.as_dict(),
                "source": source,
                "cache": cache,
                "loopline_version": __version__,
                "steps": [s.id for s in pipeline.steps],
            },
        )
        scope = RunScope(
            metadata=self.metadata,
            artifacts=self.artifacts,
            pipeline=pipeline.name,
            run_name=run_name,
            context_ids=(pipe_ctx.id, run_ctx.id),
            log_dir=self.log_dir / run_name,
            cache=cache,
            owner=owner,
            trust=self.trust,
        )
        results: dict[str, StepResult] = {}
        try:
            with RunProgress(self.console, run_name, [s.id for s in pipeline.steps]) as progress:
                self._schedule(pipeline, StepExecutor(scope), step_params, results, progress)
        except BaseException:
            self.metadata.update_context(
                run_ctx.id,
                properties={
                    "status": RunStatus.CRASHED.value,
                    "ended_at": datetime.now(UTC).isoformat(),
                },
            )
            raise
        status = _status(results)
        self.metadata.update_context(
            run_ctx.id,
            properties={"status": status.value, "ended_at": datetime.now(UTC).isoformat()},
        )
        return RunResult(
            run_id=run_ctx.id,
            run_name=run_name,
            pipeline=pipeline.name,
            status=status,
            steps={s.id: results[s.id] for s in pipeline.steps},
        )

    def _schedule(
        self,
        pipeline: Pipeline,
        executor: StepExecutor,
        step_params: Mapping[str, Mapping[str, Json]],
        results: dict[str, StepResult],
        progress: RunProgress,
    ) -> None:
        pending = list(pipeline.steps)
        running: dict[Future[StepResult], Step] = {}
        with (
            capture.routing(),
            ThreadPoolExecutor(
                max_workers=self.max_workers, thread_name_prefix="loopline-step"
            ) as pool,
        ):
            while pending or running:
                ready = self._ready(pending, executor, results, progress)
                if len(ready) == 1 and not running:
                    # Nothing else can run meanwhile (a chain): run it here and save the
                    # thread hand-off, which costs more than a cached step.
                    step, inputs = ready[0]
                    progress.running(step.id)
                    results[step.id] = executor.execute(step, step_params[step.id], inputs)
                    progress.finished(results[step.id])
                    continue
                for step, inputs in ready:
                    progress.running(step.id)
                    future = pool.submit(executor.execute, step, step_params[step.id], inputs)
                    running[future] = step
                if not running:
                    continue
                done, _ = wait(running, timeout=0.2, return_when=FIRST_COMPLETED)
                for fut in done:
                    step = running.pop(fut)
                    results[step.id] = fut.result()
                    progress.finished(results[step.id])

    def _ready(
        self,
        pending: list[Step],
        executor: StepExecutor,
        results: dict[str, StepResult],
        progress: RunProgress,
    ) -> list[tuple[Step, dict[str, Artifact | None]]]:
        """Take the steps whose upstream steps are done off ``pending``: record those that
        cannot run (canceled, empty input) and return the others with their inputs."""
        ready: list[tuple[Step, dict[str, Artifact | None]]] = []
        for step in list(pending):
            ups = step.upstream_ids()
            if any(u not in results for u in ups):
                continue
            pending.remove(step)
            blocked = [u for u in ups if results[u].state not in _OK]
            if blocked:
                results[step.id] = self._cancel(executor.scope, step, blocked[0])
                progress.finished(results[step.id])
                continue
            inputs = self._inputs(step, results)
            empty = [
                p for p, a in inputs.items() if a is None and not step.component.inputs[p].optional
            ]
            if empty:
                ref = step.arguments[empty[0]]
                results[step.id] = executor.fail(
                    step,
                    f"input {empty[0]!r} is empty: {ref} produced no artifact in this run; make "
                    "the input optional (Input[T] | None = None) to accept that",
                )
                progress.finished(results[step.id])
                continue
            ready.append((step, inputs))
        return ready

    def _inputs(self, step: Step, results: Mapping[str, StepResult]) -> dict[str, Artifact | None]:
        ids: dict[str, int | None] = {}
        found: dict[int, Artifact] = {}
        for port in step.component.inputs:
            ref = step.arguments.get(port)
            ids[port] = None
            if isinstance(ref, OutputRef):
                upstream = results[ref.step_id]
                ids[port] = upstream.outputs.get(ref.port)
                known = upstream.artifacts.get(ref.port)
                if known is not None and known.id == ids[port]:
                    found[known.id] = known  # as the store returned it when it was recorded
        wanted = [aid for aid in ids.values() if aid is not None and aid not in found]
        if wanted:
            found.update((a.id, a) for a in self.metadata.get_artifacts(wanted))
        return {port: None if aid is None else found[aid] for port, aid in ids.items()}

    def _cancel(self, scope: RunScope, step: Step, upstream: str) -> StepResult:
        return StepExecutor(scope).terminal(
            step, ExecutionState.CANCELED, f"upstream step {upstream!r} did not succeed"
        )


def _step_params(pipeline: Pipeline, step: Step, values: Mapping[str, Json]) -> dict[str, Json]:
    resolved: dict[str, Json] = {}
    for pname, spec in step.component.parameters.items():
        raw = step.arguments.get(pname, spec.default)
        value = values[raw.name] if isinstance(raw, Param) else raw
        if not accepts(spec, value):
            raise InvalidDefinitionError(
                f"Pipeline {pipeline.name!r} step {step.id!r} parameter {pname!r} expects "
                f"{spec.type.__name__}, got {value!r} ({type(value).__name__})."
            )
        resolved[pname] = value
    return resolved


def _status(results: Mapping[str, StepResult]) -> RunStatus:
    failed = [r for r in results.values() if r.state is ExecutionState.FAILED]
    if any(r.gate for r in failed):
        return RunStatus.BLOCKED
    if failed:
        return RunStatus.FAILED
    return RunStatus.SUCCEEDED
