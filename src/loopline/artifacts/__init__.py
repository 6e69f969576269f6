"""Where artifact bytes live: an fsspec-backed store with atomic publish and content digests.

Key contracts: ``ArtifactStore`` (``store.py``); bytes become visible only through
``publish``; URIs outside the root are rejected. Imports only ``errors`` and ``types``.
"""

from loopline.artifacts.store import ArtifactStore

__all__ = ["ArtifactStore"]
