"""The same chain as chain.py, as KFP v2 components (no ``from __future__ import
annotations``: KFP reads the annotations at decoration time)."""

from kfp import dsl


@dsl.component(base_image="python:3.11")
def first(out: dsl.Output[dsl.Dataset]) -> None:
    with open(out.path, "w") as fh:
        fh.write("0")


@dsl.component(base_image="python:3.11")
def step(prev: dsl.Input[dsl.Dataset], out: dsl.Output[dsl.Dataset]) -> None:
    with open(out.path, "w") as fh:
        fh.write("0")


def make_chain(steps: int):  # type: ignore[no-untyped-def]
    @dsl.pipeline(name="chain")
    def chain() -> None:
        task = first()
        for _ in range(steps - 1):
            task = step(prev=task.outputs["out"])

    return chain
