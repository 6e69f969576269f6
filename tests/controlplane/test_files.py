"""Token, endpoint record and instance lock under $LOOPLINE_HOME/controlplane."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from loopline.artifacts.owner import process_start_ticks as process_start_time
from loopline.controlplane.files import ControlPlaneFiles, Endpoint, own_endpoint, process_alive
from loopline.errors import ConfigurationError, ConflictError


def test_token_is_created_once_with_mode_0600(tmp_path: Path) -> None:
    files = ControlPlaneFiles(tmp_path)
    token = files.ensure_token()
    assert len(token) >= 40
    assert stat.S_IMODE(files.token_path.stat().st_mode) == 0o600
    assert files.ensure_token() == token
    assert files.read_token() == token


def test_a_token_readable_by_others_is_refused(tmp_path: Path) -> None:
    files = ControlPlaneFiles(tmp_path)
    files.ensure_token()
    os.chmod(files.token_path, 0o644)
    with pytest.raises(ConfigurationError, match="accessible to other users .*chmod 600"):
        files.read_token()


def test_endpoint_of_this_process_is_live(tmp_path: Path) -> None:
    files = ControlPlaneFiles(tmp_path)
    files.write_endpoint(own_endpoint("http://127.0.0.1:1234"))
    live = files.live_endpoint()
    assert live is not None and live.url == "http://127.0.0.1:1234"
    assert live.process_start == process_start_time(os.getpid())


def test_endpoint_of_a_dead_process_is_stale(tmp_path: Path) -> None:
    files = ControlPlaneFiles(tmp_path)
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    start = process_start_time(proc.pid)
    proc.wait()
    files.write_endpoint(Endpoint("http://127.0.0.1:9", proc.pid, start, 0.0))
    assert files.read_endpoint() is not None
    assert files.live_endpoint() is None


def test_a_reused_pid_is_not_taken_for_the_control_plane() -> None:
    me = os.getpid()
    start = process_start_time(me)
    assert start is not None
    assert process_alive(me, start)
    assert not process_alive(me, start + 1)


def test_garbled_endpoint_file_reads_as_missing(tmp_path: Path) -> None:
    files = ControlPlaneFiles(tmp_path)
    files.ensure_dir()
    files.endpoint_path.write_text("{not json")
    assert files.read_endpoint() is None


def test_only_one_control_plane_holds_the_lock(tmp_path: Path) -> None:
    files = ControlPlaneFiles(tmp_path)
    files.write_endpoint(own_endpoint("http://127.0.0.1:4321"))
    held = files.acquire_lock()
    try:
        with pytest.raises(ConflictError, match="already running .* at http://127.0.0.1:4321"):
            ControlPlaneFiles(tmp_path).acquire_lock()
    finally:
        held.close()
    ControlPlaneFiles(tmp_path).acquire_lock().close()


def test_removing_the_endpoint_never_removes_another_process_record(tmp_path: Path) -> None:
    files = ControlPlaneFiles(tmp_path)
    files.write_endpoint(own_endpoint("http://127.0.0.1:4321"))
    files.remove_endpoint(os.getpid() + 1)
    assert files.endpoint_path.exists()
    files.remove_endpoint(os.getpid())
    assert not files.endpoint_path.exists()
