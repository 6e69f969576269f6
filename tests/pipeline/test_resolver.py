from __future__ import annotations

import pytest

from loopline.errors import InvalidDefinitionError
from loopline.metadata import Artifact, ExecutionState
from loopline.metadata.store import MetadataStore
from loopline.pipeline import Input, Metrics, Model, Output, Pipeline, RunStatus, component
from loopline.pipeline.resolver import resolver


@resolver(output=Model)
def newest_model(store: MetadataStore, pipeline: str) -> Artifact | None:
    return store.latest_artifact("Model")


@component
def train(model: Output[Model]) -> None:
    (model.path / "m").write_text("weights")


@component
def compare(
    candidate: Input[Model], report: Output[Metrics], baseline: Input[Model] | None = None
) -> None:
    report.properties["baseline"] = None if baseline is None else baseline.id


@component
def needs(model: Input[Model], report: Output[Metrics]) -> None: ...


def test_resolver_output_is_empty_on_first_run_and_optional_input_gets_none(env) -> None:
    base = newest_model()
    t = train()
    p = Pipeline("r", [base, t, compare(candidate=t.outputs.model, baseline=base.outputs.artifact)])
    first = env.runner.run(p)
    assert first.ok
    assert (
        env.metadata.get_artifact(first.output("compare", "report")).properties["baseline"] is None
    )


def test_resolver_feeds_an_existing_artifact_and_records_lineage(env) -> None:
    earlier = env.runner.run(Pipeline("earlier", [train()]))
    existing = env.metadata.get_artifact(earlier.output("train", "model"))
    base = newest_model()
    t = train()
    p = Pipeline("r", [base, t, compare(candidate=t.outputs.model, baseline=base.outputs.artifact)])
    result = env.runner.run(p)
    report = env.metadata.get_artifact(result.output("compare", "report"))
    assert report.properties["baseline"] == existing.id
    assert result.output("newest_model", "artifact") == existing.id
    resolver_exec = env.metadata.get_execution(result.steps["newest_model"].execution_id)
    assert resolver_exec.state is ExecutionState.COMPLETE


def test_required_input_from_an_empty_resolver_fails_with_a_clear_reason(env) -> None:
    base = newest_model()
    result = env.runner.run(Pipeline("r", [base, needs(model=base.outputs.artifact)]))
    assert result.status is RunStatus.FAILED
    assert "input 'model' is empty: newest_model.artifact produced no artifact" in (
        result.steps["needs"].error or ""
    )


def test_resolver_must_take_store_and_pipeline_first() -> None:
    with pytest.raises(InvalidDefinitionError, match="must take \\(store, pipeline, ...\\)"):

        @resolver(output=Model)
        def bad() -> None: ...
