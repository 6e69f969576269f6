from __future__ import annotations

from pathlib import Path

from loopline.metadata import ArtifactState, ExecutionState
from loopline.pipeline import Pipeline
from loopline.pipeline.runs import RunHistory

PROJECT = """
from loopline.pipeline import Dataset, Input, Metrics, Output, Param, Pipeline, component

OFFSET = {offset}

def helper(n):
    return n + OFFSET

@component
def make(out: Output[Dataset], rows: int = 3) -> None:
    (out.path / "rows.txt").write_text(str(helper(rows)))

@component
def use(data: Input[Dataset], result: Output[Metrics]) -> None:
    (result.path / "copy.txt").write_text((data.path / "rows.txt").read_text())

m = make(rows=Param("rows", 3))
pipeline = Pipeline("cached", [m, use(data=m.outputs.out)])
"""


def _states(result) -> dict[str, ExecutionState]:
    return {k: v.state for k, v in result.steps.items()}


def test_second_identical_run_comes_entirely_from_cache(env, write_module) -> None:
    mod = write_module("proj", PROJECT.format(offset=0))
    first = env.runner.run(mod.pipeline)
    second = env.runner.run(mod.pipeline)
    assert set(_states(first).values()) == {ExecutionState.COMPLETE}
    assert set(_states(second).values()) == {ExecutionState.CACHED}
    assert second.output("use", "result") == first.output("use", "result")
    assert RunHistory(env.metadata).why("latest", "use")[0].startswith("cache hit")


def test_changed_parameter_reruns_only_what_depends_on_it_and_says_why(env, write_module):
    mod = write_module("proj", PROJECT.format(offset=0))
    env.runner.run(mod.pipeline)
    result = env.runner.run(mod.pipeline, params={"rows": 7})
    assert _states(result) == {"make": ExecutionState.COMPLETE, "use": ExecutionState.COMPLETE}
    history = RunHistory(env.metadata)
    assert history.why("latest", "make") == ["parameter 'rows' changed: 3 → 7"]
    assert history.why("latest", "use")[0].startswith("input 'data' changed")


def test_same_content_from_a_rerun_upstream_still_hits_the_cache(env, write_module) -> None:
    mod = write_module("proj", PROJECT.format(offset=0))
    env.runner.run(mod.pipeline)
    result = env.runner.run(mod.pipeline, cache=False)  # make reruns, same bytes
    assert _states(result) == {"make": ExecutionState.COMPLETE, "use": ExecutionState.COMPLETE}
    again = env.runner.run(mod.pipeline)
    assert set(_states(again).values()) == {ExecutionState.CACHED}


def test_editing_a_helper_the_step_calls_invalidates_the_cache(env, write_module) -> None:
    first = write_module("proj", PROJECT.format(offset=0))
    env.runner.run(first.pipeline)
    edited = write_module("proj", PROJECT.format(offset=0).replace("n + OFFSET", "n + OFFSET + 1"))
    result = env.runner.run(edited.pipeline)
    assert result.steps["make"].state is ExecutionState.COMPLETE
    reasons = RunHistory(env.metadata).why("latest", "make")
    assert any("code changed" in r and "helper (edited)" in r for r in reasons), reasons


def test_changing_a_module_constant_the_step_reads_invalidates_the_cache(env, write_module):
    env.runner.run(write_module("proj", PROJECT.format(offset=0)).pipeline)
    result = env.runner.run(write_module("proj", PROJECT.format(offset=5)).pipeline)
    assert result.steps["make"].state is ExecutionState.COMPLETE
    assert any("OFFSET" in r for r in RunHistory(env.metadata).why("latest", "make"))


def test_deleted_cached_outputs_are_not_reused(env, write_module) -> None:
    mod = write_module("proj", PROJECT.format(offset=0))
    first = env.runner.run(mod.pipeline)
    uri = env.metadata.get_artifact(first.output("make", "out")).uri
    env.artifacts.delete(uri)
    second = env.runner.run(mod.pipeline)
    assert second.steps["make"].state is ExecutionState.COMPLETE
    assert env.metadata.get_artifact(first.output("make", "out")).state is ArtifactState.DELETED
    assert "no longer live" in RunHistory(env.metadata).why("latest", "make")[0]


def test_artifact_marked_deleted_in_the_store_is_not_reused(env, write_module) -> None:
    mod = write_module("proj", PROJECT.format(offset=0))
    first = env.runner.run(mod.pipeline)
    env.metadata.update_artifact(first.output("use", "result"), state=ArtifactState.DELETED)
    second = env.runner.run(mod.pipeline)
    assert _states(second) == {"make": ExecutionState.CACHED, "use": ExecutionState.COMPLETE}


def test_step_with_cache_disabled_always_runs(env, write_module) -> None:
    mod = write_module("proj", PROJECT.format(offset=0))
    p = Pipeline("nocache", [s.with_options(cache=False) for s in mod.pipeline.steps])
    env.runner.run(p)
    result = env.runner.run(p)
    assert set(_states(result).values()) == {ExecutionState.COMPLETE}
    assert RunHistory(env.metadata).why("latest", "make") == [
        "caching was disabled for this step or run"
    ]


def test_failed_execution_is_never_a_cache_hit(env, tmp_path: Path, write_module) -> None:
    flag = tmp_path / "fail"
    flag.write_text("1")
    mod = write_module(
        "flaky",
        f"""
        from pathlib import Path
        from loopline.pipeline import Dataset, Output, Pipeline, component

        @component
        def maybe(out: Output[Dataset]) -> None:
            if Path({str(flag)!r}).exists():
                raise RuntimeError("failing on purpose")

        pipeline = Pipeline("flaky", [maybe()])
        """,
    )
    assert env.runner.run(mod.pipeline).steps["maybe"].state is ExecutionState.FAILED
    flag.unlink()
    assert env.runner.run(mod.pipeline).steps["maybe"].state is ExecutionState.COMPLETE
