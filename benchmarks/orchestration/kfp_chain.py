"""The same chain as chain.py, as KFP v2 components (no ``from __future__ import
annotations``: KFP reads the annotations at decoration time).

bench.py imports ``make_chain`` for the per-step runs. As a script (project venv, with
``.[bench-kfp]``), one cached run as a whole process, for the cached re-run:

    .venv/bin/python benchmarks/orchestration/kfp_chain.py cached --steps 10 --dir DIR

``kfp.local`` (SubprocessRunner, use_venv=False) with ``enable_caching=True`` and the cache
under DIR; prints ``{"steps": N, "cached": K}``, K counting the tasks whose outputs came from its cache.
Run it twice on the same DIR and time the second process.
"""

import argparse
import contextlib
import json
import sys
from pathlib import Path

from kfp import dsl


@dsl.component(base_image="python:3.11")
def first(out: dsl.Output[dsl.Dataset]) -> None:
    with open(out.path, "w") as fh:
        fh.write("0")


@dsl.component(base_image="python:3.11")
def step(prev: dsl.Input[dsl.Dataset], out: dsl.Output[dsl.Dataset]) -> None:
    with open(prev.path) as src:
        value = src.read()
    with open(out.path, "w") as fh:
        fh.write(value)


def make_chain(steps: int):  # type: ignore[no-untyped-def]
    @dsl.pipeline(name="chain")
    def chain() -> None:
        task = first()
        for _ in range(steps - 1):
            task = step(prev=task.outputs["out"])

    return chain


def main() -> None:
    from kfp import local
    from kfp.local import cache

    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["cached"])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--dir", type=Path, required=True)
    args = parser.parse_args()

    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=str(args.dir / "pipeline_root"),
        enable_caching=True,
        cache_root=str(args.dir / "cache"),
    )
    hits = []
    lookup = cache.LocalCache.get

    def counted(self: cache.LocalCache, key: str) -> object:
        found = lookup(self, key)
        hits.append(found is not None)
        return found

    cache.LocalCache.get = counted  # type: ignore[method-assign]
    # kfp.local logs to sys.stdout (its own handler on the root logger, for the run only).
    with contextlib.redirect_stdout(sys.stderr):
        make_chain(args.steps)()
    print(json.dumps({"steps": args.steps, "cached": sum(hits)}))


if __name__ == "__main__":
    main()
