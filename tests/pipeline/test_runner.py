from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from loopline.errors import GateFailedError
from loopline.metadata import ArtifactState, EventType, ExecutionState
from loopline.pipeline import (
    Dataset,
    Input,
    Metrics,
    Model,
    Output,
    Param,
    Pipeline,
    RunStatus,
    StepContext,
    component,
)


@component
def make(out: Output[Dataset], rows: int = 3) -> None:
    (out.path / "rows.txt").write_text("\n".join(map(str, range(rows))))
    out.properties["rows"] = rows
    print(f"wrote {rows} rows")


@component
def count(data: Input[Dataset], result: Output[Metrics], ctx: StepContext) -> None:
    n = len((data.path / "rows.txt").read_text().split())
    (result.path / "n.txt").write_text(str(n))
    ctx.log_metrics(n=n)
    ctx.log_params(source=data.name)


def test_run_publishes_outputs_as_live_artifacts_with_digests(env) -> None:
    m = make(rows=Param("rows", 4))
    result = env.runner.run(Pipeline("p", [m, count(data=m.outputs.out)]))
    assert result.status is RunStatus.SUCCEEDED
    art = env.metadata.get_artifact(result.output("make", "out"))
    assert art.state is ArtifactState.LIVE
    assert art.digest and art.digest.startswith("sha256:")
    assert art.properties["rows"] == 4
    assert env.artifacts.digest(art.uri) == art.digest
    with env.artifacts.open_local(art.uri) as path:
        assert (path / "rows.txt").read_text().split() == ["0", "1", "2", "3"]


def test_run_records_lineage_events_and_run_context(env) -> None:
    m = make()
    result = env.runner.run(Pipeline("p", [m, count(data=m.outputs.out)]))
    count_exec = result.steps["count"].execution_id
    events = env.metadata.get_events(execution_ids=[count_exec])
    assert {(e.type, e.port) for e in events} == {
        (EventType.INPUT, "data"),
        (EventType.OUTPUT, "result"),
    }
    run_ctx = env.metadata.get_context(result.run_id)
    assert run_ctx.type_name == "run" and run_ctx.properties["status"] == "succeeded"
    in_run = env.metadata.list_executions(context_id=result.run_id)
    assert {e.name for e in in_run} == {"make", "count"}


def test_metrics_and_params_logged_inside_a_step_are_recorded(env) -> None:
    m = make(rows=5)
    result = env.runner.run(Pipeline("p", [m, count(data=m.outputs.out)]))
    eid = result.steps["count"].execution_id
    assert [(x.key, x.value) for x in env.metadata.get_metrics(eid)] == [("n", 5.0)]
    assert env.metadata.get_execution(eid).properties["params"] == {"source": "make.out"}


def test_step_output_is_captured_in_its_own_log(env) -> None:
    result = env.runner.run(Pipeline("p", [make(rows=2)]))
    log = env.metadata.get_execution(result.steps["make"].execution_id).log_uri
    assert "wrote 2 rows" in Path(log).read_text()


def test_independent_branches_run_in_parallel(env) -> None:
    inside = []
    both = threading.Barrier(2, timeout=10)

    @component
    def left(out: Output[Dataset]) -> None:
        inside.append("left")
        both.wait()

    @component
    def right(out: Output[Dataset]) -> None:
        inside.append("right")
        both.wait()

    result = env.runner.run(Pipeline("p", [left(), right()]))
    assert result.ok and sorted(inside) == ["left", "right"]


def test_failure_fails_the_step_and_cancels_downstream(env) -> None:
    @component
    def boom(out: Output[Dataset]) -> None:
        (out.path / "half.txt").write_text("partial")
        raise RuntimeError("disk on fire")

    b = boom()
    result = env.runner.run(Pipeline("p", [b, count(data=b.outputs.out)]))
    assert result.status is RunStatus.FAILED
    assert result.steps["boom"].state is ExecutionState.FAILED
    assert "RuntimeError: disk on fire" in (result.steps["boom"].error or "")
    assert result.steps["count"].state is ExecutionState.CANCELED
    assert env.metadata.list_artifacts(state=ArtifactState.LIVE) == []
    assert env.metadata.list_artifacts(state=ArtifactState.PENDING) == []


