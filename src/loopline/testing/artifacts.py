"""Conformance suite for ``ArtifactStore`` backends, plus an object-store stand-in.

Use it by subclassing and providing the ``artifact_store`` fixture::

    class TestMyStore(ArtifactStoreContract):
        __test__ = True

        @pytest.fixture
        def artifact_store(self, tmp_path): return MyStore(tmp_path)

        @pytest.fixture
        def artifact_store_child_setup(self, artifact_store):
            # Python source that builds ``store`` over the same bytes in another process,
            # or None when the bytes live in this process only (crash tests then skip).
            return f"from my import MyStore\\nstore = MyStore({artifact_store.root!r})"

``ObjectDirFileSystem`` (protocol ``objdir://``) is an fsspec file system with object-store
semantics (no atomic directory rename, no empty directories) stored in a local directory, so
the remote code path can be tested across processes, e.g. with a writer killed mid-upload.
"""

from __future__ import annotations

import hashlib
import os
import select
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import fsspec
import pytest
from fsspec.implementations.dirfs import DirFileSystem
from fsspec.implementations.local import LocalFileSystem

from loopline.artifacts.store import ArtifactStore
from loopline.errors import (
    AlreadyExistsError,
    InvalidInputError,
    NotFoundError,
    PathTraversalError,
)

OBJECT_DIR_PROTOCOL = "objdir"


class ObjectDirFileSystem(DirFileSystem):  # type: ignore[misc]
    """``objdir:///abs/path``: object-store semantics over a local directory (tests only)."""

    protocol = OBJECT_DIR_PROTOCOL

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(path="/", fs=LocalFileSystem(auto_mkdir=True), **kwargs)


def register_object_dir_fs() -> None:
    """Make ``objdir://`` URLs resolve to :class:`ObjectDirFileSystem` in this process."""
    fsspec.register_implementation(OBJECT_DIR_PROTOCOL, ObjectDirFileSystem, clobber=True)


def fsspec_child_setup(store: Any) -> str:
    """Python source rebuilding an ``FsspecArtifactStore`` like ``store`` in a child process."""
    staging = "None" if store.local_staging is None else repr(str(store.local_staging))
    return (
        "from loopline.artifacts.fs import FsspecArtifactStore\n"
        "from loopline.testing.artifacts import register_object_dir_fs\n"
        "register_object_dir_fs()\n"
        f"store = FsspecArtifactStore({store.root!r}, local_staging={staging})\n"
    )


def expected_digest(files: dict[str, bytes]) -> str:
    """The documented digest format, computed independently of the store."""
    lines = b"".join(
        rel.encode() + b"\0" + hashlib.sha256(data).hexdigest().encode() + b"\n"
        for rel, data in sorted(files.items())
    )
    return "sha256:" + hashlib.sha256(lines).hexdigest()


def _publish(store: ArtifactStore, files: dict[str, bytes], key: str = "k") -> tuple[str, str]:
    uri = store.allocate("Model", key)
    with store.staging() as staged:
        for rel, data in files.items():
            (staged / rel).parent.mkdir(parents=True, exist_ok=True)
            (staged / rel).write_bytes(data)
        digest = store.publish(staged, uri)
    return uri, digest


def _read_tree(path: Path) -> dict[str, bytes]:
    return {
        p.relative_to(path).as_posix(): p.read_bytes()
        for p in sorted(path.rglob("*"))
        if p.is_file()
    }


def nasty_uris(root: str) -> list[str]:
    """URIs that every store must refuse, relative to its root URL."""
    return [
        f"{root}/../escape",
        f"{root}/Model/../../escape",
        f"{root}/Model/k/..",
        f"{root}/Model/%2e%2e/%2e%2e/escape",
        f"{root}/Model/%2E%2E/x",
        f"{root}/Model/%252e%252e/x",
        f"{root}/Model/..%2fescape",
        f"{root}/Model\\..\\..\\escape",
        f"{root}/Model/..\\escape",
        f"{root}/Model/a\x00b",
        f"{root}/Model/a\nb",
        f"{root}/./Model",
        f"{root}/.staging/x",
        f"{root}//Model",
        f"{root}/Model/x?y=1",
        f"{root}/Model/x#frag",
        f"{root}/Model/\uff0e\uff0e/x",
        f"{root}/Model/k/_LOOPLINE_COMPLETE",
        f"{root}-sibling/Model/x",
        f"{root}x/Model",
        root,
        f"{root}/",
        "/etc/passwd",
        "file:///etc/passwd",
        "FILE:///etc/passwd",
        "s3://another-bucket/Model/x",
        "memory:///elsewhere/Model/x",
        "http://127.0.0.1/Model/x",
        "relative/Model/x",
        "~/Model/x",
        "",
    ]


