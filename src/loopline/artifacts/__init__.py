"""Where artifact bytes live: an fsspec-backed store with atomic publish and content digests.

Key contracts:
- ``ArtifactStore`` (``store.py``): bytes become visible only through ``publish``, which is
  atomic (local: fsync + rename; remote: upload, then a ``_LOOPLINE_COMPLETE`` marker last).
- Every URI is validated against the root first; anything outside it (``..``, encoded
  ``..``, absolute paths, other schemes or buckets, backslashes, NUL) raises
  ``PathTraversalError``.
- Digests are ``sha256:<hex>`` over sorted relative paths and per-file SHA-256s.
- ``sweep`` removes what crashed writers left; live writers are told apart by pid and
  process start time.
- Conformance suite: ``loopline.testing.artifacts.ArtifactStoreContract``.

Imports only ``errors`` and ``types``.
"""

from loopline.artifacts.fs import FsspecArtifactStore
from loopline.artifacts.store import ArtifactStore

__all__ = ["ArtifactStore", "FsspecArtifactStore"]
