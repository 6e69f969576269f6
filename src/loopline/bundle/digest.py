"""Content digests of bundles: the artifact store's own algorithm (one implementation).

``tree_digest(path)`` is the digest the registry recorded when the Trainer's bundle was
published as a Model artifact, so ``load_model(expected_digest=...)`` can check the bytes it
is about to load; ``file_sha256`` fills the manifest's per-file digests.
"""

from loopline.artifacts.digest import file_sha256, tree_digest

__all__ = ["file_sha256", "tree_digest"]
