"""The benchmark chain as N Dagster assets, materialized in process (its own venv).

    PY=/tmp/loopline-orchestration-peers/dagster/bin/python     # setup_peers.sh
    $PY benchmarks/orchestration/dagster_chain.py serve --steps 20     # driven by bench.py

``step_0 -> step_1 -> ... -> step_{N-1}``: each asset takes the previous asset's value as its
input and returns a small value of its own. ``materialize(assets, instance=
DagsterInstance.ephemeral())`` runs them with the in-process executor and the default IO
manager for ``materialize`` (the filesystem one: each output is pickled to a file under a
temporary directory and the next asset's input is loaded from that file), so every step reads
the previous step's output and writes a small output artifact, as chain.py's steps do.

Dagster has no cache for ``materialize``: it re-executes every selected asset (skipping
unchanged assets is the job of its daemon's declarative automation, which needs a deployment),
so there is no cached variant here.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path


def build(steps: int, workdir: Path):  # type: ignore[no-untyped-def]
    from dagster import AssetIn, DagsterInstance, asset, materialize

    def make(i: int):  # type: ignore[no-untyped-def]
        if i == 0:

            @asset(name="step_0")
            def first() -> str:
                return "0"

            return first

        @asset(name=f"step_{i}", ins={"prev": AssetIn(key=f"step_{i - 1}")})
        def step(prev: str) -> str:
            return prev

        return step

    assets = [make(i) for i in range(steps)]
    instance = DagsterInstance.ephemeral(tempdir=str(workdir))

    def run_once() -> None:
        result = materialize(assets, instance=instance)
        assert result.success
        assert len(result.asset_materializations_for_node("step_0")) == 1

    return run_once


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["serve"])
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()

    import dagster

    with tempfile.TemporaryDirectory(prefix="dagster-chain-") as tmp:
        run_once = build(args.steps, Path(tmp))
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from peer_protocol import serve

        serve("dagster", dagster.__version__, args.steps, run_once)


if __name__ == "__main__":
    main()
