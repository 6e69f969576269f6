"""Helpers of the image integration tests (the fixtures are in conftest.py)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(check: Callable[[], bool], deadline: float, what: str) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if check():
            return
        time.sleep(0.5)
    raise AssertionError(f"{what} did not happen within {deadline} s")


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return bool(r.status == 200)
    except OSError:
        return False


def store_env(root: Path) -> dict[str, str]:
    """This process's environment without LOOPLINE_* settings, with a store under ``root``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPLINE_")}
    env |= {"LOOPLINE_DB_URL": f"sqlite:///{root}/metadata.db",
            "LOOPLINE_ARTIFACT_ROOT": str(root / "artifacts"),
            "LOOPLINE_HOME": str(root / "home")}  # fmt: skip
    return env


def loopline(*args: str, env: dict[str, str], cwd: Path, timeout: float = 600) -> str:
    """Run the loopline CLI; its stdout, or an AssertionError with its stderr."""
    proc = subprocess.run([sys.executable, "-m", "loopline.cli", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip
    assert proc.returncode == 0, f"loopline {' '.join(args)}:\n{proc.stderr[-4000:]}"
    return proc.stdout


@dataclass(frozen=True)
class BuiltImage:
    """The session's image.

    Attributes:
        tag: its local name in podman's storage (what kfp.local runs).
        reference: ``REGISTRY/ml/loopline-test@sha256:…``, as pushed (what a cluster pulls).
        digest: the manifest digest the registry stored.
        registry: the local registry's ``host:port``.
        project: the project directory copied to the image's /app.
        env: the environment of the store the taxi model is registered in.
        build_log: ``loopline build``'s stderr.
    """

    tag: str
    reference: str
    digest: str
    registry: str
    project: Path
    env: dict[str, str]
    build_log: str
