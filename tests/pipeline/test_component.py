from __future__ import annotations

import pytest

from loopline.errors import InvalidDefinitionError
from loopline.pipeline import Dataset, Input, Model, Output, StepContext, component


def test_signature_declares_ports_parameters_and_context() -> None:
    @component(retries=2, timeout=5, cache=False, isolation="process")
    def train(
        data: Input[Dataset],
        model: Output[Model],
        ctx: StepContext,
        base: Input[Model] | None = None,
        lr: float = 0.1,
        tags: list | None = None,
    ) -> None: ...

    assert set(train.inputs) == {"data", "base"}
    assert train.inputs["base"].optional and not train.inputs["data"].optional
    assert set(train.outputs) == {"model"}
    assert set(train.parameters) == {"lr", "tags"}
    assert train.context_arg == "ctx"
    assert (
        train.options.retries,
        train.options.timeout,
        train.options.cache,
        train.options.isolation,
    ) == (2, 5, False, "process")


def test_rejects_parameter_without_annotation() -> None:
    with pytest.raises(InvalidDefinitionError, match="parameter 'x' has no type annotation"):

        @component
        def f(x) -> None: ...  # type: ignore[no-untyped-def]


def test_rejects_unsupported_parameter_type() -> None:
    with pytest.raises(InvalidDefinitionError, match="parameters must be int, float"):

        @component
        def f(x: complex = 1j) -> None: ...


def test_rejects_default_of_the_wrong_type() -> None:
    with pytest.raises(InvalidDefinitionError, match="defaults to 'a', which is not a int"):

        @component
        def f(x: int = "a") -> None: ...  # type: ignore[assignment]


def test_rejects_optional_output() -> None:
    with pytest.raises(InvalidDefinitionError, match="an output cannot be optional"):

        @component
        def f(out: Output[Model] | None = None) -> None: ...


def test_rejects_bad_options() -> None:
    with pytest.raises(InvalidDefinitionError, match="retries=-1 must be an integer"):
        component(retries=-1)
    with pytest.raises(InvalidDefinitionError, match="isolation='docker'"):
        component(isolation="docker")  # type: ignore[arg-type]


def test_calling_a_component_makes_a_step_and_runs_nothing() -> None:
    calls = []

    @component
    def f(out: Output[Dataset]) -> None:
        calls.append(1)

    step = f()
    assert step.id == "f" and calls == []
