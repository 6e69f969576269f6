"""Two real ``loopline controlplane`` processes, two homes, one database: one runs the
controllers, the other is a standby, and it takes over after the first is killed with -9
(once the lease expires)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from loopline.controlplane.files import ControlPlaneFiles, Endpoint
from loopline.testing.artifacts import wait_for


def _start(home: Path, db_url: str, log: Path) -> tuple[subprocess.Popen[bytes], Endpoint]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPLINE_")}
    env.update(LOOPLINE_DB_URL=db_url, LOOPLINE_HOME=str(home),
               LOOPLINE_ARTIFACT_ROOT=str(home.parent / "artifacts"))  # fmt: skip
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "loopline.cli", "controlplane"],
            env=env, stdout=out, stderr=out, start_new_session=True,
        )  # fmt: skip
    files = ControlPlaneFiles(home)
    found: list[Endpoint] = []

    def written() -> bool:
        endpoint = files.read_endpoint()
        if endpoint is not None and endpoint.pid == proc.pid:
            found.append(endpoint)
            return True
        assert proc.poll() is None, f"the control plane exited: {log.read_text()}"
        return False

    wait_for(written, timeout=60, what="the control plane to write endpoint.json")
    return proc, found[0]


def _controllers(endpoint: Endpoint) -> str:
    return str(httpx.get(endpoint.url + "/healthz", timeout=10).json()["controllers"])


@pytest.mark.slow
def test_two_homes_on_one_database_run_one_controller_and_the_standby_takes_over(
    tmp_path: Path,
) -> None:
    db_url = f"sqlite:///{tmp_path / 'meta.db'}"
    procs = []
    try:
        first, first_at = _start(tmp_path / "home-a", db_url, tmp_path / "a.log")
        procs.append(first)
        wait_for(lambda: _controllers(first_at) == "active", timeout=60,
                 what="the first control plane to run the controllers")  # fmt: skip
        second, second_at = _start(tmp_path / "home-b", db_url, tmp_path / "b.log")
        procs.append(second)
        health = httpx.get(second_at.url + "/healthz", timeout=10).json()
        assert health["controllers"] == "standby"
        assert f"pid {first.pid}" in health["leader"]
        assert str(tmp_path / "home-a") in health["leader"]
        assert _controllers(first_at) == "active"
        os.kill(first.pid, signal.SIGKILL)
        first.wait(30)
        wait_for(lambda: _controllers(second_at) == "active", timeout=90,
                 what="the standby to take over once the lease expired")  # fmt: skip
        assert "Standby: the controllers of this database run in" in (
            tmp_path / "b.log"
        ).read_text()
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(10)

