"""The artifact store contract: where artifact bytes live, published atomically.

An artifact's bytes are a directory (a dataset split, a model bundle) or a single file. They
are written into a local *staging* directory, then :meth:`ArtifactStore.publish` moves them
to their final URI atomically and returns their content digest. Nothing half-written is ever
visible at a final URI. URIs are validated: nothing outside the store root, no ``..``.

Backends: ``loopline.artifacts.fs.FsspecArtifactStore`` (local directory by default, any
fsspec URL). Conformance suite: ``loopline.testing.artifacts.ArtifactStoreContract``.
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path

from loopline.artifacts.orphans import ORPHAN_GRACE_SECONDS


class ArtifactStore(abc.ABC):
    """Bytes of artifacts under one root URL."""

    @property
    @abc.abstractmethod
    def root(self) -> str:
        """The root URL of the store (``file:///abs/path`` or ``s3://bucket/prefix``)."""

    @abc.abstractmethod
    def allocate(self, type_name: str, key: str) -> str:
        """Return a fresh final URI under the root for an artifact (nothing is written yet).

        ``key`` is a hint made of safe name characters (e.g. ``"run-12/trainer/model"``).
        Raises PathTraversalError if the key tries to escape the root.
        """

    @abc.abstractmethod
    @contextlib.contextmanager
    def staging(self) -> Iterator[Path]:
        """A fresh, empty local directory to write an artifact's bytes into.

        The directory is removed when the block exits unless it was published.
        """

    @abc.abstractmethod
    def publish(self, staged: Path, uri: str) -> str:
        """Move the staged directory's contents to ``uri`` atomically; return the digest.

        The digest is ``"sha256:<hex>"`` over the sorted relative paths and contents of every
        file. Raises AlreadyExistsError if ``uri`` already holds bytes, PathTraversalError if
        ``uri`` is outside the root.
        """

    @abc.abstractmethod
    def digest(self, uri: str) -> str:
        """Recompute the content digest of published bytes. Raises NotFoundError."""

    @abc.abstractmethod
    def exists(self, uri: str) -> bool:
        """True if bytes are published at ``uri``. Raises PathTraversalError for a bad URI."""

    @abc.abstractmethod
    @contextlib.contextmanager
    def open_local(self, uri: str) -> Iterator[Path]:
        """A local directory holding the published bytes (the store's own directory when
        local, a downloaded copy otherwise). Treat it as read-only. Raises NotFoundError.

        The local store hands out its live directory: whoever can write the store can change
        a file after a reader hashed it. A reader that deserialises what it checked reads
        each file once (``loopline.bundle.load_model`` copies the tree into a private folder
        while hashing it, then loads that copy)."""

    @abc.abstractmethod
    def delete(self, uri: str) -> None:
        """Remove published bytes (missing is not an error). Raises PathTraversalError."""

    @abc.abstractmethod
    def sweep(self, keep: Sequence[str] = ()) -> list[str]:
        """Remove leftovers of crashed writes (staging directories no process owns any more)
        and return what was removed. URIs in ``keep`` are never touched."""

    @abc.abstractmethod
    def sweep_orphans(
        self, referenced: Collection[str], *, now: float, grace: float = ORPHAN_GRACE_SECONDS
    ) -> list[str]:
        """Remove published artifact folders that no live or pending row references (a power
        loss undid the row, not the rename) once ``grace`` seconds old at ``now``; return
        their URIs. ``referenced`` is every live and pending row's URI: those folders, and
        any folder above one, are never touched (see :mod:`loopline.artifacts.orphans`)."""

    @abc.abstractmethod
    def validate(self, uri: str) -> str:
        """Return the normalised URI if it lies inside the root; else raise
        PathTraversalError naming the URI and the root."""
