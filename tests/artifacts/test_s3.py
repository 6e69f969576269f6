"""The artifact store on S3 for real: moto's server in its own process, reached by s3fs
through the standard AWS variables (``AWS_ENDPOINT_URL`` …), exactly as a user's store is."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import fsspec
import pytest

from loopline.artifacts.fs import FsspecArtifactStore
from loopline.errors import AlreadyExistsError, BackendError, NotFoundError
from loopline.testing.artifacts import (
    ArtifactStoreContract,
    expected_digest,
    fsspec_child_setup,
    wait_for,
)


class TestS3Store(ArtifactStoreContract):
    """The whole contract, crash tests included (the killed writer is another process)."""

    __test__ = True

    @pytest.fixture
    def artifact_store(self, s3_store: FsspecArtifactStore) -> FsspecArtifactStore:
        return s3_store

    @pytest.fixture
    def artifact_store_child_setup(self, artifact_store: FsspecArtifactStore) -> str:
        return fsspec_child_setup(artifact_store)


def _publish(store: FsspecArtifactStore, files: dict[str, bytes], key: str = "k") -> str:
    uri = store.allocate("Model", key)
    with store.staging() as staged:
        for rel, data in files.items():
            (staged / rel).parent.mkdir(parents=True, exist_ok=True)
            (staged / rel).write_bytes(data)
        store.publish(staged, uri)
    return uri


def _key(uri: str) -> str:
    return uri[len("s3://") :]


def test_the_completion_marker_is_the_last_object_and_records_the_digest(
    s3_store: FsspecArtifactStore,
) -> None:
    files = {"model.json": b"{}", "w/weights.bin": b"\x00" * 1000}
    uri = _publish(s3_store, files)
    fs = fsspec.filesystem("s3")
    fs.invalidate_cache()
    names = sorted(p[len(_key(uri)) + 1 :] for p in fs.find(_key(uri)))
    assert names == ["_LOOPLINE_COMPLETE", "model.json", "w/weights.bin"]
    import json

    marker = json.loads(fs.cat_file(f"{_key(uri)}/_LOOPLINE_COMPLETE"))
    assert marker["digest"] == expected_digest(files)
    assert marker["files"] == 2


def test_objects_without_the_completion_marker_are_not_an_artifact(
    s3_store: FsspecArtifactStore,
) -> None:
    uri = _publish(s3_store, {"a": b"1"})
    fsspec.filesystem("s3").rm_file(f"{_key(uri)}/_LOOPLINE_COMPLETE")
    assert not s3_store.exists(uri)
    with pytest.raises(NotFoundError, match="No artifact is published"):
        s3_store.digest(uri)
    with s3_store.staging() as staged:
        (staged / "a").write_bytes(b"2")
        with pytest.raises(AlreadyExistsError, match="already holds published bytes"):
            s3_store.publish(staged, uri)


def test_an_object_changed_after_publish_is_refused_on_download(
    s3_store: FsspecArtifactStore,
) -> None:
    uri = _publish(s3_store, {"w.bin": b"original"})
    fsspec.filesystem("s3").pipe_file(f"{_key(uri)}/w.bin", b"tampered")
    with pytest.raises(BackendError, match="its bytes changed or are corrupt"):
        with s3_store.open_local(uri):
            pass


def test_a_missing_bucket_fails_the_publish_naming_the_uri_and_leaves_nothing(
    s3_env: dict[str, str], tmp_path: object
) -> None:
    store = FsspecArtifactStore("s3://loopline-no-such-bucket/p", local_staging=f"{tmp_path}/s")
    uri = store.allocate("Model", "k")
    with store.staging() as staged:
        (staged / "a").write_bytes(b"1")
        with pytest.raises(BackendError, match=r"Uploading artifact 's3://loopline-no-such-b"):
            store.publish(staged, uri)
    assert not store.exists(uri)


def test_credentials_never_appear_in_an_upload_error(
    s3_bucket: str, tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "sEcReT-never-print-me"
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    store = FsspecArtifactStore("s3://loopline-no-such-bucket/p", local_staging=f"{tmp_path}/s")
    uri = store.allocate("Model", "k")
    with store.staging() as staged:
        (staged / "a").write_bytes(b"1")
        with pytest.raises(BackendError) as info:
            store.publish(staged, uri)
    assert secret not in str(info.value)
    assert secret not in repr(info.value.__cause__)


def test_a_writer_killed_mid_upload_leaves_no_artifact_and_sweep_removes_its_objects(
    s3_store: FsspecArtifactStore,
) -> None:
    uri = s3_store.allocate("Model", "crash")
    script = fsspec_child_setup(s3_store) + textwrap.dedent(
        """
        import sys, time
        import s3fs
        real_put = s3fs.S3FileSystem._put_file
        async def slow_put(self, *args, **kwargs):  # a slow network: one object per 50 ms
            time.sleep(0.05)
            return await real_put(self, *args, **kwargs)
        s3fs.S3FileSystem._put_file = slow_put
        with store.staging() as staged:
            for i in range(400):
                (staged / f"part-{i:03d}").write_bytes(b"x" * 100)
            store.publish(staged, sys.argv[1])
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script, uri])
    fs = fsspec.filesystem("s3")

    def uploading() -> bool:
        fs.invalidate_cache()
        return len(fs.find(_key(uri))) > 3

    try:
        wait_for(uploading, timeout=60, what="the upload to start")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    fs.invalidate_cache()
    assert fs.exists(f"{_key(uri)}/_LOOPLINE_WRITER")
    assert not fs.exists(f"{_key(uri)}/_LOOPLINE_COMPLETE")
    assert not s3_store.exists(uri)
    assert uri in s3_store.sweep()
    fs.invalidate_cache()
    assert fs.find(_key(uri)) == []


def test_gc_removes_an_unreferenced_artifact_after_the_grace_and_keeps_referenced_ones(
    s3_store: FsspecArtifactStore,
) -> None:
    import time

    kept = _publish(s3_store, {"a": b"1"}, "kept")
    orphan = _publish(s3_store, {"a": b"2"}, "orphan")
    now = time.time()
    assert s3_store.sweep_orphans([kept], now=now, grace=3600) == []
    assert s3_store.sweep_orphans([kept], now=now + 3601, grace=3600) == [orphan]
    assert s3_store.exists(kept)
    assert not s3_store.exists(orphan)
