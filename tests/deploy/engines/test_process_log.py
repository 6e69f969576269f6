"""Process logs: the rotation decisions on a fake clock, and the log pipe as a real process."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from loopline.deploy.engines.process_log import (
    LogFilePolicy,
    RotatingLogFile,
    expired,
    rotated_path,
    rotation_due,
)
from loopline.errors import InvalidDefinitionError

DAY = 86_400.0
T0 = time.time()  # the fake clock starts at the files' own clock (their mtimes)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_rotation_is_due_before_the_live_file_would_pass_its_size_or_reaches_its_age() -> None:
    policy = LogFilePolicy(max_bytes=100, backups=2, max_age=DAY)
    assert not rotation_due(policy, size=60, incoming=40, since=T0, now=T0)
    assert rotation_due(policy, size=60, incoming=41, since=T0, now=T0)
    assert rotation_due(policy, size=1, incoming=0, since=T0, now=T0 + DAY)
    assert not rotation_due(policy, size=0, incoming=10_000, since=T0, now=T0 + 9 * DAY)


def test_a_rotated_file_expires_when_it_was_last_written_max_age_ago() -> None:
    policy = LogFilePolicy(max_age=DAY)
    assert not expired(policy, mtime=T0, now=T0 + DAY - 1)
    assert expired(policy, mtime=T0, now=T0 + DAY)


@pytest.mark.parametrize(
    ("field", "kwargs", "message"),
    [
        ("max_bytes", {"max_bytes": 0}, "Process log max_bytes 0 must be an integer ≥ 1"),
        ("backups", {"backups": True}, "Process log backups True must be an integer ≥ 1"),
        ("max_age", {"max_age": float("nan")}, "Process log max_age nan must be a finite"),
        ("max_age", {"max_age": 0}, "Process log max_age 0 must be a finite"),
    ],
)
def test_a_bad_policy_is_rejected_naming_the_field(
    field: str, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidDefinitionError, match=message):
        LogFilePolicy(**kwargs)  # type: ignore[arg-type]


def test_the_file_rotates_by_size_keeping_backups_files_of_at_most_max_bytes(
    tmp_path: Path,
) -> None:
    path = tmp_path / "r.log"
    log = RotatingLogFile(path, LogFilePolicy(max_bytes=1000, backups=2), T0)
    written = [f"line {i:04d} {'x' * 90}\n" for i in range(100)]
    for i, line in enumerate(written):
        log.write(line.encode(), T0 + i)
    log.close()
    files = sorted(tmp_path.iterdir())
    assert files == [path, rotated_path(path, 1), rotated_path(path, 2)]
    assert all(f.stat().st_size <= 1000 for f in files)
    assert all(_mode(f) == 0o600 for f in files)
    kept = "".join(f.read_text() for f in reversed(files))  # .2, .1, live: oldest first
    assert "".join(written).endswith(kept) and len(kept) > 1800  # the newest, none missing


def test_a_chunk_larger_than_max_bytes_is_split_across_files(tmp_path: Path) -> None:
    path = tmp_path / "r.log"
    log = RotatingLogFile(path, LogFilePolicy(max_bytes=100, backups=3), T0)
    log.write(b"a" * 250, T0)
    log.close()
    sizes = [p.stat().st_size for p in (path, rotated_path(path, 1), rotated_path(path, 2))]
    assert sizes == [50, 100, 100] and not rotated_path(path, 3).exists()


def test_an_old_live_file_rotates_and_old_rotated_files_are_deleted_on_a_tick(
    tmp_path: Path,
) -> None:
    path = tmp_path / "r.log"
    log = RotatingLogFile(path, LogFilePolicy(max_bytes=1 << 20, backups=3, max_age=DAY), T0)
    log.write(b"first\n", T0)
    log.write(b"last\n", T0 + DAY - 10)
    os.utime(path, (T0 + DAY - 10, T0 + DAY - 10))  # the file system's clock is not faked
    log.tick(T0 + DAY / 2)
    assert not rotated_path(path, 1).exists()
    log.tick(T0 + DAY)  # the live file has been written to for a day: rotate it
    assert rotated_path(path, 1).read_text() == "first\nlast\n" and path.read_text() == ""
    log.tick(T0 + 2 * DAY - 11)
    assert rotated_path(path, 1).exists()
    log.tick(T0 + 2 * DAY - 10)  # its last line is a day old now: delete it
    assert not rotated_path(path, 1).exists() and path.exists()
    log.close()


def test_an_existing_wider_file_is_narrowed_to_0600(tmp_path: Path) -> None:
    path = tmp_path / "r.log"
    path.write_text("old\n")
    path.chmod(0o644)
    RotatingLogFile(path, LogFilePolicy(), T0).close()
    assert _mode(path) == 0o600 and path.read_text() == "old\n"


def test_a_second_writer_follows_a_rotation_done_by_the_first(tmp_path: Path) -> None:
    path = tmp_path / "r.log"
    policy = LogFilePolicy(max_bytes=100, backups=5)
    one, two = RotatingLogFile(path, policy, T0), RotatingLogFile(path, policy, T0)
    one.write(b"1" * 80, T0)
    one.write(b"1" * 80, T0)  # rotates: r.log → r.log.1
    two.write(b"2" * 10, T0)  # must land in the new live file, not in r.log.1
    one.close()
    two.close()
    assert path.read_bytes() == b"1" * 80 + b"2" * 10
    assert rotated_path(path, 1).read_bytes() == b"1" * 80


def test_the_log_pipe_process_writes_everything_it_reads_rotated_and_ends_at_eof(
    tmp_path: Path,
) -> None:
    path = tmp_path / "r.log"
    policy = LogFilePolicy(max_bytes=64 << 10, backups=2)
    lines = b"".join(b"%06d %s\n" % (i, b"y" * 100) for i in range(5000))  # ~530 KiB
    done = subprocess.run(policy.pipe_argv(sys.executable, path), input=lines,
                          capture_output=True, timeout=60, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    files = [path, rotated_path(path, 1), rotated_path(path, 2)]
    assert sorted(tmp_path.iterdir()) == files
    assert all(f.stat().st_size <= 64 << 10 and _mode(f) == 0o600 for f in files)
    tail = rotated_path(path, 2).read_bytes() + rotated_path(path, 1).read_bytes()
    kept = tail + path.read_bytes()
    assert lines.endswith(kept)  # the newest output, in order, with nothing missing


def test_the_log_pipe_rejects_a_bad_policy_naming_the_option(tmp_path: Path) -> None:
    argv = LogFilePolicy().pipe_argv(sys.executable, tmp_path / "r.log")
    argv[argv.index("--backups") + 1] = "0"
    done = subprocess.run(argv, input=b"", capture_output=True, timeout=60, check=False)
    assert done.returncode == 2 and b"Process log backups 0 must be an integer" in done.stderr
