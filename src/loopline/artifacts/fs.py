"""``FsspecArtifactStore``: artifact bytes in a local directory or any fsspec file system.

Two code paths behind one contract:

- **local root** (a path or ``file://`` URL): writers stage inside ``<root>/.staging/`` (same
  file system), ``publish`` fsyncs every file and directory, renames the staged directory
  into place with ``renameat2(RENAME_NOREPLACE)`` and fsyncs the parent. The rename is the
  commit: a reader sees all of the artifact or nothing.
- **remote root** (``s3://``, ``gs://``, ``memory://``, …): object stores have no atomic
  directory rename, so ``publish`` writes a ``_LOOPLINE_WRITER`` owner marker, uploads every
  file (concurrently where the back-end is async), then writes ``_LOOPLINE_COMPLETE`` last:
  that object is the commit. ``exists``/``digest``/``open_local`` require the completion
  marker; ``sweep`` removes uploads whose writer died.

Every public method validates its URI first (see ``_uri.py``).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Collection, Iterator, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar

from loopline.artifacts._localfs import (
    fsync_dir,
    hash_and_fsync,
    makedirs_durable,
    remove_path,
    rename_noreplace,
)
from loopline.artifacts._staging import DATA_DIR, StagingArea
from loopline.artifacts._uri import RESERVED_PREFIX, check_uri, parse_root, segment_problem
from loopline.artifacts.digest import combine, local_files, stream_sha256
from loopline.artifacts.orphans import (
    ORPHAN_GRACE_SECONDS,
    References,
    is_orphan,
    local_artifact_folders,
    remote_artifact_folders,
)
from loopline.artifacts.owner import Owner
from loopline.artifacts.store import ArtifactStore
from loopline.errors import (
    AlreadyExistsError,
    BackendError,
    InvalidInputError,
    NotFoundError,
    PathTraversalError,
)
from loopline.types import check_name


class FsspecArtifactStore(ArtifactStore):
    """Artifact bytes under one root: a local directory (default) or an fsspec URL.

    Args:
        root: a local path (``"./artifacts"``) or URL (``"s3://bucket/prefix"``); it is
            normalised to a URL (``root`` property).
        local_staging: where a *remote* store stages and downloads bytes on this machine
            (default: ``<tmp>/loopline-staging``). Local stores always stage inside the root.
        unowned_grace: seconds after which a staging directory without a readable owner
            marker counts as abandoned.
        abandon_after: seconds after which an unfinished remote upload started on *another*
            host counts as abandoned (its writer's liveness cannot be checked from here).

    Example:
        >>> store = FsspecArtifactStore("/tmp/artifacts")
        >>> uri = store.allocate("Model", "run-1/trainer")
        >>> with store.staging() as d:
        ...     _ = (d / "model.json").write_text("{}")
        ...     digest = store.publish(d, uri)
    """

    COMPLETE_MARKER: ClassVar[str] = "_LOOPLINE_COMPLETE"
    WRITER_MARKER: ClassVar[str] = "_LOOPLINE_WRITER"

    def __init__(
        self,
        root: str,
        *,
        local_staging: str | os.PathLike[str] | None = None,
        unowned_grace: float = 60.0,
        abandon_after: float = 24 * 3600.0,
    ) -> None:
        self._root = parse_root(root)
        self.local_staging = local_staging
        self.unowned_grace = unowned_grace
        self.abandon_after = abandon_after

    def __repr__(self) -> str:
        return f"FsspecArtifactStore({self._root.url!r})"

    @property
    def root(self) -> str:
        """The normalised root URL (``file:///abs/path``, ``s3://bucket/prefix``)."""
        return self._root.url

    @cached_property
    def _fs(self) -> Any:
        import fsspec  # local stores never import it

        return fsspec.filesystem(self._root.scheme)

    @cached_property
    def _staging(self) -> StagingArea:
        if self._root.is_local:
            base = Path(self._root.path) / ".staging"
        elif self.local_staging is not None:
            base = Path(self.local_staging)
        else:
            base = Path(tempfile.gettempdir()) / "loopline-staging"
        return StagingArea(base, unowned_grace=self.unowned_grace)

    # ---- naming ----------------------------------------------------------------------------

    def validate(self, uri: str) -> str:
        """Return the normalised URI if it lies inside the root, else raise
        PathTraversalError naming the URI, the reason and the root."""
        return check_uri(uri, self._root)

    def allocate(self, type_name: str, key: str) -> str:
        """A fresh URI ``<root>/<type_name>/<key>/<time-ordered unique id>``.

        Raises:
            InvalidInputError: ``type_name`` is not a valid name.
            PathTraversalError: a segment of ``key`` is ``..``, hidden, empty or unsafe.
        """
        check_name("Artifact type", type_name)
        if not isinstance(key, str) or not key:
            raise InvalidInputError(f"Artifact key {key!r} is empty; give a name like 'run-1/x'.")
        for segment in key.split("/"):
            problem = segment_problem(segment)
            if problem is not None:
                raise PathTraversalError(
                    f"Artifact key {key!r} {problem}; keys are '/'-separated names that stay "
                    f"inside the store root {self.root!r}."
                )
        token = f"{time.time_ns():016x}{secrets.token_hex(8)}"
        return self.validate(f"{self._root.prefix}{type_name}/{key}/{token}")

    # ---- writing ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def staging(self) -> Iterator[Path]:
        """A fresh empty local directory, owned by this process, removed after the block."""
        entry = self._staging.create()
        try:
            yield entry / DATA_DIR
        finally:
            shutil.rmtree(entry, ignore_errors=True)

    def publish(self, staged: Path, uri: str) -> str:
        """Move a staged directory (or a single staged file) to ``uri``; return its digest.

        A single file becomes an artifact directory holding just that file, so readers always
        get a directory. The staged path is consumed (moved, or copied then removed).

        Raises:
            PathTraversalError: ``uri`` is outside the root.
            AlreadyExistsError: ``uri`` already holds bytes.
            InvalidInputError: ``staged`` is missing, holds a link or special file, or uses a
                reserved ``_LOOPLINE*`` name at its top level.
            BackendError: the remote upload failed (nothing is left visible).
        """
        uri = self.validate(uri)
        staged = Path(staged)
        if not os.path.lexists(staged):
            raise InvalidInputError(
                f"Staged path {str(staged)!r} does not exist; write the artifact's bytes into "
                "a directory from staging() and publish that."
            )
        files = local_files(staged)
        for rel, _ in files:
            if rel.split("/")[0].startswith(RESERVED_PREFIX):
                raise InvalidInputError(
                    f"Staged file {rel!r} uses the reserved prefix {RESERVED_PREFIX!r}; rename it."
                )
        if self._root.is_local:
            return self._publish_local(staged, uri)
        return self._publish_remote(staged, files, uri)

    def _publish_local(self, staged: Path, uri: str) -> str:
        target = self._local_target(uri)
        if os.path.lexists(target):
            raise self._exists_error(uri)
        real, root = Path(os.path.realpath(staged)), Path(os.path.realpath(self._root.path))
        if real.is_relative_to(root) and not real.is_relative_to(root / ".staging"):
            raise InvalidInputError(
                f"Staged path {str(staged)!r} is inside the store root {self.root!r}; published "
                "artifacts are immutable. Copy the bytes into a directory from staging()."
            )
        entry: Path | None = None
        source = staged
        self._staging.base.mkdir(parents=True, exist_ok=True)
        staging_dev = os.stat(self._staging.base).st_dev
        copied = False
        if staged.is_file() or os.stat(staged).st_dev != staging_dev:
            # A single file gets a directory of its own; a directory on another file system
            # is copied next to the root first, so the commit is still one rename.
            entry = self._staging.create()
            source = entry / DATA_DIR
            copied = self._move_into(staged, source)
        try:
            digest = hash_and_fsync(source)
            makedirs_durable(target.parent)
            try:
                rename_noreplace(source, target)
            except FileExistsError:
                if entry is not None and not copied:
                    os.rename(source / staged.name, staged)  # give the caller its file back
                raise self._exists_error(uri) from None
            fsync_dir(target.parent)
        finally:
            if entry is not None:
                shutil.rmtree(entry, ignore_errors=True)
        if copied:
            remove_path(staged)
        return digest

    @staticmethod
    def _move_into(staged: Path, data: Path) -> bool:
        """Move (or copy across devices) staged bytes into ``data``; True if copied."""
        if staged.is_file():
            try:
                os.rename(staged, data / staged.name)
                return False
            except OSError:
                shutil.copyfile(staged, data / staged.name)
                return True
        data.rmdir()
        shutil.copytree(staged, data, symlinks=True)
        return True

    def _publish_remote(self, staged: Path, files: list[tuple[str, Path]], uri: str) -> str:
        fs, path = self._fs, self._root.fs_path(uri)
        fs.invalidate_cache()
        if fs.exists(path):
            raise self._exists_error(uri)
        entries = []
        for rel, local in files:
            with open(local, "rb") as f:
                entries.append((rel, stream_sha256(f)))
        digest = combine(entries)
        marker = json.dumps({"digest": digest, "files": len(files), "published_at": time.time()})
        try:
            fs.pipe_file(f"{path}/{self.WRITER_MARKER}", Owner.current().to_json())
            if files:  # one call: async back-ends (s3fs, gcsfs, adlfs) upload concurrently
                fs.put([str(local) for _, local in files], [f"{path}/{rel}" for rel, _ in files])
            fs.pipe_file(f"{path}/{self.COMPLETE_MARKER}", marker.encode())
        except BaseException as exc:
            with contextlib.suppress(Exception):  # best effort; sweep() removes what is left
                fs.rm(path, recursive=True)
            if isinstance(exc, Exception):
                raise BackendError(
                    f"Uploading artifact {uri!r} failed ({exc}); nothing was published. "
                    "Check the store's credentials and connectivity, then publish again."
                ) from exc
            raise
        with contextlib.suppress(FileNotFoundError):
            fs.rm_file(f"{path}/{self.WRITER_MARKER}")
        remove_path(staged)
        return digest

    # ---- reading ---------------------------------------------------------------------------

    def exists(self, uri: str) -> bool:
        """True if bytes are published at ``uri``. Raises PathTraversalError."""
        uri = self.validate(uri)
        if self._root.is_local:
            return self._local_target(uri).is_dir()
        self._fs.invalidate_cache()
        return bool(self._fs.exists(f"{self._root.fs_path(uri)}/{self.COMPLETE_MARKER}"))

    def digest(self, uri: str) -> str:
        """Recompute the content digest. Raises NotFoundError, PathTraversalError."""
        uri = self.validate(uri)
        if not self.exists(uri):
            raise self._missing_error(uri)
        if self._root.is_local:
            return hash_and_fsync(self._local_target(uri), sync=False)
        entries = []
        for rel, remote in self._remote_files(uri):
            with self._fs.open(remote, "rb") as f:
                entries.append((rel, stream_sha256(f)))
        return combine(entries)

    @contextlib.contextmanager
    def open_local(self, uri: str) -> Iterator[Path]:
        """A local directory with the bytes: the store's own directory when local (read
        only! and live: verify what you read, not the folder — see
        :meth:`ArtifactStore.open_local`), a verified download otherwise (removed after the
        block).

        Raises:
            NotFoundError: nothing is published at ``uri``.
            BackendError: the downloaded bytes do not match the digest recorded at publish.
        """
        uri = self.validate(uri)
        if not self.exists(uri):
            raise self._missing_error(uri)
        if self._root.is_local:
            yield self._local_target(uri)
            return
        entry = self._staging.create()
        try:
            data = entry / DATA_DIR
            remotes = self._remote_files(uri)
            for rel, _ in remotes:
                (data / rel).parent.mkdir(parents=True, exist_ok=True)
            if remotes:  # one call: async back-ends download concurrently
                self._fs.get([r for _, r in remotes], [str(data / rel) for rel, _ in remotes])
            self._verify_download(uri, data)
            yield data
        finally:
            shutil.rmtree(entry, ignore_errors=True)

    def _verify_download(self, uri: str, data: Path) -> None:
        marker = f"{self._root.fs_path(uri)}/{self.COMPLETE_MARKER}"
        try:
            expected = json.loads(self._fs.cat_file(marker))["digest"]
        except FileNotFoundError:
            raise self._missing_error(uri) from None
        except (ValueError, KeyError, TypeError) as exc:
            raise BackendError(
                f"Artifact {uri!r} has an unreadable completion marker; republish it."
            ) from exc
        actual = hash_and_fsync(data, sync=False)
        if actual != expected:
            raise BackendError(
                f"Artifact {uri!r} downloaded with digest {actual}, but it was published with "
                f"{expected}; its bytes changed or are corrupt. Republish it."
            )

    def _remote_files(self, uri: str) -> list[tuple[str, str]]:
        base = self._root.fs_path(uri)
        found: list[tuple[str, str]] = []
        for remote in self._fs.find(base):
            rel = str(remote)[len(base) + 1 :] if str(remote).startswith(base + "/") else ""
            if rel in (self.COMPLETE_MARKER, self.WRITER_MARKER):
                continue
            parts = rel.split("/")
            if not rel or "\\" in rel or "\x00" in rel or any(p in ("", ".", "..") for p in parts):
                raise PathTraversalError(
                    f"Artifact {uri!r} holds an object with the unsafe key {remote!r}, which "
                    f"would leave the artifact when downloaded from store root {self.root!r}; "
                    "refusing to read it. Delete the object."
                )
            found.append((rel, str(remote)))
        return sorted(found)

    # ---- removing --------------------------------------------------------------------------

    def delete(self, uri: str) -> None:
        """Remove published bytes (recursively); missing is not an error.

        Local: the directory is first renamed into the staging area (readers see it vanish at
        once), then removed. Remote: the completion marker goes first.
        """
        uri = self.validate(uri)
        if self._root.is_local:
            target = self._local_target(uri)
            if not os.path.lexists(target):
                return
            entry = self._staging.create(with_data=False)
            os.rename(target, entry / DATA_DIR)
            fsync_dir(target.parent)
            shutil.rmtree(entry, ignore_errors=True)
            return
        fs, path = self._fs, self._root.fs_path(uri)
        fs.invalidate_cache()
        if not fs.exists(path):
            return
        # A deleter that dies half-way leaves an owned, incomplete upload for sweep().
        fs.pipe_file(f"{path}/{self.WRITER_MARKER}", Owner.current().to_json())
        with contextlib.suppress(FileNotFoundError):
            fs.rm_file(f"{path}/{self.COMPLETE_MARKER}")
        fs.rm(path, recursive=True)

    def sweep(self, keep: Sequence[str] = ()) -> list[str]:
        """Remove leftovers of crashed writers; return the URLs removed.

        Removes staging directories whose owner process is dead, and (remote stores) uploads
        without a completion marker whose writer is dead or, for writers on other hosts,
        older than ``abandon_after``. URIs in ``keep`` are never touched.
        """
        kept = {self.validate(k) for k in keep}
        removed = ["file://" + str(p) for p in self._staging.sweep()]
        if self._root.is_local:
            return removed
        fs = self._fs
        fs.invalidate_cache()
        if not fs.exists(self._root.path or "/"):
            return removed
        base = self._root.path.rstrip("/")
        by_dir: dict[str, set[str]] = {}
        for remote in fs.find(self._root.path or "/"):
            parent, _, name = str(remote).rpartition("/")
            if name in (self.WRITER_MARKER, self.COMPLETE_MARKER):
                by_dir.setdefault(parent, set()).add(name)
        for directory, markers in sorted(by_dir.items()):
            if self.COMPLETE_MARKER in markers or not directory.startswith(base + "/"):
                continue
            uri = self._root.prefix + directory[len(base) + 1 :]
            if uri in kept or not self._writer_abandoned(f"{directory}/{self.WRITER_MARKER}"):
                continue
            fs.rm(directory, recursive=True)
            removed.append(uri)
        return removed

    def sweep_orphans(
        self, referenced: Collection[str], *, now: float, grace: float = ORPHAN_GRACE_SECONDS
    ) -> list[str]:
        """Remove published folders no live or pending row references, ``grace`` seconds
        after they last changed (local) or were completed (remote); return their URIs.

        Raises:
            InvalidInputError: ``grace`` is negative or not finite.
        """
        if not isinstance(grace, int | float) or not math.isfinite(grace) or grace < 0:
            raise InvalidInputError(
                f"Orphan grace {grace!r} must be a finite number of seconds ≥ 0."
            )
        rels = []
        for uri in referenced:
            try:
                rels.append(self.validate(uri)[len(self._root.prefix) :])
            except InvalidInputError:
                continue  # another store's URI (or none at all) protects nothing here
        references = References.of(rels)
        if self._root.is_local:
            folders = list(local_artifact_folders(Path(self._root.path), references))
        else:
            self._fs.invalidate_cache()
            folders = remote_artifact_folders(self._fs, self._root.path, self.COMPLETE_MARKER)
        removed: list[str] = []
        for folder in folders:
            if is_orphan(folder, references, now, grace):
                uri = self._root.prefix + folder.rel
                self.delete(uri)
                removed.append(uri)
        return removed

    def _writer_abandoned(self, marker: str) -> bool:
        try:
            owner = Owner.from_json(self._fs.cat_file(marker))
        except FileNotFoundError:
            return False  # finished or removed meanwhile
        if owner is None:
            return True  # object writes are whole: an unreadable marker is garbage
        return owner.is_dead() or time.time() - owner.created > self.abandon_after

    # ---- helpers ---------------------------------------------------------------------------

    def _local_target(self, uri: str) -> Path:
        target = Path(self._root.fs_path(uri))
        real_root = os.path.realpath(self._root.path)
        if not os.path.realpath(target).startswith(real_root.rstrip("/") + "/"):
            raise PathTraversalError(
                f"Artifact URI {uri!r} resolves outside the store root {self.root!r} through a "
                "symbolic link; remove the link."
            )
        return target

    def _exists_error(self, uri: str) -> AlreadyExistsError:
        return AlreadyExistsError(
            f"Artifact URI {uri!r} already holds published bytes; allocate() a fresh URI."
        )

    def _missing_error(self, uri: str) -> NotFoundError:
        return NotFoundError(
            f"No artifact is published at {uri!r} in store {self.root!r}; publish it first."
        )
