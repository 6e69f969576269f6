"""`loopline serve name@alias` resolves through the registry and checks the recorded digest."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from loopline.artifacts import FsspecArtifactStore
from loopline.metadata.entities import ArtifactState
from loopline.metadata.urls import open_store
from loopline.registry.registry import ModelRegistry

pytestmark = pytest.mark.slow


@pytest.fixture()
def registered(tmp_path: Path, models: Any) -> dict[str, str]:
    env = {
        "LOOPLINE_DB_URL": f"sqlite:///{tmp_path}/metadata.db",
        "LOOPLINE_ARTIFACT_ROOT": str(tmp_path / "artifacts"),
        "LOOPLINE_HOME": str(tmp_path / "home"),
    }
    metadata = open_store(env["LOOPLINE_DB_URL"])
    artifacts = FsspecArtifactStore(env["LOOPLINE_ARTIFACT_ROOT"])
    try:
        uri = artifacts.allocate("Model", "run-1/trainer")
        with artifacts.staging() as staged:
            shutil.copytree(models.dirs["lr"], staged, dirs_exist_ok=True)
            digest = artifacts.publish(staged, uri)
        art = metadata.put_artifact("Model", uri, digest=digest, state=ArtifactState.LIVE)
        registry = ModelRegistry(metadata, artifacts)
        registry.register("bc", art.id, who="test", why="serving test")
        registry.set_alias("bc", "champion", 1, who="test", why="serving test")
    finally:
        metadata.close()
    env["ARTIFACT_DIR"] = str(tmp_path / "artifacts")
    return env


def _serve(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-c", "from loopline.cli.main import main; main()", "serve", *args]
    return subprocess.Popen(
        cmd, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_serves_a_registry_alias_under_its_version_and_alias(
    registered: dict[str, str], models: Any, v2_body: Any
) -> None:
    proc = _serve(registered, "bc@champion", "--port", "0")
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "listening on" in line, proc.stderr.read() if proc.stderr else ""
        url = line.split("listening on ")[1].split()[0]
        with httpx.Client(base_url=url, timeout=10) as c:
            for _ in range(100):
                try:
                    if c.get("/v2/health/ready").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
            body = c.post("/v2/models/bc/versions/champion/infer", json=v2_body(models.x[:2]))
            assert body.status_code == 200
            assert body.json()["model_version"] == "1"
            assert c.get("/v2/models/bc/versions/1/ready").status_code == 200
    finally:
        proc.terminate()
        proc.wait(30)
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()


def test_refuses_bytes_that_changed_after_registration(registered: dict[str, str]) -> None:
    skops_file = next(Path(registered["ARTIFACT_DIR"]).rglob("model.skops"))
    with open(skops_file, "ab") as f:
        f.write(b"tampered")
    proc = _serve(registered, "bc@champion", "--port", "0")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert "the registry recorded sha256:" in err and "Traceback" not in err


def test_unknown_alias_is_a_clear_error(registered: dict[str, str]) -> None:
    proc = _serve(registered, "bc@nope", "--port", "0")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1 and "nope" in err and "Traceback" not in err
