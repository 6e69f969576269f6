"""tree_digest: the registry's artifact digest, identical to the artifact store's."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from loopline.artifacts import FsspecArtifactStore
from loopline.bundle import file_sha256, tree_digest
from loopline.errors import InvalidInputError, NotFoundError


def _tree(root: Path) -> Path:
    (root / "sub").mkdir(parents=True)
    (root / "b.txt").write_bytes(b"bee")
    (root / "a.txt").write_bytes(b"ay")
    (root / "sub" / "c.bin").write_bytes(bytes(range(256)))
    (root / "empty").mkdir()
    return root


def test_digest_follows_the_documented_algorithm(tmp_path: Path) -> None:
    root = _tree(tmp_path / "t")
    h = hashlib.sha256()
    for rel in ("a.txt", "b.txt", "sub/c.bin"):
        h.update(rel.encode() + b"\0" + file_sha256(root / rel).encode() + b"\n")
    assert tree_digest(root) == "sha256:" + h.hexdigest()


def test_digest_equals_the_artifact_stores_digest(tmp_path: Path) -> None:
    store = FsspecArtifactStore(str(tmp_path / "store"))
    uri = store.allocate("Model", "run-1/trainer")
    with store.staging() as staged:
        _tree(staged / "x")
        for p in (staged / "x").iterdir():
            os.rename(p, staged / p.name)
        (staged / "x").rmdir()
        expected = tree_digest(staged)
        published = store.publish(staged, uri)
    assert published == expected
    with store.open_local(uri) as local:
        assert tree_digest(local) == published


def test_digest_changes_with_content_and_with_names(tmp_path: Path) -> None:
    root = _tree(tmp_path / "t")
    first = tree_digest(root)
    (root / "a.txt").write_bytes(b"AY")
    second = tree_digest(root)
    (root / "a.txt").rename(root / "z.txt")
    assert len({first, second, tree_digest(root)}) == 3


def test_single_file_digests_like_a_tree_holding_it(tmp_path: Path) -> None:
    (tmp_path / "one").mkdir()
    f = tmp_path / "one" / "m.bin"
    f.write_bytes(b"x")
    assert tree_digest(f) == tree_digest(tmp_path / "one")


def test_symlinks_and_missing_paths_are_refused(tmp_path: Path) -> None:
    root = _tree(tmp_path / "t")
    (root / "link").symlink_to(root / "a.txt")
    with pytest.raises(InvalidInputError, match="is a symbolic link"):
        tree_digest(root)
    with pytest.raises(NotFoundError, match="no such file"):
        tree_digest(tmp_path / "nope")
