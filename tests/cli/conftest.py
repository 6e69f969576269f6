from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def loopline(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run the real ``loopline`` CLI in a fresh working directory (its own DB and store)."""

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPLINE_")}
        env["COLUMNS"] = "200"
        proc = subprocess.run(
            [sys.executable, "-m", "loopline.cli", *args],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"loopline {' '.join(args)} exited {proc.returncode}:\n"
                                 f"{proc.stdout}\n{proc.stderr}")
        return proc

    return run


def as_json(proc: subprocess.CompletedProcess[str]) -> object:
    return json.loads(proc.stdout)
