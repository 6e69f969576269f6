"""The trigger loop: observe each trigger's source, :func:`~loopline.triggers.decide.decide`,
launch runs, and carry every run in flight to its end.

One :meth:`TriggerController.tick` does, for each applied Trigger: read its source from the
cursor, decide, record and start the runs decided on, move the cursor; then, for each run in
flight (of any trigger, so a deleted trigger's run still finishes):

- ``running``: while its process lives, wait (and stop it past ``run.timeout``); once it is
  gone, read its JSON summary: failed → ``failed``; blocked → ``notBlessed: <reasons>`` (or
  ``blocked`` by another gate); succeeded without a pushed model or without a rollout →
  ``succeeded``; else set the deployment's model to the pushed version → ``rollingOut``;
- ``rollingOut``: Healthy → move the alias (``champion``) to the version with compare-and-set
  (``expect`` = the champion before the rollout), the evidence naming the run's outcome, then
  point the deployment back at ``model@champion`` (same version: no new revision) →
  ``promoted``; Degraded → record the analysis's message, point the deployment back at
  ``model@champion`` (the old version) → ``aborted``, champion untouched.

:meth:`TriggerController.recover` runs once at start: a ``pending`` run whose process started
(found by its environment marker) is adopted, any other ``pending`` run is failed — a run is
never launched twice.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from pathlib import Path

from loopline.errors import ConflictError, LooplineError, NotFoundError
from loopline.metadata.store import MetadataStore
from loopline.registry import ModelRegistry
from loopline.triggers import records
from loopline.triggers.decide import Defer, Launch, Skip, TriggerState, consumed_up_to, decide
from loopline.triggers.process import ProcessLauncher, find_marked, log_tail, read_result
from loopline.triggers.rollout import Rollouts, Verdict, judge
from loopline.triggers.run import RunChange, RunState, TriggerRun
from loopline.triggers.sources import observe
from loopline.triggers.spec import TriggerSpec
from loopline.triggers.store import StoredTrigger, TriggerStore
from loopline.types import Json

log = logging.getLogger(__name__)


class TriggerController:
    """Runs triggers against the stores.

    Args:
        store: triggers and runs (the source of truth).
        metadata: where events are read and lineage is recorded.
        registry: the models' aliases (promotion).
        launcher: starts and watches the runs' processes.
        rollouts: the deployments (None: a rollout block fails the run with a clear message).
        clock: seconds since the epoch (a fake one in tests).
    """

    def __init__(
        self,
        *,
        store: TriggerStore,
        metadata: MetadataStore,
        registry: ModelRegistry,
        launcher: ProcessLauncher,
        rollouts: Rollouts | None,
        clock: Callable[[], float],
    ) -> None:
        self.store = store
        self.metadata = metadata
        self.registry = registry
        self.launcher = launcher
        self.rollouts = rollouts
        self.clock = clock
        self.last_decisions: dict[str, list[str]] = {}  # trigger -> this tick's skips/defers

    # ---- the loop ----------------------------------------------------------------------------

    def run(self, stop: threading.Event, interval: float = 1.0) -> None:
        """:meth:`recover` (until it succeeds), then a :meth:`tick` every ``interval`` s until
        ``stop``. The loop outlives any error: it is logged and the round is retried."""
        recovered = False
        while not stop.is_set():
            try:
                if not recovered:
                    self.recover()
                    recovered = True
                self.tick()
            except Exception:  # the store is unreachable, or a bug: log it, keep looping
                log.exception("A round of the trigger loop failed; retrying in %g s.", interval)
            stop.wait(interval)

    def tick(self) -> None:
        """One round; an error in one trigger or run is logged and does not stop the others."""
        for stored in self.store.list():
            try:
                self.fire(stored)
            except Exception:  # one broken trigger must not stop the others
                log.exception("Trigger %r failed this round; retrying.", stored.spec.name)
        for run in self.store.list_runs(active=True):
            try:
                self.advance(run)
            except Exception:
                log.exception("Trigger run %d failed to advance; retrying.", run.id)

    def recover(self) -> None:
        """Adopt or fail the runs a stopped control plane left ``pending``."""
        for run in self.store.list_runs(active=True):
            if run.state is not RunState.PENDING:
                continue
            marker = _marker(run)
            pid = find_marked(marker)
            if pid is not None:
                from loopline.artifacts.owner import process_stat

                stat = process_stat(pid)
                base = Path(self.launcher.log_dir) / marker.replace("/", "-")
                process: dict[str, Json] = {
                    "pid": pid,
                    "start_ticks": None if stat is None else stat[0],
                    "log": f"{base}.log",
                    "result": f"{base}.json",
                    "marker": marker,
                }
                self._move(
                    run, RunState.RUNNING, "adopted after a control-plane restart", process=process
                )
            else:
                self._finish(
                    run,
                    RunState.FAILED,
                    "the control plane stopped before the run's process started; it "
                    "is not started again (a run is never launched twice)",
                )

    # ---- deciding ----------------------------------------------------------------------------

    def state_of(self, spec: TriggerSpec) -> TriggerState:
        """What :func:`decide` needs about ``spec``'s earlier runs."""
        recent = self.store.list_runs(trigger=spec.name, limit=50)
        ended = [r.ended_at for r in recent if r.ended_at is not None]
        origins = {f"trigger {spec.name}"}
        for r in recent:
            name = r.detail.get("pipeline_run_name")
            if isinstance(name, str):
                origins.add(f"pipeline run {name} ")
        return TriggerState(
            done=self.store.used_keys(spec.name),
            active={r.model: r.id for r in self.store.list_runs(active=True)},
            last_ended_at=max(ended, default=None),
            own_origins=frozenset(origins),
        )

    def fire(self, stored: StoredTrigger) -> list[TriggerRun]:
        """Observe, decide and launch for one trigger; returns the runs started."""
        spec, now = stored.spec, self.clock()
        seen = observe(spec, stored.cursor, self.metadata, now)
        actions = decide(spec, self.state_of(spec), seen.events, now)
        started = []
        for action in actions:
            if isinstance(action, Launch):
                run = self.launch(spec, action)
                if run is not None:
                    started.append(run)
        self.last_decisions[spec.name] = [
            f"{a.event.key}: {a.reason}" for a in actions if isinstance(a, Skip | Defer)
        ]
        cursor = consumed_up_to(seen.scanned_to, actions)
        if stored.cursor is None or cursor != stored.cursor:
            self.store.set_cursor(spec.name, cursor)
        return started

    def launch(self, spec: TriggerSpec, action: Launch) -> TriggerRun | None:
        """Record and start one run (None when the store refuses: key taken, model busy)."""
        cause: dict[str, Json] = {
            "summary": action.reason,
            "events": [{"key": e.key, "summary": e.summary} for e in action.events],
        }
        detail: dict[str, Json] = {"pipeline": spec.run.pipeline, "timeout": spec.run.timeout}
        if spec.rollout is not None:
            detail["rollout"] = {
                "deployment": spec.rollout.deployment,
                "alias": spec.rollout.alias,
                "candidateAlias": spec.rollout.candidate_alias,
            }
        try:
            run = self.store.create_run(
                trigger=spec.name,
                model=spec.model,
                keys=action.keys,
                params=action.params,
                cause=cause,
                detail=detail,
                now=self.clock(),
            )
        except ConflictError as exc:
            log.info("Trigger %r did not start a run: %s", spec.name, exc)
            return None
        causes = records.cause_artifacts(self.metadata, [e.cause for e in action.events])
        execution = records.record_start(self.metadata, run, causes)
        run = self.store.update_run(
            run.id, RunState.PENDING, RunChange(execution_id=execution), self.clock()
        )
        try:
            process = self.launcher.start(_marker(run), spec.run.pipeline, action.params)
        except LooplineError as exc:
            return self._finish(run, RunState.FAILED, f"the run could not start: {exc}")
        return self._move(
            run,
            RunState.RUNNING,
            f"started: {action.reason}",
            process=process,
            started_at=self.clock(),
        )

    # ---- carrying runs on ----------------------------------------------------------------------

    def advance(self, run: TriggerRun) -> TriggerRun:
        """One step of a run in flight (see the module docstring)."""
        if run.state is RunState.RUNNING:
            return self._watch_process(run)
        if run.state is RunState.ROLLING_OUT:
            return self._watch_rollout(run)
        return run

    def _watch_process(self, run: TriggerRun) -> TriggerRun:
        exited = self.launcher.poll(run.process)
        if exited is None:
            timeout, started = run.detail.get("timeout"), run.detail.get("started_at")
            if (
                isinstance(timeout, int | float)
                and isinstance(started, int | float)
                and (self.clock() - started > timeout)
            ):
                self.launcher.stop(run.process)
                return self._finish(
                    run, RunState.FAILED, f"timed out after {timeout:g} s; its process was stopped"
                )
            return run
        self.launcher.forget(run.process)
        result = read_result(run.process)
        if result is None:
            code = "" if exited.code is None else f" with code {exited.code}"
            return self._finish(
                run,
                RunState.FAILED,
                f"the run's process exited{code} without a result: "
                f"{log_tail(run.process) or 'no log'}",
            )
        run = self._note_pipeline_run(run, result)
        status = result.get("status")
        steps = [s for s in _list(result.get("steps")) if isinstance(s, dict)]
        if status == "blocked":
            reasons = self._not_blessed(steps)
            if reasons is not None:
                return self._finish(run, RunState.NOT_BLESSED, f"not blessed: {reasons}")
            return self._finish(run, RunState.BLOCKED, f"blocked: {_step_errors(steps)}")
        if status != "succeeded":
            return self._finish(
                run, RunState.FAILED, f"the pipeline run {status}: {_step_errors(steps)}"
            )
        pushed = self._pushed(steps, run.model)
        if pushed is None:
            return self._finish(
                run,
                RunState.SUCCEEDED,
                f"the pipeline run succeeded and pushed no {run.model!r} model",
            )
        version, model_artifact = pushed
        records.record_candidate(
            self.metadata, _execution(run), model_artifact, {"version": version}
        )
        run = self.store.update_run(
            run.id, run.state, RunChange(detail={"version": version}), self.clock()
        )
        rollout = run.detail.get("rollout")
        if not isinstance(rollout, dict):
            return self._finish(
                run, RunState.SUCCEEDED, f"pushed {run.model}/{version}; no rollout configured"
            )
        return self._start_rollout(run, rollout, version)

    def _start_rollout(
        self, run: TriggerRun, rollout: Mapping[str, Json], version: int
    ) -> TriggerRun:
        deployment, alias = str(rollout["deployment"]), str(rollout["alias"])
        champion = self.registry.get_model(run.model).aliases.get(alias)
        if champion == version:
            return self._finish(
                run,
                RunState.SUCCEEDED,
                f"{run.model}/{version} is already {alias}; nothing to roll out",
            )
        if self.rollouts is None:
            return self._finish(
                run, RunState.FAILED, "this controller has no deployments to roll out to"
            )
        ref = f"{run.model}/{version}"
        try:
            generation = self.rollouts.set_model(
                deployment, ref, f"trigger {run.trigger} run {run.id}"
            )
        except LooplineError as exc:
            return self._finish(
                run, RunState.FAILED, f"could not set deployment/{deployment} to {ref}: {exc}"
            )
        return self._move(
            run,
            RunState.ROLLING_OUT,
            f"rolling {ref} out to deployment/{deployment}",
            champion_before=champion or 0,
            generation=generation,
        )

    def _watch_rollout(self, run: TriggerRun) -> TriggerRun:
        rollout = run.detail.get("rollout")
        version, generation = run.detail.get("version"), run.detail.get("generation")
        if (
            not isinstance(rollout, dict)
            or not isinstance(version, int)
            or not isinstance(generation, int)
            or self.rollouts is None
        ):
            return self._finish(run, RunState.FAILED, "its rollout record is incomplete")
        deployment, alias = str(rollout["deployment"]), str(rollout["alias"])
        ref = f"{run.model}/{version}"
        try:
            observation = self.rollouts.observe(deployment)
        except NotFoundError as exc:
            return self._finish(run, RunState.FAILED, f"deployment/{deployment} is gone: {exc}")
        verdict, why = judge(observation, ref, generation)
        if verdict is Verdict.WAIT:
            return run
        if verdict is Verdict.REPLACED:
            return self._finish(run, RunState.FAILED, why)
        back = f"{run.model}@{alias}"
        if verdict is Verdict.DEGRADED:
            done = self._finish(
                run, RunState.ABORTED, f"the rollout of {ref} was aborted: {why}; {alias} stays"
            )
            self._point_back(run, deployment, back)
            return done
        expect = run.detail.get("champion_before")
        outcome = records.record_outcome(
            self.metadata,
            run,
            RunState.PROMOTED,
            f"{ref} rolled out healthy to deployment/{deployment}",
            {"version": version, "deployment": deployment},
        )
        try:
            self.registry.set_alias(
                run.model,
                alias,
                version,
                who=f"trigger {run.trigger}",
                why=f"trigger run {run.id} ({run.cause.get('summary')}): {ref} rolled out "
                f"healthy to deployment/{deployment}",
                evidence=[outcome],
                expect=expect if isinstance(expect, int) else None,
            )
        except ConflictError as exc:
            return self._finish(
                run,
                RunState.FAILED,
                f"{ref} rolled out, but {alias} was not moved: {exc}",
                outcome=outcome,
            )
        done = self._finish(
            run,
            RunState.PROMOTED,
            f"{ref} rolled out healthy to deployment/{deployment}; {alias} moved "
            f"from version {expect or 'none'} to {version}",
            outcome=outcome,
        )
        self._point_back(run, deployment, back)
        return done

    # ---- helpers -----------------------------------------------------------------------------

    def _point_back(self, run: TriggerRun, deployment: str, ref: str) -> None:
        """Point the deployment at ``model@alias`` again (after a promotion the same version:
        no new revision; after an abort the old one: the rollout returns to Healthy)."""
        assert self.rollouts is not None
        try:
            self.rollouts.set_model(deployment, ref, f"trigger {run.trigger} run {run.id}")
        except LooplineError as exc:
            log.warning(
                "Trigger run %d could not point deployment/%s back at %s: %s",
                run.id,
                deployment,
                ref,
                exc,
            )

    def _note_pipeline_run(self, run: TriggerRun, result: Mapping[str, Json]) -> TriggerRun:
        detail = {
            "pipeline_run": result.get("id"),
            "pipeline_run_name": result.get("name"),
            "pipeline_status": result.get("status"),
        }
        records.record_progress(self.metadata, _execution(run), detail)
        return self.store.update_run(run.id, run.state, RunChange(detail=detail), self.clock())

    def _not_blessed(self, steps: list[dict[str, Json]]) -> str | None:
        """The reasons of a ModelBlessing that says no, among the run's outputs."""
        for artifact in self.metadata.get_artifacts(_output_ids(steps)):
            if artifact.type_name == "ModelBlessing" and artifact.properties.get("blessed") == 0:
                reasons = artifact.properties.get("reasons")
                if isinstance(reasons, list) and reasons:
                    return "; ".join(str(r) for r in reasons[:5])
                return f"see ModelBlessing {artifact.id}"
        return None

    def _pushed(self, steps: list[dict[str, Json]], model: str) -> tuple[int, int] | None:
        """``(version, model artifact id)`` of the run's PushedModel of ``model``."""
        for artifact in self.metadata.get_artifacts(_output_ids(steps)):
            p = artifact.properties
            if artifact.type_name == "PushedModel" and p.get("model") == model:
                version, model_id = p.get("version"), p.get("model_id")
                if isinstance(version, int) and isinstance(model_id, int):
                    return version, model_id
        return None

    def _move(
        self,
        run: TriggerRun,
        state: RunState,
        message: str,
        *,
        process: Mapping[str, Json] | None = None,
        **detail: Json,
    ) -> TriggerRun:
        new = self.store.update_run(
            run.id,
            run.state,
            RunChange(state=state, message=message, process=process, detail=detail or None),
            self.clock(),
        )
        if new.execution_id is not None:
            records.record_progress(
                self.metadata, new.execution_id, {"state": state.value, "message": message}
            )
        log.info("Trigger %r run %d: %s: %s", run.trigger, run.id, state.value, message)
        return new

    def _finish(
        self, run: TriggerRun, state: RunState, message: str, outcome: int | None = None
    ) -> TriggerRun:
        now = self.clock()
        if outcome is None and run.execution_id is not None:
            outcome = records.record_outcome(
                self.metadata, run, state, message, {"version": run.detail.get("version")}
            )
        new = self.store.update_run(
            run.id,
            run.state,
            RunChange(
                state=state,
                message=message,
                ended_at=now,
                detail={"outcome": outcome} if outcome is not None else None,
            ),
            now,
        )
        if new.execution_id is not None:
            records.record_end(self.metadata, new.execution_id, state, message)
        self.launcher.forget(run.process)
        log.info("Trigger %r run %d ended %s: %s", run.trigger, run.id, state.value, message)
        return new


def _marker(run: TriggerRun) -> str:
    return f"{run.trigger}/{run.id}"


def _execution(run: TriggerRun) -> int:
    if run.execution_id is None:  # pragma: no cover - recorded before the process starts
        raise ConflictError(f"Trigger run {run.id} has no TriggerRun execution recorded.")
    return run.execution_id


def _list(value: Json) -> list[Json]:
    return value if isinstance(value, list) else []


def _output_ids(steps: list[dict[str, Json]]) -> list[int]:
    ids: list[int] = []
    for step in steps:
        outputs = step.get("outputs")
        if isinstance(outputs, dict):
            ids += [v for v in outputs.values() if isinstance(v, int)]
    return ids


def _step_errors(steps: list[dict[str, Json]]) -> str:
    errors = [
        f"{s.get('name')}: {s.get('error')}"
        for s in steps
        if s.get("error") and s.get("status") in ("failed", "blocked")
    ]
    return "; ".join(errors[:3]) or "no step error recorded"
