"""Orchestration overhead side by side with the local engines a team would pick instead:
kfp.local, Prefect 3 and Dagster; plus each engine's fully cached re-run as a whole process.

    .venv/bin/pip install -e '.[bench-kfp]'                     # kfp.local, once
    bash benchmarks/orchestration/setup_peers.sh                # Prefect and Dagster venvs, once
    .venv/bin/python benchmarks/orchestration/bench.py [--steps 20] [--repeat 5] \\
        [--prefect-python P] [--dagster-python P] [--no-kfp] [--json-out FILE] \\
        [--baseline-src DIR/src] [--diagnose-fsync]

The chain: N steps, each reading the previous step's output and writing a small output
(chain.py, kfp_chain.py, prefect_chain.py, dagster_chain.py).

1. Per step, cache off, interleaved: every engine runs its chain once (warm-up), then
   ``--repeat`` rounds in which each engine runs it once more, in a rotated order; a run's wall
   time / N is one per-step figure, the median of the rounds is reported.
   - loopline: the local runner in this process, SQLite metadata + local artifact store.
   - kfp.local: SubprocessRunner(use_venv=False) in this process (a Python process per task).
   - ``--baseline-src DIR``: loopline from another source tree (e.g. the commit before a
     cut: ``git archive REV src | tar -x -C DIR``, then ``DIR/src``) in a warm process of its
     own (loopline_chain.py), in the same rounds.
   - ``--diagnose-fsync``: loopline again with ``os.fsync`` a no-op (not a mode loopline
     has; it shows what durable artifact publishing costs per step).
   - Prefect, Dagster: one warm process each, in its own venv, driven over the line protocol of
     peer_protocol.py (their stderr goes to a log file named at the end).
2. The cached re-run of a ``--cached-steps`` chain as a whole process (start-up, imports,
   opening the stores included), for each engine that has a cache: ``loopline run``, kfp.local
   with ``enable_caching=True``, Prefect with ``cache_policy=INPUTS + TASK_SOURCE``. One priming
   run each, then ``--repeat`` interleaved timed runs; each must report every step cached.
   Dagster's ``materialize`` has no cache (dagster_chain.py).

The load average (1 min) is printed before and after each part: the VM is shared.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

HERE = Path(__file__).resolve().parent
CHAIN = HERE / "chain.py"
DEFAULT_VENVS = Path(os.environ.get("LOOPLINE_PEER_VENVS", "/tmp/loopline-orchestration-peers"))


def child_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, **extra}
    # As installed for a user: bytecode caches on (this sandbox sets the variable, which makes
    # every start recompile the modules that have no .pyc yet).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.pop("PREFECT_API_URL", None)
    return env


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (5 min {five:.1f})"


class Loopline:
    name = "loopline"

    def __init__(self, steps: int, tmp: Path) -> None:
        os.environ["CHAIN_STEPS"] = str(steps)
        from loopline.artifacts.fs import FsspecArtifactStore
        from loopline.metadata.urls import open_store
        from loopline.pipeline.loader import load_pipeline
        from loopline.pipeline.runner import LocalRunner

        self.steps = steps
        self.pipeline = load_pipeline(CHAIN)
        self.md = open_store(f"sqlite:///{tmp}/loopline.db")
        self.runner = LocalRunner(
            self.md, FsspecArtifactStore(f"{tmp}/artifacts"), log_dir=tmp / "logs", max_workers=2
        )
        self.version = _version("loopline")

    def run(self) -> float:
        start = time.perf_counter()
        result = self.runner.run(self.pipeline, cache=False)
        elapsed = time.perf_counter() - start
        assert result.ok
        return elapsed

    def close(self) -> None:
        self.md.close()


class LooplineNoFsync(Loopline):
    """Diagnostic only, not a mode loopline has: the same runner with ``os.fsync`` a no-op
    for the run, to show what durable artifact publishing (fsync of each file and directory
    entry) costs per step next to peers that do not fsync."""

    name = "loopline-nofsync"

    def run(self) -> float:
        real = os.fsync
        os.fsync = lambda fd: None
        try:
            return super().run()
        finally:
            os.fsync = real


class Kfp:
    name = "kfp.local"

    def __init__(self, steps: int, tmp: Path, log: IO[str]) -> None:
        from kfp import local

        sys.path.insert(0, str(HERE))
        from kfp_chain import make_chain  # type: ignore[import-not-found]

        self.chain = make_chain(steps)
        self.log = log
        local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp))
        self.version = _version("kfp")

    def run(self) -> float:
        # kfp.local logs every task's executor input and output to sys.stdout.
        with contextlib.redirect_stdout(self.log):
            start = time.perf_counter()
            self.chain()
            return time.perf_counter() - start

    def close(self) -> None:
        pass


class Peer:
    """A peer's chain in its own venv, one warm process over peer_protocol.py's lines."""

    def __init__(
        self, name: str, python: str, script: str, steps: int, log: IO[str], **env: str
    ) -> None:
        self.name = name
        self.proc = subprocess.Popen(
            [python, str(HERE / script), "serve", "--steps", str(steps)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env=child_env(**env),
        )
        ready = self._read()
        if not ready.get("ready"):
            raise RuntimeError(f"{name} did not start: {ready}")
        self.version = f"{ready['version']} (Python {ready['python']})"

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(
                f"{self.name} exited with {self.proc.wait()}; its stderr is in the peers' log"
            )
        answer: dict[str, Any] = json.loads(line)
        return answer

    def run(self) -> float:
        assert self.proc.stdin is not None
        self.proc.stdin.write("run\n")
        self.proc.stdin.flush()
        answer = self._read()
        if "seconds" not in answer:
            raise RuntimeError(f"{self.name} answered {answer}")
        return float(answer["seconds"])

    def close(self) -> None:
        assert self.proc.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            self.proc.stdin.write("quit\n")
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _version(dist: str) -> str:
    from importlib.metadata import version

    return version(dist)


def per_step(engines: list[Any], steps: int, repeat: int) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {engine.name: [] for engine in engines}
    for engine in engines:
        engine.run()  # warm-up: imports, first-run code paths
    for round_ in range(repeat):
        shift = round_ % len(engines)
        for engine in engines[shift:] + engines[:shift]:
            results[engine.name].append(engine.run() / steps)
    return results


@contextlib.contextmanager
def cwd_tmp() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="orch-cached-") as tmp:
        yield Path(tmp)


def cached_commands(
    steps: int, prefect_python: str | None, kfp: bool, baseline_src: Path | None = None
) -> list[tuple[str, Callable[[Path], list[str]]]]:
    loopline_exe = str(Path(sys.executable).with_name("loopline"))
    commands: list[tuple[str, Callable[[Path], list[str]]]] = [
        ("loopline", lambda d: [loopline_exe, "run", str(CHAIN), "--json"]),
    ]
    if baseline_src is not None:
        commands.append(
            (
                "loopline-baseline",
                lambda d: ["/usr/bin/env", f"PYTHONPATH={baseline_src}", loopline_exe, "run",
                           str(CHAIN), "--json"],
            )
        )
    if kfp:
        commands.append(
            (
                "kfp.local",
                lambda d: [sys.executable, str(HERE / "kfp_chain.py"), "cached", "--steps",
                           str(steps), "--dir", str(d)],
            )
        )
    if prefect_python:
        commands.append(
            (
                "prefect",
                lambda d: [prefect_python, str(HERE / "prefect_chain.py"), "cached", "--steps",
                           str(steps), "--dir", str(d)],
            )
        )
    return commands


def fully_cached(name: str, stdout: str, steps: int) -> bool:
    if name.startswith("loopline"):
        run = json.loads(stdout)
        return len(run["steps"]) == steps and all(step["cached"] for step in run["steps"])
    answer = json.loads(stdout.strip().splitlines()[-1])
    return bool(answer["cached"] == steps)


def cached_reruns(
    steps: int,
    repeat: int,
    prefect_python: str | None,
    kfp: bool,
    log: IO[str],
    baseline_src: Path | None = None,
) -> dict[str, list[float]]:
    env = child_env(CHAIN_STEPS=str(steps))
    commands = cached_commands(steps, prefect_python, kfp, baseline_src)
    walls: dict[str, list[float]] = {name: [] for name, _ in commands}
    with contextlib.ExitStack() as stack:
        dirs = {name: stack.enter_context(cwd_tmp()) for name, _ in commands}
        for name, command in commands:  # priming run: fills the cache
            subprocess.run(
                command(dirs[name]), cwd=dirs[name], env=env, check=True, stdout=log, stderr=log
            )
        for round_ in range(repeat):
            shift = round_ % len(commands)
            for name, command in commands[shift:] + commands[:shift]:
                start = time.perf_counter()
                out = subprocess.run(
                    command(dirs[name]), cwd=dirs[name], env=env, check=True, text=True,
                    stdout=subprocess.PIPE, stderr=log,
                )
                walls[name].append(time.perf_counter() - start)
                if not fully_cached(name, out.stdout, steps):
                    raise RuntimeError(f"the {name} re-run was not fully cached: {out.stdout}")
    return walls


def default_python(name: str) -> str | None:
    python = DEFAULT_VENVS / name / "bin" / "python"
    return str(python) if python.exists() else None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--cached-steps", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-kfp", action="store_true")
    parser.add_argument("--prefect-python", default=default_python("prefect"))
    parser.add_argument("--dagster-python", default=default_python("dagster"))
    parser.add_argument("--no-peers", action="store_true", help="loopline and kfp.local only")
    parser.add_argument("--no-cached", action="store_true")
    parser.add_argument("--json-out", type=Path)
    parser.add_argument(
        "--baseline-src", type=Path,
        help="another loopline source tree (its src/ folder, e.g. from `git archive`) run in "
             "the same rounds as loopline-baseline: a cut measured against its baseline",
    )
    parser.add_argument(
        "--diagnose-fsync", action="store_true",
        help="also run loopline with os.fsync a no-op (diagnostic: the cost of durability)",
    )
    args = parser.parse_args()
    if args.no_peers:
        args.prefect_python = args.dagster_python = None
    for flag, python in (("--prefect-python", args.prefect_python),
                         ("--dagster-python", args.dagster_python)):
        if python is None:
            print(f"{flag} not given and no venv under {DEFAULT_VENVS}: skipped "
                  "(benchmarks/orchestration/setup_peers.sh makes it)")

    report: dict[str, Any] = {"steps": args.steps, "repeat": args.repeat, "load": {}}
    logs = Path(tempfile.mkdtemp(prefix="orch-bench-logs-"))
    print(f"{load()}; engines' logs in {logs}")
    report["load"]["start"] = os.getloadavg()[0]
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        peer_log = stack.enter_context(open(logs / "peers.log", "w"))
        engines: list[Any] = [Loopline(args.steps, tmp / "loopline")]
        if args.diagnose_fsync:
            engines.append(LooplineNoFsync(args.steps, tmp / "loopline-nofsync"))
        if args.baseline_src:
            engines.append(Peer("loopline-baseline", sys.executable, "loopline_chain.py",
                                args.steps, peer_log, PYTHONPATH=str(args.baseline_src)))
        if not args.no_kfp:
            kfp_log = stack.enter_context(open(logs / "kfp.log", "w"))
            engines.append(Kfp(args.steps, tmp / "kfp", kfp_log))
        if args.prefect_python:
            engines.append(Peer("prefect", args.prefect_python, "prefect_chain.py", args.steps,
                                peer_log))
        if args.dagster_python:
            engines.append(Peer("dagster", args.dagster_python, "dagster_chain.py", args.steps,
                                peer_log))
        for engine in engines:
            stack.callback(engine.close)
        results = per_step(engines, args.steps, args.repeat)
        versions = {engine.name: engine.version for engine in engines}
    report["load"]["after_per_step"] = os.getloadavg()[0]
    ours = statistics.median(results["loopline"])
    print(f"\nper step, {args.steps}-step chain, cache off, median of {args.repeat} "
          f"interleaved rounds ({load()}):")
    for name, figures in results.items():
        med = statistics.median(figures)
        ratio = "" if name.startswith("loopline") else f"  loopline {med / ours:.1f}x faster"
        if name == "loopline-baseline":
            ratio = f"  this tree {med / ours:.1f}x faster"
        print(f"  {name:16} {versions[name]:24} {med * 1000:8.1f} ms/step "
              f"(min {min(figures) * 1000:.1f}, max {max(figures) * 1000:.1f}){ratio}")
    report["per_step_ms"] = {k: [v * 1000 for v in vs] for k, vs in results.items()}
    report["versions"] = versions

    if not args.no_cached:
        with open(logs / "cached.log", "w") as log:
            walls = cached_reruns(args.cached_steps, args.repeat, args.prefect_python,
                                  not args.no_kfp, log, args.baseline_src)
        report["load"]["after_cached"] = os.getloadavg()[0]
        print(f"\nfully cached re-run of a {args.cached_steps}-step chain, whole process, "
              f"median of {args.repeat} interleaved ({load()}):")
        for name, figures in walls.items():
            print(f"  {name:16} {statistics.median(figures):7.3f} s "
                  f"(min {min(figures):.3f}, max {max(figures):.3f})")
        if args.dagster_python:
            print("  dagster          no cache for materialize (see dagster_chain.py)")
        report["cached_rerun_s"] = walls
    if args.json_out:
        args.json_out.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
