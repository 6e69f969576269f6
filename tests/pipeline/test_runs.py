from __future__ import annotations

import pytest

from loopline.errors import NotFoundError
from loopline.pipeline import (
    Dataset,
    Input,
    Metrics,
    Output,
    Param,
    Pipeline,
    StepContext,
    component,
)
from loopline.pipeline.runs import RunHistory


@component
def make(out: Output[Dataset], rows: int = 3) -> None:
    (out.path / "n").write_text(str(rows))


@component
def score(data: Input[Dataset], result: Output[Metrics], ctx: StepContext) -> None:
    ctx.log_metrics(rows=float((data.path / "n").read_text()))


def _pipeline() -> Pipeline:
    m = make(rows=Param("rows", 3))
    return Pipeline("tracked", [m, score(data=m.outputs.out)])


def test_list_returns_runs_newest_first_with_steps_status_and_cache_flags(env) -> None:
    env.runner.run(_pipeline())
    env.runner.run(_pipeline())
    runs = RunHistory(env.metadata).recent()
    assert [r.status for r in runs] == ["succeeded", "succeeded"]
    newest = runs[0].to_json()
    assert newest["pipeline"] == "tracked"
    assert [(s["name"], s["status"], s["cached"]) for s in newest["steps"]] == [
        ("make", "cached", True),
        ("score", "cached", True),
    ]


def test_show_reports_inputs_outputs_and_metrics_of_cached_steps_too(env) -> None:
    first = env.runner.run(_pipeline(), params={"rows": 4})
    env.runner.run(_pipeline(), params={"rows": 4})
    record = RunHistory(env.metadata).show("latest")
    step = record.step("score")
    assert step.metrics == {"rows": 4.0}
    assert step.inputs == {"data": first.output("make", "out")}
    assert record.parameters == {"rows": 4}


def test_diff_names_changed_parameters_inputs_and_metrics(env) -> None:
    a = env.runner.run(_pipeline(), params={"rows": 3})
    b = env.runner.run(_pipeline(), params={"rows": 9})
    diff = RunHistory(env.metadata).diff(str(a.run_id), b.run_name)
    assert diff["parameters"] == {"rows": [3, 9]}
    assert diff["steps"]["make"]["changes"] == ["parameter 'rows' changed: 3 → 9"]
    assert diff["steps"]["score"]["metrics"] == {"rows": [3.0, 9.0]}


def test_identical_runs_have_no_step_differences(env) -> None:
    a = env.runner.run(_pipeline())
    b = env.runner.run(_pipeline())
    diff = RunHistory(env.metadata).diff(a.run_name, b.run_name)
    assert diff["parameters"] == {} and diff["steps"] == {}


def test_unknown_run_and_step_raise_with_a_hint(env) -> None:
    env.runner.run(_pipeline())
    history = RunHistory(env.metadata)
    with pytest.raises(NotFoundError, match="No run 'nope'. List runs with: loopline runs list"):
        history.show("nope")
    with pytest.raises(NotFoundError, match="has no step 'train'. Steps: make, score"):
        history.why("latest", "train")
