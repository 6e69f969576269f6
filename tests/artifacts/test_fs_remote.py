"""The remote (object-store) code path: completion markers, crashed uploads, verification."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import fsspec
import pytest

from loopline.artifacts.fs import FsspecArtifactStore
from loopline.artifacts.owner import Owner
from loopline.errors import BackendError, NotFoundError, PathTraversalError
from loopline.testing.artifacts import fsspec_child_setup, wait_for


def _publish(store: FsspecArtifactStore, files: dict[str, bytes]) -> str:
    uri = store.allocate("Model", "k")
    with store.staging() as staged:
        for rel, data in files.items():
            (staged / rel).parent.mkdir(parents=True, exist_ok=True)
            (staged / rel).write_bytes(data)
        store.publish(staged, uri)
    return uri


def _disk(store: FsspecArtifactStore, uri: str) -> Path:
    return Path(uri[len("objdir://") :])


def test_completion_marker_is_written_and_writer_marker_removed(
    objdir_store: FsspecArtifactStore,
) -> None:
    uri = _publish(objdir_store, {"a": b"1"})
    names = sorted(p.name for p in _disk(objdir_store, uri).iterdir())
    assert names == ["_LOOPLINE_COMPLETE", "a"]


def test_upload_without_completion_marker_is_invisible(objdir_store: FsspecArtifactStore) -> None:
    uri = _publish(objdir_store, {"a": b"1"})
    (_disk(objdir_store, uri) / "_LOOPLINE_COMPLETE").unlink()
    assert not objdir_store.exists(uri)
    with pytest.raises(NotFoundError, match="No artifact is published"):
        objdir_store.digest(uri)


def test_writer_killed_mid_upload_leaves_nothing_visible_and_sweep_removes_it(
    objdir_store: FsspecArtifactStore,
) -> None:
    uri = objdir_store.allocate("Model", "crash")
    target = _disk(objdir_store, uri)
    script = fsspec_child_setup(objdir_store) + textwrap.dedent(
        """
        import sys, time
        from fsspec.implementations.local import LocalFileSystem
        real_put = LocalFileSystem.put_file
        def slow_put(self, *args, **kwargs):  # a slow network: one object per 20 ms
            time.sleep(0.02)
            return real_put(self, *args, **kwargs)
        # objdir:// wraps a local file system; the store's one put() call of all the files
        # reaches it file by file, so this is where the network is made slow
        LocalFileSystem.put_file = slow_put
        with store.staging() as staged:
            for i in range(500):
                (staged / f"part-{i:03d}").write_bytes(b"x" * 100)
            store.publish(staged, sys.argv[1])
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script, uri])
    try:
        wait_for(
            lambda: target.is_dir() and len(os.listdir(target)) > 3,
            timeout=60,
            what="the upload to start",
        )
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert (target / "_LOOPLINE_WRITER").exists()
    assert not (target / "_LOOPLINE_COMPLETE").exists()
    assert not objdir_store.exists(uri)
    with pytest.raises(NotFoundError):
        with objdir_store.open_local(uri):
            pass
    removed = objdir_store.sweep()
    assert uri in removed
    assert not target.exists()


def test_sweep_spares_uploads_in_keep_and_live_writers(objdir_store: FsspecArtifactStore) -> None:
    fs = fsspec.filesystem("objdir")
    dead = Owner(host=Owner.current().host, pid=2**22 + 7, start_ticks=None, created=time.time())
    kept = objdir_store.allocate("Model", "kept")
    live = objdir_store.allocate("Model", "live")
    fs.pipe_file(f"{kept[len('objdir://') :]}/_LOOPLINE_WRITER", dead.to_json())
    fs.pipe_file(f"{kept[len('objdir://') :]}/part", b"x")
    fs.pipe_file(f"{live[len('objdir://') :]}/_LOOPLINE_WRITER", Owner.current().to_json())
    assert objdir_store.sweep(keep=[kept]) == []
    assert objdir_store.sweep() == [kept]
    assert _disk(objdir_store, live).exists()


def test_upload_from_another_host_is_aged_out(tmp_path: Path) -> None:
    from loopline.testing.artifacts import register_object_dir_fs

    register_object_dir_fs()
    root = f"objdir://{tmp_path}/bucket"
    patient = FsspecArtifactStore(root, local_staging=tmp_path / "s", abandon_after=3600)
    hasty = FsspecArtifactStore(root, local_staging=tmp_path / "s", abandon_after=5)
    uri = patient.allocate("Model", "k")
    owner = Owner(host="another-host", pid=1, start_ticks=None, created=time.time() - 60)
    fsspec.filesystem("objdir").pipe_file(
        f"{uri[len('objdir://') :]}/_LOOPLINE_WRITER", owner.to_json()
    )
    assert patient.sweep() == []
    assert hasty.sweep() == [uri]


def test_failed_upload_raises_and_leaves_nothing(objdir_store: FsspecArtifactStore) -> None:
    uri = objdir_store.allocate("Model", "blocked")
    blocker = _disk(objdir_store, uri).parent
    blocker.parent.mkdir(parents=True)
    blocker.write_bytes(b"a file where a directory must go")
    with objdir_store.staging() as staged:
        (staged / "a").write_bytes(b"1")
        with pytest.raises(BackendError, match="nothing was published"):
            objdir_store.publish(staged, uri)
    assert not objdir_store.exists(uri)


def test_download_with_changed_bytes_is_refused(objdir_store: FsspecArtifactStore) -> None:
    uri = _publish(objdir_store, {"w.bin": b"original"})
    (_disk(objdir_store, uri) / "w.bin").write_bytes(b"tampered")
    with pytest.raises(BackendError, match="its bytes changed or are corrupt"):
        with objdir_store.open_local(uri):
            pass


def test_object_key_that_climbs_out_is_never_downloaded(
    memory_store: FsspecArtifactStore,
) -> None:
    uri = _publish(memory_store, {"a": b"1"})
    path = uri[len("memory://") :]
    fsspec.filesystem("memory").pipe_file(f"{path}/../../evil", b"x")
    with pytest.raises(PathTraversalError, match="unsafe key"):
        memory_store.digest(uri)
    with pytest.raises(PathTraversalError, match="unsafe key"):
        with memory_store.open_local(uri):
            pass


def test_download_is_removed_after_the_block(memory_store: FsspecArtifactStore) -> None:
    uri = _publish(memory_store, {"d/a": b"1"})
    with memory_store.open_local(uri) as local:
        assert (local / "d" / "a").read_bytes() == b"1"
    assert not local.exists()
    assert memory_store.sweep() == []
