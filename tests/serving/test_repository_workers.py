"""The model repository extension on a real `loopline serve --repository DIR --workers 2`:
a load or unload that reaches one worker reaches both, and a restarted worker applies them
before it serves."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.serving.conftest import Models

from loopline.testing.artifacts import wait_for

pytestmark = pytest.mark.slow

TOKEN = "workers-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CONNECTIONS = 40  # fresh connections, spread by the kernel: all on one of 2 workers ~ 2**-39


class Server:
    """``python -m loopline.cli.serve_process ARGS`` on a free port."""

    def __init__(self, args: list[str], cwd: Path) -> None:
        argv = [sys.executable, "-m", "loopline.cli.serve_process", "--port", "0", *args]
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, cwd=cwd)  # fmt: skip
        lines: list[str] = []
        assert self.proc.stdout is not None
        reader = threading.Thread(target=lambda: lines.append(self.proc.stdout.readline()),  # type: ignore[union-attr]
                                  daemon=True)  # fmt: skip
        reader.start()
        reader.join(120)
        if not lines or "listening on" not in lines[0]:
            self.stop()
            raise RuntimeError(f"the server did not start: {lines}")
        self.url = lines[0].split("listening on ")[1].split()[0]

    def workers(self) -> list[int]:
        path = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        return [int(p) for p in path.read_text().split()]

    def listens(self, pid: int) -> bool:
        """True once worker ``pid`` listens on the server's port (after its start-up)."""
        port = int(self.url.rsplit(":", 1)[1])
        inodes = set()
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
        for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
            fields = line.split()
            local_port = int(fields[1].split(":")[1], 16)
            if local_port == port and fields[3] == "0A" and fields[9] in inodes:
                return True
        return False

    def statuses(self, path: str) -> set[int]:
        """The status of ``GET path`` on each of CONNECTIONS fresh connections."""
        return {httpx.get(self.url + path, timeout=30).status_code for _ in range(CONNECTIONS)}

    def ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/v2/health/ready", timeout=5).status_code == 200
        except httpx.TransportError:
            return False

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()


@pytest.fixture()
def server(tmp_path: Path, models: Models) -> Iterator[Server]:
    repo = tmp_path / "repo"
    shutil.copytree(models.dirs["lr"], repo / "lr" / "1")
    shutil.copytree(models.dirs["rf"], repo / "rf" / "1")
    token = tmp_path / "token"
    token.write_text(TOKEN)
    token.chmod(0o600)
    args = ["--repository", str(repo), "--allow-unverified", "--workers", "2",
            "--repository-token-file", str(token), "--batching"]  # fmt: skip
    server = Server(args, cwd=tmp_path)
    try:
        wait_for(server.ready, timeout=120, what="the repository server to be ready")
        yield server
    finally:
        server.stop()


def test_a_load_or_unload_through_one_worker_reaches_both(
    server: Server, tmp_path: Path, models: Models
) -> None:
    assert len(server.workers()) == 2
    assert server.statuses("/v2/models/lr") == {200}
    response = httpx.post(f"{server.url}/v2/repository/models/lr/unload", headers=AUTH,
                          timeout=120)  # fmt: skip
    assert response.status_code == 200, response.text
    assert server.statuses("/v2/models/lr") == {404}
    assert server.statuses("/v2/models/rf") == {200}
    shutil.copytree(models.dirs["lr2"], tmp_path / "repo" / "lr" / "2")
    response = httpx.post(f"{server.url}/v2/repository/models/lr/load", headers=AUTH,
                          timeout=120)  # fmt: skip
    assert response.json() == {"name": "lr", "version": "2", "state": "READY", "reason": ""}
    assert server.statuses("/v2/models/lr/versions/2") == {200}
    assert server.statuses("/v2/models/lr/versions/1") == {404}


def test_a_restarted_worker_applies_the_changes_before_it_serves(server: Server) -> None:
    response = httpx.post(f"{server.url}/v2/repository/models/rf/unload", headers=AUTH,
                          timeout=120)  # fmt: skip
    assert response.status_code == 200, response.text
    victim = server.workers()[0]
    os.kill(victim, signal.SIGKILL)

    def replaced() -> bool:
        pids = server.workers()
        return len(pids) == 2 and victim not in pids

    wait_for(replaced, timeout=60, what="the supervisor to restart the killed worker")
    wait_for(lambda: all(server.listens(p) for p in server.workers()), timeout=60,
             what="the restarted worker to listen")  # fmt: skip
    assert server.statuses("/v2/models/rf") == {404}  # the fork served rf at start
    assert server.statuses("/v2/models/lr") == {200}