class ArtifactStoreContract:
    """Tests every ``ArtifactStore`` backend must pass (fixture: ``artifact_store``)."""

    __test__ = False

    @pytest.fixture
    def artifact_store_child_setup(self, artifact_store: ArtifactStore) -> str | None:
        """Python source defining ``store`` over the same bytes in a child process."""
        return None

    # ---- allocate / publish / read ---------------------------------------------------------

    def test_allocates_fresh_uris_inside_the_root(self, artifact_store: ArtifactStore) -> None:
        uris = {artifact_store.allocate("Model", "run-1/trainer") for _ in range(50)}
        assert len(uris) == 50
        for uri in uris:
            assert uri.startswith(f"{artifact_store.root}/Model/run-1/trainer/")
            assert artifact_store.validate(uri) == uri
            assert not artifact_store.exists(uri)

    def test_allocate_rejects_a_key_that_climbs_out(self, artifact_store: ArtifactStore) -> None:
        with pytest.raises(PathTraversalError, match=r"Artifact key 'run/\.\./\.\./x'"):
            artifact_store.allocate("Model", "run/../../x")
        with pytest.raises(InvalidInputError, match=r"Artifact type name '\.\./x' is not valid"):
            artifact_store.allocate("../x", "run")

    def test_staging_is_empty_and_removed_unless_published(
        self, artifact_store: ArtifactStore
    ) -> None:
        with artifact_store.staging() as staged:
            assert staged.is_dir() and list(staged.iterdir()) == []
            (staged / "f").write_bytes(b"x")
        assert not staged.exists()

    def test_publish_makes_bytes_readable_with_the_documented_digest(
        self, artifact_store: ArtifactStore
    ) -> None:
        files = {"model.json": b'{"w": 1}', "sub/dir/weights.bin": bytes(range(256)) * 10}
        uri, digest = _publish(artifact_store, files)
        assert digest == expected_digest(files)
        assert artifact_store.exists(uri)
        assert artifact_store.digest(uri) == digest
        with artifact_store.open_local(uri) as local:
            assert _read_tree(local) == files

    def test_publishing_twice_to_one_uri_is_refused(self, artifact_store: ArtifactStore) -> None:
        uri, digest = _publish(artifact_store, {"a": b"1"})
        with artifact_store.staging() as staged:
            (staged / "a").write_bytes(b"2")
            with pytest.raises(AlreadyExistsError, match="already holds published bytes"):
                artifact_store.publish(staged, uri)
        assert artifact_store.digest(uri) == digest

    def test_single_file_artifact_is_a_directory_holding_that_file(
        self, artifact_store: ArtifactStore
    ) -> None:
        uri = artifact_store.allocate("Model", "single")
        with artifact_store.staging() as staged:
            (staged / "model.skops").write_bytes(b"bytes of a model")
            (staged / "scratch.tmp").write_bytes(b"not part of it")
            digest = artifact_store.publish(staged / "model.skops", uri)
        assert digest == expected_digest({"model.skops": b"bytes of a model"})
        with artifact_store.open_local(uri) as local:
            assert _read_tree(local) == {"model.skops": b"bytes of a model"}

    def test_empty_artifact_has_the_digest_of_nothing(self, artifact_store: ArtifactStore) -> None:
        uri, digest = _publish(artifact_store, {})
        assert digest == expected_digest({})
        assert artifact_store.exists(uri)

    def test_large_file_digest_is_streamed_and_exact(self, artifact_store: ArtifactStore) -> None:
        big = os.urandom(1 << 16) * 64  # 4 MiB, more than one read chunk
        uri, digest = _publish(artifact_store, {"big.bin": big})
        assert digest == expected_digest({"big.bin": big})
        assert artifact_store.digest(uri) == digest

    # ---- digests ---------------------------------------------------------------------------

    def test_digest_is_stable_across_uris(self, artifact_store: ArtifactStore) -> None:
        files = {"a.txt": b"alpha", "b/c.txt": b"gamma"}
        _, first = _publish(artifact_store, files, "one")
        _, second = _publish(artifact_store, dict(reversed(files.items())), "two")
        assert first == second

    def test_digest_changes_when_a_file_is_renamed(self, artifact_store: ArtifactStore) -> None:
        _, first = _publish(artifact_store, {"a.txt": b"alpha"}, "one")
        _, second = _publish(artifact_store, {"b.txt": b"alpha"}, "two")
        _, moved = _publish(artifact_store, {"sub/a.txt": b"alpha"}, "three")
        assert len({first, second, moved}) == 3

    def test_digest_changes_when_one_byte_changes(self, artifact_store: ArtifactStore) -> None:
        data = bytearray(b"x" * 4096)
        _, first = _publish(artifact_store, {"a": bytes(data)}, "one")
        data[2048] ^= 1
        _, second = _publish(artifact_store, {"a": bytes(data)}, "two")
        assert first != second

    def test_digest_tells_moved_bytes_between_files_apart(
        self, artifact_store: ArtifactStore
    ) -> None:
        _, first = _publish(artifact_store, {"a": b"12", "b": b"3"}, "one")
        _, second = _publish(artifact_store, {"a": b"1", "b": b"23"}, "two")
        assert first != second

    # ---- missing, delete -------------------------------------------------------------------

    def test_reading_unpublished_uri_raises_not_found(self, artifact_store: ArtifactStore) -> None:
        uri = artifact_store.allocate("Model", "never")
        with pytest.raises(NotFoundError, match="No artifact is published at"):
            artifact_store.digest(uri)
        with pytest.raises(NotFoundError, match="publish it first"):
            with artifact_store.open_local(uri):
                pass

    def test_delete_removes_bytes_and_tolerates_missing(
        self, artifact_store: ArtifactStore
    ) -> None:
        uri, _ = _publish(artifact_store, {"a": b"1", "d/b": b"2"})
        artifact_store.delete(uri)
        assert not artifact_store.exists(uri)
        artifact_store.delete(uri)
        uri2, digest = _publish(artifact_store, {"a": b"1"}, "again")
        assert artifact_store.digest(uri2) == digest

    # ---- bad input -------------------------------------------------------------------------

    def test_rejects_symbolic_links_in_staged_bytes(self, artifact_store: ArtifactStore) -> None:
        uri = artifact_store.allocate("Model", "links")
        with artifact_store.staging() as staged:
            (staged / "passwd").symlink_to("/etc/passwd")
            with pytest.raises(InvalidInputError, match="is a symbolic link"):
                artifact_store.publish(staged, uri)
        assert not artifact_store.exists(uri)

    def test_rejects_reserved_marker_names_in_staged_bytes(
        self, artifact_store: ArtifactStore
    ) -> None:
        uri = artifact_store.allocate("Model", "markers")
        with artifact_store.staging() as staged:
            (staged / "_LOOPLINE_COMPLETE").write_bytes(b"{}")
            with pytest.raises(InvalidInputError, match="reserved prefix"):
                artifact_store.publish(staged, uri)

    def test_rejects_missing_staged_path(
        self, artifact_store: ArtifactStore, tmp_path: Path
    ) -> None:
        uri = artifact_store.allocate("Model", "missing")
        with pytest.raises(InvalidInputError, match="does not exist"):
            artifact_store.publish(tmp_path / "nope", uri)

    def test_every_method_rejects_uris_outside_the_root(
        self, artifact_store: ArtifactStore, tmp_path: Path
    ) -> None:
        staged = tmp_path / "staged"
        staged.mkdir()
        (staged / "f").write_bytes(b"x")
        for uri in nasty_uris(artifact_store.root):
            calls: list[Any] = [
                lambda u=uri: artifact_store.validate(u),
                lambda u=uri: artifact_store.exists(u),
                lambda u=uri: artifact_store.digest(u),
                lambda u=uri: artifact_store.delete(u),
                lambda u=uri: artifact_store.publish(staged, u),
                lambda u=uri: artifact_store.open_local(u).__enter__(),
                lambda u=uri: artifact_store.sweep(keep=[u]),
            ]
            for call in calls:
                with pytest.raises(PathTraversalError) as info:
                    call()
                message = str(info.value)
                assert repr(uri) in message, message
                assert repr(artifact_store.root) in message, message
        assert (staged / "f").read_bytes() == b"x"

    # ---- crashes ---------------------------------------------------------------------------

    def test_sweep_leaves_live_writers_alone(self, artifact_store: ArtifactStore) -> None:
        with artifact_store.staging() as staged:
            (staged / "f").write_bytes(b"in progress")
            assert artifact_store.sweep() == []
            assert (staged / "f").read_bytes() == b"in progress"

    def test_writer_killed_mid_write_leaves_nothing_visible_and_sweep_cleans(
        self, artifact_store: ArtifactStore, artifact_store_child_setup: str | None
    ) -> None:
        if artifact_store_child_setup is None:
            pytest.skip("this backend's bytes live in one process; no other process can crash")
        uri = artifact_store.allocate("Model", "crash")
        script = (
            artifact_store_child_setup
            + "\n"
            + textwrap.dedent(
                """
            import sys, time
            with store.staging() as staged:
                (staged / "weights.bin").write_bytes(b"half" * 1000)
                print(staged, flush=True)
                time.sleep(120)  # killed here, mid-write
                store.publish(staged, sys.argv[1])
            """
            )
        )
        proc = subprocess.Popen(
            [sys.executable, "-c", script, uri], stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout is not None
        stdout = proc.stdout
        try:
            ready, _, _ = select.select([stdout], [], [], 60)
            assert ready, "the writer did not start within 60 s"
            staged = Path(stdout.readline().strip())
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            stdout.close()
        assert proc.returncode == -signal.SIGKILL
        assert staged.exists(), "the killed writer should have left its staging directory"
        assert not artifact_store.exists(uri)
        with pytest.raises(NotFoundError):
            artifact_store.digest(uri)
        removed = artifact_store.sweep()
        assert removed, "sweep should remove the dead writer's staging directory"
        assert not staged.exists()
        assert artifact_store.sweep() == []
        uri2, digest = _publish(artifact_store, {"weights.bin": b"whole"}, "after-crash")
        assert artifact_store.digest(uri2) == digest


def wait_for(predicate: Any, *, timeout: float, what: str) -> None:
    """Poll ``predicate`` with backoff until it is true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    delay = 0.005
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 2, 0.2)
