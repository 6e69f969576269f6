"""The local-directory code path: roots, atomic rename, staging owners, sweep rules."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from loopline.artifacts.fs import FsspecArtifactStore
from loopline.artifacts.owner import Owner, process_start_ticks
from loopline.errors import (
    AlreadyExistsError,
    DependencyMissingError,
    InvalidInputError,
    PathTraversalError,
)
from loopline.testing.artifacts import expected_digest


def test_local_root_is_normalised_to_an_absolute_file_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert FsspecArtifactStore("arts").root == f"file://{tmp_path}/arts"
    assert FsspecArtifactStore(f"file://{tmp_path}/a/../b/").root == f"file://{tmp_path}/b"
    assert FsspecArtifactStore(str(tmp_path / "c")).root == f"file://{tmp_path}/c"


def test_absolute_path_inside_a_local_root_is_accepted_as_its_url(
    local_store: FsspecArtifactStore,
) -> None:
    uri = local_store.allocate("Model", "k")
    path = uri[len("file://") :]
    assert local_store.validate(path) == uri
    assert local_store.validate(uri + "/") == uri


@pytest.mark.parametrize(
    ("root", "message"),
    [
        ("file://otherhost/x", "names host 'otherhost'"),
        ("simplecache::s3://bucket/x", "chained fsspec URL"),
        ("nosuchscheme://bucket/x", "unknown scheme 'nosuchscheme'"),
        ("", "is not valid"),
        ("S3://bucket", "schemes are lower-case"),
    ],
)
def test_rejects_bad_roots(root: str, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        FsspecArtifactStore(root)


def test_root_whose_backend_is_missing_names_the_extra_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(  # as on a machine without the object-store backends
        importlib.util,
        "find_spec",
        lambda name, *a: None if name in ("s3fs", "gcsfs", "adlfs") else real_find_spec(name, *a),
    )
    for root, module, extra in (
        ("s3://bucket/prefix", "s3fs", "s3"),
        ("gs://bucket/prefix", "gcsfs", "gcs"),
        ("az://container/prefix", "adlfs", "azure"),
    ):
        with pytest.raises(
            DependencyMissingError,
            match=rf"Artifact store root '{root}' needs the '{module}' package, which is not "
            rf"installed\. Install it with: pip install 'loopline\[{extra}\]'",
        ):
            FsspecArtifactStore(root)


def test_publish_is_a_rename_of_the_staged_directory(local_store: FsspecArtifactStore) -> None:
    uri = local_store.allocate("Model", "k")
    with local_store.staging() as staged:
        (staged / "w").write_bytes(b"1")
        inode = staged.stat().st_ino
        assert staged.is_relative_to(Path(local_store.root[len("file://") :]) / ".staging")
        local_store.publish(staged, uri)
        assert not staged.exists()
    with local_store.open_local(uri) as local:
        assert local.stat().st_ino == inode
        assert str(local) == uri[len("file://") :]


def test_staging_directory_records_its_owner(local_store: FsspecArtifactStore) -> None:
    with local_store.staging() as staged:
        owner = json.loads((staged.parent / "owner.json").read_bytes())
        assert owner["pid"] == os.getpid()
        assert owner["start_ticks"] == process_start_ticks(os.getpid())


def test_concurrent_publishers_to_one_uri_have_exactly_one_winner(
    local_store: FsspecArtifactStore,
) -> None:
    uri = local_store.allocate("Model", "race")
    outcomes: list[str] = []
    barrier = threading.Barrier(8)

    def publish(i: int) -> None:
        with local_store.staging() as staged:
            (staged / "who").write_text(str(i))
            barrier.wait(timeout=30)
            try:
                local_store.publish(staged, uri)
                outcomes.append("won")
            except AlreadyExistsError:
                outcomes.append("lost")

    threads = [threading.Thread(target=publish, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(outcomes) == ["lost"] * 7 + ["won"]


def test_symlink_inside_the_root_cannot_lead_publish_outside(
    local_store: FsspecArtifactStore, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    root = Path(local_store.root[len("file://") :])
    root.mkdir(parents=True)
    (root / "Model").symlink_to(outside)
    uri = local_store.allocate("Model", "k")
    with local_store.staging() as staged:
        (staged / "f").write_bytes(b"x")
        with pytest.raises(PathTraversalError, match="through a symbolic link"):
            local_store.publish(staged, uri)
    assert list(outside.iterdir()) == []


def test_publishes_a_directory_from_another_file_system_by_copying(
    local_store: FsspecArtifactStore,
) -> None:
    if not os.access("/dev/shm", os.W_OK):
        pytest.skip("needs /dev/shm as a second file system")
    with tempfile.TemporaryDirectory(dir="/dev/shm") as other:
        if os.stat(other).st_dev == os.stat(tempfile.gettempdir()).st_dev:
            pytest.skip("/dev/shm is on the same file system here")
        staged = Path(other) / "model"
        (staged / "sub").mkdir(parents=True)
        (staged / "sub" / "w").write_bytes(b"weights")
        uri = local_store.allocate("Model", "k")
        digest = local_store.publish(staged, uri)
        assert digest == expected_digest({"sub/w": b"weights"})
        assert not staged.exists()
        assert local_store.digest(uri) == digest


def test_sweep_removes_unowned_staging_only_after_the_grace(tmp_path: Path) -> None:
    store = FsspecArtifactStore(str(tmp_path / "a"), unowned_grace=30)
    fresh = tmp_path / "a" / ".staging" / "fresh"
    old = tmp_path / "a" / ".staging" / "old"
    fresh.mkdir(parents=True)
    old.mkdir()
    past = time.time() - 60
    os.utime(old, (past, past))
    removed = store.sweep()
    assert removed == [f"file://{old}"]
    assert fresh.exists()


def test_owner_with_a_reused_pid_counts_as_dead() -> None:
    me = Owner.current()
    assert not me.is_dead()
    if me.start_ticks is None:
        pytest.skip("process start times need Linux /proc")
    reused = Owner(host=me.host, pid=me.pid, start_ticks=me.start_ticks - 1, created=me.created)
    assert reused.is_dead()


def test_owner_on_another_host_is_never_declared_dead() -> None:
    other = Owner(host="some-other-host", pid=1, start_ticks=None, created=0.0)
    assert not other.is_dead()


def test_owner_of_an_exited_process_is_dead() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    ticks = process_start_ticks(proc.pid)
    proc.wait(timeout=30)
    me = Owner.current()
    gone = Owner(host=me.host, pid=proc.pid, start_ticks=ticks, created=me.created)
    assert gone.is_dead()


def test_unreadable_owner_marker_is_recognised() -> None:
    assert Owner.from_json(b'{"host": "h", "pid": 1') is None
    me = Owner.current()
    assert Owner.from_json(me.to_json()) == me


def test_refuses_to_publish_bytes_that_are_already_in_the_store(
    local_store: FsspecArtifactStore,
) -> None:
    uri = local_store.allocate("Model", "k")
    with local_store.staging() as staged:
        (staged / "f").write_bytes(b"x")
        local_store.publish(staged, uri)
    with local_store.open_local(uri) as published:
        with pytest.raises(InvalidInputError, match="published artifacts are immutable"):
            local_store.publish(published, local_store.allocate("Model", "copy"))
    assert local_store.exists(uri)
