"""How the CLI finds the control plane: LOOPLINE_CONTROLPLANE_URL wins over discovery."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.controlplane.conftest import TOKEN, FakeCluster
from tests.controlplane.test_api import spec

from loopline.controlplane.client import ControlPlaneClient


def cli(home: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPLINE_")}
    env.update(LOOPLINE_HOME=str(home), LOOPLINE_CONTROLPLANE_URL=url, COLUMNS="200")
    return subprocess.run(
        [sys.executable, "-m", "loopline.cli", *args],
        env=env, cwd=home.parent, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_an_explicit_url_is_used_and_nothing_is_started(
    fake_cluster: FakeCluster, tmp_path: Path
) -> None:
    with ControlPlaneClient(fake_cluster.url, token=TOKEN) as client:
        client.apply(spec())
    home = tmp_path / "home"
    (home / "controlplane").mkdir(parents=True)
    token = home / "controlplane" / "token"
    token.write_text(TOKEN + "\n")
    token.chmod(0o600)

    listed = cli(home, fake_cluster.url, "get", "deployments", "--json")
    assert listed.returncode == 0, listed.stderr
    assert "bc" in listed.stdout and "started the control plane" not in listed.stderr
    scaled = cli(home, fake_cluster.url, "scale", "deployment/bc", "--replicas=3")
    assert scaled.returncode == 0, scaled.stderr
    assert fake_cluster.service.get_deployment("bc")["spec"]["replicas"] == 3
    assert sorted(p.name for p in (home / "controlplane").iterdir()) == ["token"]


def test_an_unreachable_url_is_a_clear_error(tmp_path: Path) -> None:
    out = cli(tmp_path / "home", "http://127.0.0.1:9", "get", "deployments")
    assert out.returncode == 1
    assert "Cannot reach the control plane at http://127.0.0.1:9" in out.stderr
