"""A chain of N near-empty steps for the benchmarks: each reads the previous step's output file
and writes a small output file of its own (prefect_chain.py, dagster_chain.py and kfp_chain.py
do the same work)."""

from __future__ import annotations

import os

from loopline.pipeline import Dataset, Input, Output, Pipeline, component

N = int(os.environ.get("CHAIN_STEPS", "20"))


@component
def first(out: Output[Dataset]) -> None:
    (out.path / "x").write_text("0")


@component
def step(prev: Input[Dataset], out: Output[Dataset]) -> None:
    (out.path / "x").write_text((prev.path / "x").read_text())


steps = [first()]
for i in range(1, N):
    steps.append(step(prev=steps[-1].outputs.out).with_id(f"step_{i}"))
pipeline = Pipeline(f"chain{N}", steps)
