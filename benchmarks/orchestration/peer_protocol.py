"""The line protocol between bench.py and a peer's chain running in its own venv.

A peer script (prefect_chain.py, dagster_chain.py) imports only the standard library and its
engine, so it runs with that engine's venv python. ``serve`` keeps one warm process per peer
for the whole benchmark, so its runs interleave with loopline's and kfp.local's:

    peer -> {"ready": true, "engine": ..., "version": ..., "python": ...}   after a warm-up run
    bench -> "run"      peer -> {"seconds": <wall of one whole chain run>, "steps": N}
    bench -> "quit"     (or end of input): the peer exits

JSON lines go to the original stdout only; whatever the engine prints (logs, banners) is
sent to stderr, which bench.py keeps in a log file.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from collections.abc import Callable
from typing import IO, Any


def protocol_stdout() -> IO[str]:
    """Keep fd 1 for protocol lines; everything else printed from here on goes to stderr."""
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return out


def emit(out: IO[str], payload: dict[str, Any]) -> None:
    out.write(json.dumps(payload) + "\n")
    out.flush()


def serve(engine: str, version: str, steps: int, run_once: Callable[[], None]) -> None:
    out = protocol_stdout()
    run_once()  # warm-up: imports, first-run code paths, the engine's own start-up
    emit(
        out,
        {"ready": True, "engine": engine, "version": version, "python": platform.python_version()},
    )
    for line in sys.stdin:
        command = line.strip()
        if command == "quit":
            break
        if command != "run":
            emit(out, {"error": f"unknown command {command!r}; expected 'run' or 'quit'"})
            continue
        start = time.perf_counter()
        run_once()
        emit(out, {"seconds": time.perf_counter() - start, "steps": steps})
