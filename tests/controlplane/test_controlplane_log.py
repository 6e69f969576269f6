"""controlplane.log: a control plane started by the CLI writes a private, rotated log."""

from __future__ import annotations

import stat
import sys
from pathlib import Path

import pytest

from loopline.controlplane.discovery import start_detached
from loopline.controlplane.files import ControlPlaneFiles
from loopline.deploy.engines.process_log import LogFilePolicy
from loopline.errors import BackendError

NOISY_CRASH = (
    "import sys\n"
    "for i in range(4000): print(f'{i:06d}', 'z' * 120)\n"
    "print('last words', flush=True)\n"
    "sys.exit(4)\n"
)


def test_a_control_plane_log_is_0600_rotated_within_its_bound_and_complete_when_quoted(
    tmp_path: Path,
) -> None:
    files = ControlPlaneFiles(tmp_path / "home", log_policy=LogFilePolicy(64 << 10, 2))
    with pytest.raises(BackendError, match=r"(?s)exited with code 4 before serving.*last words"):
        start_detached(files, [sys.executable, "-c", NOISY_CRASH], {}, deadline=60)
    log = files.log_path
    rotated = [log.with_name(f"controlplane.log.{n}") for n in (1, 2, 3)]
    assert rotated[1].exists() and not rotated[2].exists()  # ~500 KiB written, 3 × 64 KiB kept
    for f in (log, *rotated[:2]):
        assert f.stat().st_size <= 64 << 10 and stat.S_IMODE(f.stat().st_mode) == 0o600
    assert log.read_text().endswith("last words\n")


def test_an_existing_wider_control_plane_log_is_narrowed_to_0600(tmp_path: Path) -> None:
    files = ControlPlaneFiles(tmp_path / "home")
    files.ensure_dir()
    files.log_path.write_text("an older control plane\n")
    files.log_path.chmod(0o644)
    with pytest.raises(BackendError, match="exited with code 0"):
        start_detached(files, [sys.executable, "-c", "print('hello')"], {}, deadline=60)
    assert stat.S_IMODE(files.log_path.stat().st_mode) == 0o600
    assert files.log_path.read_text() == "an older control plane\nhello\n"
