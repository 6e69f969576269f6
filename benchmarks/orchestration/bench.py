"""Orchestration overhead, measured side by side with kfp.local, plus the cached re-run.

    .venv/bin/pip install -e '.[bench-kfp]'      # the peer, once
    .venv/bin/python benchmarks/orchestration/bench.py [--steps 20] [--repeat 5] [--no-kfp]

1. loopline: a chain of N empty steps (each reads the previous output) run by the local
   runner in-process, cache off, SQLite metadata + local artifact store; per-step wall time.
2. kfp.local (SubprocessRunner, use_venv=False): the same chain compiled from KFP components.
3. A fully cached re-run of a 10-step chain as a whole ``loopline run`` process (Python
   start-up, imports, opening the store and all included), median of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CHAIN = HERE / "chain.py"


def loopline_per_step(steps: int, repeat: int) -> list[float]:
    os.environ["CHAIN_STEPS"] = str(steps)
    from loopline.artifacts.fs import FsspecArtifactStore
    from loopline.metadata.urls import open_store
    from loopline.pipeline.loader import load_pipeline
    from loopline.pipeline.runner import LocalRunner

    pipeline = load_pipeline(CHAIN)
    per_step = []
    with tempfile.TemporaryDirectory() as tmp:
        md = open_store(f"sqlite:///{tmp}/loopline.db")
        runner = LocalRunner(
            md, FsspecArtifactStore(f"{tmp}/artifacts"), log_dir=Path(tmp) / "logs", max_workers=2
        )
        runner.run(pipeline, cache=False)  # warm-up: imports, first-run code paths
        for _ in range(repeat):
            start = time.perf_counter()
            result = runner.run(pipeline, cache=False)
            per_step.append((time.perf_counter() - start) / steps)
            assert result.ok
        md.close()
    return per_step


def kfp_per_step(steps: int) -> float:
    from kfp import local

    sys.path.insert(0, str(HERE))
    from kfp_chain import make_chain  # type: ignore[import-not-found]

    chain = make_chain(steps)
    with tempfile.TemporaryDirectory() as tmp:
        local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=tmp)
        start = time.perf_counter()
        chain()
        return (time.perf_counter() - start) / steps


def cached_rerun(repeat: int) -> list[float]:
    env = {**os.environ, "CHAIN_STEPS": "10"}
    # As installed for a user: bytecode caches on (some sandboxes set this variable, which
    # makes every start recompile loopline's own modules).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    exe = Path(sys.executable).with_name("loopline")
    walls = []
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [str(exe), "run", str(CHAIN), "--json"]
        subprocess.run(cmd, cwd=tmp, env=env, check=True, capture_output=True)
        for _ in range(repeat):
            start = time.perf_counter()
            out = subprocess.run(cmd, cwd=tmp, env=env, check=True, capture_output=True, text=True)
            walls.append(time.perf_counter() - start)
            assert '"cached": false' not in out.stdout, "the re-run was not fully cached"
    return walls


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-kfp", action="store_true")
    args = parser.parse_args()

    ours = loopline_per_step(args.steps, args.repeat)
    med = statistics.median(ours)
    print(
        f"loopline   {args.steps}-step chain: median {med * 1000:.1f} ms/step "
        f"(min {min(ours) * 1000:.1f}, max {max(ours) * 1000:.1f}; goal < 20 ms)"
    )
    if not args.no_kfp:
        theirs = kfp_per_step(args.steps)
        print(
            f"kfp.local  {args.steps}-step chain: {theirs * 1000:.0f} ms/step "
            f"→ loopline is {theirs / med:.0f}× faster per step"
        )
    walls = cached_rerun(args.repeat)
    print(
        f"cached re-run of a 10-step pipeline, whole `loopline run` process: median "
        f"{statistics.median(walls):.3f} s (min {min(walls):.3f}; goal < 0.5 s)"
    )


if __name__ == "__main__":
    main()
