from __future__ import annotations

import pytest

from loopline.errors import InvalidDefinitionError
from loopline.pipeline import (
    Dataset,
    Examples,
    Input,
    Model,
    Output,
    OutputRef,
    Param,
    Pipeline,
    Schema,
    component,
)


@component
def make(out: Output[Examples], rows: int = 3) -> None: ...


@component
def train(data: Input[Dataset], model: Output[Model], lr: float = 0.1) -> None: ...


@component
def check(schema: Input[Schema]) -> None: ...


def test_orders_steps_topologically_whatever_the_listing_order() -> None:
    m = make()
    t = train(data=m.outputs.out)
    assert [s.id for s in Pipeline("p", [t, m]).steps] == ["make", "train"]


def test_subtype_output_feeds_a_supertype_input() -> None:
    m = make()
    Pipeline("p", [m, train(data=m.outputs.out)])  # Examples is a Dataset


def test_rejects_type_mismatch_naming_step_and_port() -> None:
    m = make()
    with pytest.raises(
        InvalidDefinitionError,
        match="step 'check' input 'schema' expects Schema but make.out is Examples",
    ):
        Pipeline("p", [m, check(schema=m.outputs.out)])


def test_rejects_missing_input_naming_step_and_port() -> None:
    with pytest.raises(InvalidDefinitionError, match="step 'train' input 'data'.*not connected"):
        Pipeline("p", [train()])


def test_rejects_duplicate_step_names() -> None:
    with pytest.raises(InvalidDefinitionError, match="two steps named 'make'.*with_id"):
        Pipeline("p", [make(), make()])


def test_with_id_allows_a_component_twice() -> None:
    a, b = make(), make(rows=5).with_id("make_more")
    assert {s.id for s in Pipeline("p", [a, b]).steps} == {"make", "make_more"}


@component
def refine(model: Input[Model], better: Output[Model]) -> None: ...


def test_rejects_a_cycle_naming_the_steps() -> None:
    loop_a = refine(model=OutputRef("b", "better", "Model")).with_id("a")
    loop_b = refine(model=OutputRef("a", "better", "Model")).with_id("b")
    with pytest.raises(InvalidDefinitionError, match="cycle through steps a, b"):
        Pipeline("p", [loop_a, loop_b])


def test_rejects_reference_to_a_step_not_in_the_pipeline() -> None:
    m = make()
    with pytest.raises(InvalidDefinitionError, match="no step 'make'. Add that step"):
        Pipeline("p", [train(data=m.outputs.out)])


def test_rejects_unknown_output_port() -> None:
    with pytest.raises(InvalidDefinitionError, match="Step 'make' has no output 'outt'"):
        _ = make().outputs.outt


def test_rejects_unknown_argument_when_the_step_is_made() -> None:
    with pytest.raises(InvalidDefinitionError, match="unknown argument.*rowz"):
        make(rowz=3)


def test_rejects_parameter_of_the_wrong_type() -> None:
    with pytest.raises(InvalidDefinitionError, match="parameter 'rows' expects int, got 'x'"):
        Pipeline("p", [make(rows="x")])


def test_rejects_artifact_passed_as_a_parameter() -> None:
    m = make()
    with pytest.raises(InvalidDefinitionError, match="parameter 'lr' got the artifact"):
        Pipeline("p", [m, train(data=m.outputs.out, lr=m.outputs.out)])


def test_params_collects_run_time_parameters_with_defaults() -> None:
    m = make(rows=Param("rows", 10))
    assert dict(Pipeline("p", [m]).params()) == {"rows": 10}


def test_rejects_conflicting_parameter_defaults() -> None:
    a = make(rows=Param("rows", 10))
    b = make(rows=Param("rows", 20)).with_id("b")
    with pytest.raises(InvalidDefinitionError, match="parameter 'rows' has two defaults"):
        Pipeline("p", [a, b]).params()


def test_pipeline_name_must_be_safe() -> None:
    with pytest.raises(Exception, match="Pipeline name 'bad name' is not valid"):
        Pipeline("bad name", [make()])


def test_downstream_lists_transitive_dependents() -> None:
    m = make()
    t = train(data=m.outputs.out)
    p = Pipeline("p", [m, t])
    assert p.downstream("make") == {"train"}
