"""The log-policy settings take effect where they are used: replicas of the control plane
(``LOOPLINE_PREDICTION_LOG_*`` for templates that set no bound of their own), ``loopline
serve`` (the default of its log flags) and ``loopline gc`` (``LOOPLINE_ORPHAN_GRACE``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from loopline.artifacts.fs import FsspecArtifactStore
from loopline.controlplane.build import build_controlplane
from loopline.deploy.engines.local import LocalEngine
from loopline.deploy.spec import Template
from loopline.platform import Platform
from loopline.serving import ServeCommand
from loopline.settings import Settings
from loopline.testing.artifacts import wait_for
from tests.cli.conftest import REPO

LOGGED = {"model": "m", "logging": {"enabled": True}}


def _env(**settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPLINE_")}
    env["PYTHONPATH"] = str(REPO)
    env.update(settings)
    return env


# ---- replicas ----------------------------------------------------------------------------------


def test_a_replica_that_logs_gets_the_engines_log_bounds_unless_its_template_sets_its_own(
    tmp_path: Path,
) -> None:
    engine = LocalEngine(
        log_dir=tmp_path / "logs",
        prediction_log_root=tmp_path / "predictions",
        log_max_bytes=64 << 20,
        log_max_age=86_400.0,
        log_buffer_bytes=1 << 20,
    )
    command = engine.serve_command(Template.from_dict(LOGGED), 8080)
    assert (command.log_max_bytes, command.log_max_age, command.log_buffer_bytes) == (
        64 << 20, 86_400.0, 1 << 20,
    )  # fmt: skip
    assert command.server_options().log is not None
    assert command.server_options().log.buffer_bytes == 1 << 20
    own = {**LOGGED, "logging": {"enabled": True, "maxBytes": "2GiB", "maxAge": "7d"}}
    command = engine.serve_command(Template.from_dict(own), 8080)
    assert (command.log_max_bytes, command.log_max_age) == (2 << 30, 7 * 86_400.0)
    silent = engine.serve_command(Template.from_dict({"model": "m"}), 8080)
    assert silent == ServeCommand(models=("m",), port=8080)  # no logging: no log flags


def test_the_control_plane_gives_its_replicas_the_log_policy_settings(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "LOOPLINE_DB_URL": f"sqlite:///{tmp_path}/metadata.db",
            "LOOPLINE_ARTIFACT_ROOT": str(tmp_path / "artifacts"),
            "LOOPLINE_HOME": str(tmp_path / "home"),
            "LOOPLINE_PREDICTION_LOG_MAX_BYTES": "64MiB",
            "LOOPLINE_PREDICTION_LOG_MAX_AGE": "12h",
            "LOOPLINE_PREDICTION_LOG_BUFFER_BYTES": "8MiB",
        }
    )
    with Platform(settings) as platform:
        engine = build_controlplane(platform).manager.engine
        assert isinstance(engine, LocalEngine)
        argv = engine.serve_command(Template.from_dict(LOGGED), 8080).to_argv()
    assert argv[argv.index("--log-max-bytes") + 1] == str(64 << 20)
    assert argv[argv.index("--log-max-age") + 1] == repr(12 * 3600.0)
    assert argv[argv.index("--log-buffer-bytes") + 1] == str(8 << 20)


# ---- loopline serve ----------------------------------------------------------------------------


def _segment(folder: Path, stamp: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{stamp}-1-0.parquet"
    pq.write_table(pa.table({"x": np.arange(2_000, dtype=np.float64)}), path)
    return path


def test_loopline_serve_rotates_its_log_directory_to_the_size_setting(tmp_path: Path) -> None:
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression

    from loopline.bundle import infer_signature, save_model

    x, y = load_breast_cancer(return_X_y=True)
    save_model(
        LogisticRegression(max_iter=3000).fit(x, y),
        tmp_path / "model",
        signature=infer_signature(x, y),
        input_example=x[:2],
    )
    logs = tmp_path / "logs"
    folder = logs / "predictions" / "model=model" / "version=1"
    old = _segment(folder, "20200101T000000000000Z")  # 16 KB each, 2020 and 2021
    new = _segment(folder, "20210101T000000000000Z")
    argv = [sys.executable, "-m", "loopline.cli", "serve", "./model", "--allow-unverified",
            "--port", "0", "--log-dir", str(logs), "--log-max-age", "3650d"]  # fmt: skip
    env = _env(LOOPLINE_PREDICTION_LOG_MAX_BYTES=str(new.stat().st_size + 100))
    with subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout is not None
            assert "listening on" in proc.stdout.readline()
            wait_for(lambda: not old.exists(), timeout=30, what="the oldest segment rotated")
            assert new.exists()  # the newest one fits the size setting
        finally:
            proc.terminate()
            proc.wait(30)


def test_loopline_serve_refuses_a_malformed_log_setting_naming_it(tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "loopline.cli", "serve", "./model", "--allow-unverified",
            "--log-dir", str(tmp_path / "logs")]  # fmt: skip
    env = _env(LOOPLINE_PREDICTION_LOG_BUFFER_BYTES="a lot")
    out = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    assert "LOOPLINE_PREDICTION_LOG_BUFFER_BYTES='a lot' is not a size" in out.stderr


# ---- loopline gc -------------------------------------------------------------------------------


@pytest.fixture
def orphan(tmp_path: Path) -> Path:
    """A published artifact folder no row names (as a power loss leaves it), just now."""
    store = FsspecArtifactStore(str(tmp_path / "loopline_artifacts"))
    uri = store.allocate("Model", "pipe/run-1/trainer/model")
    with store.staging() as staged:
        (staged / "model.txt").write_text("bytes")
        store.publish(staged, uri)
    with store.open_local(uri) as local:
        return Path(local)


def _gc(tmp_path: Path, **settings: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "loopline.cli", "gc", "--yes", "--json"]
    return subprocess.run(
        argv, cwd=tmp_path, env=_env(**settings), capture_output=True, text=True, timeout=120
    )


def test_loopline_gc_sweeps_orphaned_folders_once_the_grace_setting_has_passed(
    tmp_path: Path, orphan: Path
) -> None:
    assert _gc(tmp_path).returncode == 0
    assert orphan.exists()  # the default grace (an hour) has not passed
    assert _gc(tmp_path, LOOPLINE_ORPHAN_GRACE="1h").returncode == 0
    assert orphan.exists()

    def swept() -> bool:
        out = _gc(tmp_path, LOOPLINE_ORPHAN_GRACE="1s")
        assert out.returncode == 0, out.stderr
        return not orphan.exists()

    wait_for(swept, timeout=60, what="gc with LOOPLINE_ORPHAN_GRACE=1s removing the orphan")
