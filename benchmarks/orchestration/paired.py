"""A cut against its baseline, paired: loopline's 20-step chain (chain.py, cache off) in one
fresh process per variant — this tree and another source tree (``--baseline-src``), each
with real fsync and with ``os.fsync`` a no-op (diagnostic) — in interleaved rounds, counting
fsyncs per step. Prints every run's ms/step and the medians.

    .venv/bin/python benchmarks/orchestration/paired.py --baseline-src DIR/src \\
        [--rounds 3] [--runs 4] [--steps 20]

(``git archive REV src | tar -x -C DIR`` makes DIR/src from a commit.)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def child(runs: int, steps: int, nofsync: bool) -> dict[str, object]:
    """One variant's runs, in this (fresh) process; the caller sets PYTHONPATH."""
    os.environ["CHAIN_STEPS"] = str(steps)
    import loopline
    from loopline.artifacts.fs import FsspecArtifactStore
    from loopline.metadata.urls import open_store
    from loopline.pipeline.loader import load_pipeline
    from loopline.pipeline.runner import LocalRunner

    with tempfile.TemporaryDirectory(prefix="orch-paired-") as tmp:
        root = Path(tmp)
        pipeline = load_pipeline(HERE / "chain.py")
        md = open_store(f"sqlite:///{root}/loopline.db")
        runner = LocalRunner(
            md, FsspecArtifactStore(f"{root}/artifacts"), log_dir=root / "logs", max_workers=2
        )
        real = os.fsync
        count = 0

        def fsync(fd: int) -> None:
            nonlocal count
            count += 1
            if not nofsync:
                real(fd)

        os.fsync = fsync
        assert runner.run(pipeline, cache=False).ok  # warm-up
        count = 0
        ms = []
        for _ in range(runs):
            start = time.perf_counter()
            assert runner.run(pipeline, cache=False).ok
            ms.append((time.perf_counter() - start) / steps * 1000)
        md.close()
    return {
        "source": str(Path(loopline.__file__).resolve().parents[1]),
        "ms_per_step": ms,
        "fsyncs_per_step": count / (runs * steps),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--baseline-src", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--child", choices=["fsync", "nofsync"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.runs, args.steps, args.child == "nofsync")))
        return
    variants = [
        (f"{tree} {mode}", src, mode)
        for tree, src in (("baseline", str(args.baseline_src)), ("this tree", ""))
        for mode in ("nofsync", "fsync")
    ]
    results: dict[str, list[float]] = {name: [] for name, _, _ in variants}
    fsyncs: dict[str, float] = {}
    print(f"load average {os.getloadavg()[0]:.1f} at the start")
    for round_ in range(args.rounds):
        for name, src, mode in variants:
            env = {**os.environ, "PYTHONPATH": src}
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            out = subprocess.run(
                [sys.executable, __file__, "--baseline-src", str(args.baseline_src), "--child",
                 mode, "--runs", str(args.runs), "--steps", str(args.steps)],
                env=env, check=True, capture_output=True, text=True,
            )
            answer = json.loads(out.stdout.strip().splitlines()[-1])
            results[name].extend(answer["ms_per_step"])
            fsyncs[name] = answer["fsyncs_per_step"]
            runs = " ".join(f"{v:.1f}" for v in answer["ms_per_step"])
            print(f"round {round_ + 1} {name:18} ms/step {runs}  ({answer['source']})")
    print(f"load average {os.getloadavg()[0]:.1f} at the end")
    for name, values in results.items():
        print(f"{name:18} median {statistics.median(values):6.1f} ms/step (min "
              f"{min(values):.1f}), {fsyncs[name]:.2f} fsyncs/step")


if __name__ == "__main__":
    main()