def test_retries_until_success(env) -> None:
    attempts = []

    @component(retries=2)
    def flaky(out: Output[Dataset], ctx: StepContext) -> None:
        attempts.append(ctx.attempt)
        if len(attempts) < 3:
            raise ConnectionError("try again")

    result = env.runner.run(Pipeline("p", [flaky()]))
    assert result.ok and attempts == [1, 2, 3]
    assert (
        env.metadata.get_execution(result.steps["flaky"].execution_id).properties["attempts"] == 3
    )


def test_a_gate_blocks_the_run_and_is_not_retried(env) -> None:
    calls = []

    @component(retries=3)
    def gate(data: Input[Dataset], verdict: Output[Metrics]) -> None:
        calls.append(1)
        raise GateFailedError("3 anomalies: fare out of range")

    m = make()
    g = gate(data=m.outputs.out)
    result = env.runner.run(Pipeline("p", [m, g, count(data=m.outputs.out)]))
    assert result.status is RunStatus.BLOCKED and calls == [1]
    assert result.steps["gate"].gate
    assert env.metadata.get_context(result.run_id).properties["status"] == "blocked"


def test_thread_step_past_its_timeout_fails_and_publishes_nothing(env) -> None:
    @component(timeout=0.3)
    def slow(out: Output[Dataset]) -> None:
        time.sleep(1.5)

    result = env.runner.run(Pipeline("p", [slow()]))
    assert result.status is RunStatus.FAILED
    assert "did not finish within its timeout of 0.3 s" in (result.steps["slow"].error or "")
    assert env.metadata.list_artifacts(state=ArtifactState.LIVE) == []


def test_process_isolation_runs_in_a_child_and_kills_it_at_the_timeout(env, write_module):
    mod = write_module(
        "isolated",
        """
        import os, time
        from loopline.pipeline import Dataset, Output, StepContext, component

        @component(isolation="process")
        def where(out: Output[Dataset], ctx: StepContext) -> None:
            (out.path / "pid").write_text(str(os.getpid()))
            out.properties["pid"] = os.getpid()
            ctx.log_metrics(answer=42)

        @component(isolation="process", timeout=0.5)
        def hang(out: Output[Dataset]) -> None:
            time.sleep(30)
        """,
    )
    import os

    result = env.runner.run(Pipeline("p", [mod.where(), mod.hang()]))
    art = env.metadata.get_artifact(result.output("where", "out"))
    assert art.properties["pid"] != os.getpid()
    metrics = env.metadata.get_metrics(result.steps["where"].execution_id)
    assert [(m.key, m.value) for m in metrics] == [("answer", 42.0)]
    assert result.steps["hang"].state is ExecutionState.FAILED
    assert "timeout of 0.5 s" in (result.steps["hang"].error or "")
    assert result.steps["hang"].seconds < 10


def test_unknown_param_override_is_rejected_with_the_known_names(env) -> None:
    from loopline.errors import InvalidDefinitionError

    with pytest.raises(InvalidDefinitionError, match="no parameter 'rowz'. Parameters: rows"):
        env.runner.run(Pipeline("p", [make(rows=Param("rows", 3))]), params={"rowz": 1})


def test_param_override_of_the_wrong_type_is_rejected(env) -> None:
    from loopline.errors import InvalidDefinitionError

    with pytest.raises(InvalidDefinitionError, match="parameter 'rows' expects int, got 'many'"):
        env.runner.run(Pipeline("p", [make(rows=Param("rows", 3))]), params={"rows": "many"})


def test_non_json_output_property_fails_the_step_clearly(env) -> None:
    @component
    def odd(out: Output[Model]) -> None:
        out.properties["when"] = object()

    result = env.runner.run(Pipeline("p", [odd()]))
    assert result.status is RunStatus.FAILED
    assert "output properties must be JSON values" in (result.steps["odd"].error or "")
