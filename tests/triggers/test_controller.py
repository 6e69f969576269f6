"""The trigger controller on real stores and real pipeline processes: a run per new span,
never two; not blessed, failed and timed-out runs; rollout to Healthy (champion moved with
compare-and-set) or Degraded (champion stays); runs left by a stopped control plane."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from tests.triggers.helpers import FakeClock, RecordingRollouts, trigger

from loopline.errors import ConflictError
from loopline.metadata.entities import EventType, ExecutionState
from loopline.platform import Platform
from loopline.settings import Settings
from loopline.testing.artifacts import wait_for
from loopline.triggers import (
    ProcessLauncher,
    RolloutPhase,
    RunState,
    SqlTriggerStore,
    TriggerController,
    TriggerRun,
    TriggerSpec,
)
from loopline.triggers.process import MARKER_ENV

PIPELINE = str(Path(__file__).parent / "pipelines" / "retrain.py")
SPAN_PATTERN = "span-{SPAN}/rows.csv"


@dataclass
class World:
    platform: Platform
    store: SqlTriggerStore
    controller: TriggerController
    clock: FakeClock
    data: Path
    rollouts: RecordingRollouts

    def span(self, n: int, values: list[float]) -> None:
        folder = self.data / f"span-{n}"
        folder.mkdir(parents=True)
        (folder / "rows.csv").write_text("x\n" + "\n".join(str(v) for v in values) + "\n")

    def apply(self, **spec: Any) -> None:
        on = {"newSpan": {"inputDir": str(self.data), "pattern": SPAN_PATTERN}}
        spec.setdefault("params", {"span": "{{span}}"})
        self.store.apply(_spec(on, spec), self.clock())

    def finish(self, run_id: int, timeout: float = 90.0) -> TriggerRun:
        """Tick until run ``run_id`` has left ``running`` (the pipeline process is real)."""

        def done() -> bool:
            self.controller.tick()
            return self.store.get_run(run_id).state is not RunState.RUNNING

        wait_for(done, timeout=timeout, what=f"trigger run {run_id} to finish its pipeline")
        return self.store.get_run(run_id)


def _spec(on: dict[str, Any], spec: dict[str, Any]) -> TriggerSpec:
    """A trigger running the test pipeline (``params``, ``timeout`` go to ``spec.run``)."""
    params = spec.pop("params")
    timeout = spec.pop("timeout", None)
    built = trigger(on, params=params, **spec)
    return replace(built, run=replace(built.run, pipeline=PIPELINE, timeout=timeout))


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    settings = Settings.from_env(
        {
            "LOOPLINE_DB_URL": f"sqlite:///{tmp_path}/metadata.db",
            "LOOPLINE_ARTIFACT_ROOT": str(tmp_path / "artifacts"),
            "LOOPLINE_HOME": str(tmp_path / "home"),
        }
    )
    platform = Platform(settings)
    data = tmp_path / "data"
    data.mkdir()
    store = SqlTriggerStore(platform.metadata.engine)  # type: ignore[attr-defined]
    clock = FakeClock()
    launcher = ProcessLauncher(
        tmp_path / "home" / "triggers" / "logs",
        env={
            "LOOPLINE_DB_URL": settings.db_url,
            "LOOPLINE_ARTIFACT_ROOT": settings.artifact_root,
            "LOOPLINE_HOME": str(settings.home),
            "RETRAIN_DATA": str(data),
        },
    )
    rollouts = RecordingRollouts(platform.registry, "taxi", serving="none")
    controller = TriggerController(
        store=store,
        metadata=platform.metadata,
        registry=platform.registry,
        launcher=launcher,
        rollouts=rollouts,
        clock=clock,
    )
    yield World(platform, store, controller, clock, data, rollouts)
    platform.close()


def test_a_new_span_runs_the_pipeline_once_and_records_its_lineage(world: World) -> None:
    world.span(1, [1, 2, 3])
    world.apply()
    world.controller.tick()  # the baseline: span 1 was there before the trigger
    assert world.store.list_runs() == []
    world.span(2, [4, 5, 6])
    world.controller.tick()
    [run] = world.store.list_runs()
    assert (run.state, run.params, run.keys) == (RunState.RUNNING, {"span": 2}, ("span:2",))
    run = world.finish(run.id)
    assert run.state is RunState.SUCCEEDED, run.message
    assert run.message == "pushed taxi/1; no rollout configured"
    for _ in range(3):
        world.controller.tick()
    assert len(world.store.list_runs()) == 1
    assert world.controller.last_decisions["retrain"] == ["span:2: span 2 already trained by run 1"]
    # lineage: the span caused the run, which rolled out the model it pushed
    meta = world.platform.metadata
    execution = meta.get_execution(run.execution_id or 0)
    assert execution.type_name == "TriggerRun" and execution.state is ExecutionState.COMPLETE
    assert execution.properties["pipeline_run"] == run.detail["pipeline_run"]
    events = {
        (e.type, e.port): e.artifact_id for e in meta.get_events(execution_ids=[execution.id])
    }
    span = meta.get_artifact(events[(EventType.INPUT, "cause")])
    assert (span.type_name, span.properties["span"]) == ("DataSpan", 2)
    model = world.platform.registry.resolve("taxi/1").artifact
    assert events[(EventType.INPUT, "candidate")] == model.id
    outcome = meta.get_artifact(events[(EventType.OUTPUT, "outcome")])
    assert outcome.properties["state"] == "succeeded"


def test_a_run_that_is_not_blessed_says_why_and_pushes_nothing(world: World) -> None:
    world.span(1, [1])
    world.apply(params={"span": "{{span}}", "bless": False})
    world.controller.tick()
    world.span(2, [2])
    world.controller.tick()
    run = world.finish(world.store.list_runs()[0].id)
    assert run.state is RunState.NOT_BLESSED
    assert run.message == "not blessed: overall auc 0.51 < 0.58 (threshold lower)"
    assert world.platform.registry.list_models() == []


def test_a_failed_pipeline_is_recorded_with_its_step_error(world: World) -> None:
    world.span(1, [1])
    world.apply(params={"span": "{{span}}", "fail": True})
    world.controller.tick()
    world.span(2, [2])
    world.controller.tick()
    run = world.finish(world.store.list_runs()[0].id)
    assert run.state is RunState.FAILED
    assert run.message.startswith(
        "the pipeline run failed: fit: RuntimeError: the training data is unusable (asked to fail)"
    )
    execution = world.platform.metadata.get_execution(run.execution_id or 0)
    assert execution.state is ExecutionState.FAILED


def test_a_run_past_its_timeout_is_stopped_and_failed(world: World) -> None:
    world.span(1, [1])
    world.apply(timeout=30.0)
    world.controller.tick()
    world.span(2, [2])
    world.controller.tick()
    [run] = world.store.list_runs()
    world.clock.advance(31)
    world.controller.tick()
    run = world.store.get_run(run.id)
    assert (run.state, run.message) == (
        RunState.FAILED,
        "timed out after 30 s; its process was stopped",
    )
    pid = run.process["pid"]
    assert isinstance(pid, int)
    wait_for(
        lambda: world.controller.launcher.poll(run.process) is not None,
        timeout=30,
        what="the stopped run's process to exit",
    )


def test_rollouts_promote_on_healthy_and_leave_champion_on_degraded(world: World) -> None:
    registry = world.platform.registry
    world.span(1, [1])
    world.apply(rollout={"deployment": "taxi"})
    world.controller.tick()
    world.span(2, [2])  # the first push becomes champion at once: nothing to roll out
    world.controller.tick()
    first = world.finish(world.store.list_runs()[0].id)
    assert first.message == "taxi/1 is already champion; nothing to roll out"

    world.span(3, [3])  # v2: canaried, and the analysis aborts it
    world.controller.tick()
    aborted = world.finish(world.store.list_runs()[0].id)
    assert aborted.state is RunState.ROLLING_OUT
    assert world.rollouts.calls[-1] == ("taxi", "taxi/2", f"trigger retrain run {aborted.id}")
    world.controller.tick()
    assert world.store.get_run(aborted.id).state is RunState.ROLLING_OUT  # still progressing
    world.rollouts.reach(RolloutPhase.DEGRADED, "analysis taxi-quality: agreement 0.71 < 0.9")
    world.controller.tick()
    aborted = world.store.get_run(aborted.id)
    assert (aborted.state, aborted.message) == (
        RunState.ABORTED,
        (
            "the rollout of taxi/2 was aborted: analysis taxi-quality: agreement 0.71 < 0.9; "
            "champion stays"
        ),
    )
    assert registry.get_model("taxi").aliases["champion"] == 1
    assert world.rollouts.calls[-1][1] == "taxi@champion"  # rolled back to the champion
    assert world.rollouts.serving == "taxi/1"

    world.span(4, [4])  # v3: healthy, promoted
    world.controller.tick()
    promoted = world.finish(world.store.list_runs()[0].id)
    world.rollouts.reach(RolloutPhase.HEALTHY)
    world.controller.tick()
    promoted = world.store.get_run(promoted.id)
    assert promoted.state is RunState.PROMOTED, promoted.message
    assert promoted.message == (
        "taxi/3 rolled out healthy to deployment/taxi; champion moved from version 1 to 3"
    )
    [move] = registry.alias_history("taxi", "champion")[:1]
    assert (move.to_version, move.who) == (3, "trigger retrain")
    assert move.evidence == (promoted.detail["outcome"],)
    assert f"trigger run {promoted.id} (span 4 arrived)" in move.why
    # lineage: promotion → outcome → trigger run → span
    outcome = world.platform.metadata.get_artifact(move.evidence[0])
    assert outcome.properties["state"] == "promoted"
    producer = [
        e
        for e in world.platform.metadata.get_events(artifact_ids=[outcome.id])
        if e.type is EventType.OUTPUT
    ]
    assert producer[0].execution_id == promoted.execution_id

    world.span(5, [5])  # v4: someone moves champion during the rollout: not overwritten
    world.controller.tick()
    raced = world.finish(world.store.list_runs()[0].id)
    registry.set_alias("taxi", "champion", 2, who="ana", why="hotfix")
    world.rollouts.reach(RolloutPhase.HEALTHY)
    world.controller.tick()
    raced = world.store.get_run(raced.id)
    assert raced.state is RunState.FAILED
    assert raced.message.startswith("taxi/4 rolled out, but champion was not moved: ")
    assert registry.get_model("taxi").aliases["champion"] == 2


def test_a_pending_run_is_adopted_when_its_process_started_and_failed_otherwise(
    world: World,
) -> None:
    lost = world.store.create_run(
        trigger="retrain",
        model="taxi",
        keys=["span:7"],
        params={},
        cause={"summary": "span 7 arrived"},
        detail={},
        now=world.clock(),
    )
    world.controller.recover()
    lost = world.store.get_run(lost.id)
    assert (lost.state, lost.message) == (
        RunState.FAILED,
        (
            "the control plane stopped before the run's process started; it is not started again "
            "(a run is never launched twice)"
        ),
    )

    started = world.store.create_run(
        trigger="retrain",
        model="taxi",
        keys=["span:8"],
        params={},
        cause={},
        detail={},
        now=world.clock(),
    )
    env = {**os.environ, MARKER_ENV: f"retrain/{started.id}"}
    proc = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"], env=env, start_new_session=True
    )
    try:
        wait_for(
            lambda: Path(f"/proc/{proc.pid}/environ").read_bytes().count(MARKER_ENV.encode()) > 0,
            timeout=30,
            what="the child's environment",
        )
        world.controller.recover()
        adopted = world.store.get_run(started.id)
        assert (adopted.state, adopted.process["pid"]) == (RunState.RUNNING, proc.pid)
        world.controller.tick()
        assert world.store.get_run(started.id).state is RunState.RUNNING
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    world.controller.tick()
    gone = world.store.get_run(started.id)
    assert gone.state is RunState.FAILED
    assert gone.message.startswith("the run's process exited without a result: ")
    with pytest.raises(ConflictError, match=r"span:8 was already consumed"):
        world.store.create_run(
            trigger="retrain",
            model="taxi",
            keys=["span:8"],
            params={},
            cause={},
            detail={},
            now=world.clock(),
        )


def test_an_alert_starts_a_run_whose_promotion_traces_back_to_the_alert(world: World) -> None:
    from loopline.metadata.entities import Direction
    from loopline.monitor import AlertEvent, record_alert

    meta, registry = world.platform.metadata, world.platform.registry
    world.span(1, [1, 2])
    first = subprocess.run(
        [sys.executable, "-m", "loopline.cli", "run", PIPELINE, "--json", "--param", "span=1"],
        env={**os.environ, **world.controller.launcher.env},
        capture_output=True,
        check=False,
    )
    assert first.returncode == 0, first.stderr.decode()[-2000:]
    champion = registry.resolve("taxi@champion")
    on = {"alert": {"monitor": "taxi", "severity": "warning"}}
    world.store.apply(
        _spec(
            on,
            {"params": {"span": 1, "tag": "alert {{alert.id}}"}, "rollout": {"deployment": "taxi"}},
        ),
        world.clock(),
    )
    world.controller.tick()  # baseline: alerts before the trigger do not count
    alert = record_alert(
        meta,
        AlertEvent(
            monitor="taxi",
            rule="trip-miles-drift",
            model="taxi",
            version="1",
            state="firing",
            severity="critical",
            reason="trip_miles drifted: normalized Wasserstein 0.4 > 0.1",
            first_window=3,
            last_window=5,
            metric="trip_miles",
            value=0.4,
        ),
        model_artifact=champion.artifact.id,
    )
    world.controller.tick()
    [run] = world.store.list_runs()
    assert run.params == {"span": 1, "tag": f"alert {alert}"}
    assert run.cause["summary"] == (
        f"alert {alert} (trip-miles-drift on trip_miles = 0.4, taxi version 1) fired"
    )
    run = world.finish(run.id)
    assert run.state is RunState.ROLLING_OUT, run.message
    world.rollouts.reach(RolloutPhase.HEALTHY)
    world.controller.tick()
    assert world.store.get_run(run.id).state is RunState.PROMOTED
    move = registry.alias_history("taxi", "champion")[0]
    assert move.to_version == 2
    graph = meta.lineage(execution_id=move.execution_id, direction=Direction.UPSTREAM, hops=5)
    kinds = {a.id: a.type_name for a in graph.artifacts}
    assert kinds[alert] == "Alert"
    assert kinds[champion.artifact.id] == "Model"  # the version the monitor watched
    assert {e.type_name for e in graph.executions} >= {"AliasMove", "TriggerRun", "MonitorWindow"}
