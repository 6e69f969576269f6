"""The benchmark chain as a Prefect 3 flow of N tasks, run in process (its own venv).

    PY=/tmp/loopline-orchestration-peers/prefect/bin/python     # setup_peers.sh
    $PY benchmarks/orchestration/prefect_chain.py serve --steps 20     # driven by bench.py
    $PY benchmarks/orchestration/prefect_chain.py cached --steps 10 --dir DIR

Each task reads the previous task's output file and writes its own small file (the same work
as chain.py's steps) and returns the file's path, which the next task takes as its input.
Tasks are called directly inside the flow (the chain is sequential; ``.submit`` would only
add a thread hop).

No server and no network: PREFECT_API_URL is removed, so Prefect uses its ephemeral API
(an in-process SQLite database under PREFECT_HOME, a temporary directory unless the caller
sets it), with telemetry and update checks off.

``serve``: cache off (``cache_policy=NO_CACHE``, results not persisted), the line protocol of
peer_protocol.py. ``cached``: one run of the flow with ``cache_policy=INPUTS + TASK_SOURCE``
and persisted results under DIR (PREFECT_HOME under DIR too), then one JSON line
``{"steps": N, "cached": K}`` where K counts the task runs that ended in the Cached state;
run it twice on the same DIR and time the second process for the cached re-run.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path


def configure(home: Path) -> None:
    """Server-less, offline Prefect: must run before ``import prefect``."""
    os.environ.pop("PREFECT_API_URL", None)
    os.environ.pop("PREFECT_API_KEY", None)
    os.environ.setdefault("PREFECT_HOME", str(home))
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    os.environ["DO_NOT_TRACK"] = "1"
    os.environ["PREFECT_SERVER_EPHEMERAL_ENABLED"] = "true"
    # A fresh PREFECT_HOME migrates its SQLite database first: 20-40 s on this 2-vCPU VM,
    # past Prefect's default 20 s start-up timeout.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")


def build(steps: int, workdir: Path, cached: bool):  # type: ignore[no-untyped-def]
    from prefect import flow, task
    from prefect.cache_policies import INPUTS, NO_CACHE, TASK_SOURCE

    options = (
        {"cache_policy": INPUTS + TASK_SOURCE, "persist_result": True}
        if cached
        else {"cache_policy": NO_CACHE, "persist_result": False}
    )

    @task(**options)
    def first(out_dir: str) -> str:
        out = Path(out_dir) / "x"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("0")
        return str(out)

    @task(**options)
    def step(prev: str, out_dir: str) -> str:
        value = Path(prev).read_text()
        out = Path(out_dir) / "x"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(value)
        return str(out)

    steps_of = [step.with_options(name=f"step_{i}") for i in range(steps)]
    states: list[object] = []

    @flow(name=f"chain{steps}", persist_result=False)
    def chain(root: str) -> None:
        states.clear()
        states.append(first(f"{root}/step_0", return_state=True))
        for i in range(1, steps):
            prev = states[-1].result()  # type: ignore[attr-defined]
            states.append(steps_of[i](prev, f"{root}/step_{i}", return_state=True))

    def run_once() -> list[object]:
        chain(str(workdir / "outputs"))
        return list(states)

    return run_once


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["serve", "cached"])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--dir", type=Path, help="working directory (cached: keep it between runs)")
    args = parser.parse_args()

    if args.dir is None:
        workdir = Path(tempfile.mkdtemp(prefix="prefect-chain-"))
        # Registered before Prefect is imported, so it runs after Prefect's own exit hooks
        # (which stop its temporary server).
        atexit.register(shutil.rmtree, workdir, ignore_errors=True)
    else:
        workdir = args.dir
    workdir.mkdir(parents=True, exist_ok=True)
    configure(workdir / "prefect_home")
    if args.mode == "cached":
        os.environ["PREFECT_LOCAL_STORAGE_PATH"] = str(workdir / "results")

    import prefect

    run_once = build(args.steps, workdir, cached=args.mode == "cached")
    if args.mode == "serve":
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from peer_protocol import serve

        serve("prefect", prefect.__version__, args.steps, run_once)
        return
    states = run_once()
    cached = sum(1 for state in states if state.name == "Cached")
    assert all(state.is_completed() for state in states), [s.name for s in states]
    print(json.dumps({"steps": args.steps, "cached": cached, "version": prefect.__version__}))


if __name__ == "__main__":
    main()
