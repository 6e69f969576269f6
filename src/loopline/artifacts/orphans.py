"""Orphaned artifact folders: published bytes that no artifact row points to.

A writer records its output's row (``pending``) before it publishes the bytes, and turns the
row ``live`` after. With SQLite's ``synchronous=NORMAL`` a power loss can undo the last
committed transactions while the rename of the bytes into place survives (it was fsynced):
the folder is then published but no row names it, so nothing would ever read or collect it.

:meth:`ArtifactStore.sweep_orphans` finds such folders and removes them. What it removes is
decided here, without I/O:

- only folders laid out by :meth:`ArtifactStore.allocate` (``<root>/<type>/<key…>/<token>``,
  the token being 32 lowercase hex digits, the first 16 the allocation time in ns); nothing
  hidden (``.staging``), nothing the store did not name, nothing inside an artifact;
- never a folder that a live or pending row references, nor one above such a folder (a
  key segment that happens to look like a token); the caller passes those rows' URIs;
- only once the folder has been left alone for ``grace`` seconds: its last change (the
  rename into place updates its change time) and its allocation are both older. Rows are
  committed before their bytes are published, so a folder whose row the caller's list missed
  (committed meanwhile) is younger than that.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ORPHAN_GRACE_SECONDS = 3600.0
"""Default age before an unreferenced artifact folder is removed."""

TOKEN = re.compile(r"[0-9a-f]{32}")
"""The last segment :meth:`ArtifactStore.allocate` gives every artifact URI."""

_MIN_DEPTH = 3  # <type>/<key segment(s)>/<token>


@dataclass(frozen=True, slots=True)
class ArtifactFolder:
    """A published folder under the root: its path relative to the root, and when it last
    changed (seconds since the epoch)."""

    rel: str
    changed_at: float

    @property
    def allocated_at(self) -> float:
        """The allocation time its token carries (seconds since the epoch)."""
        return int(self.rel.rsplit("/", 1)[-1][:16], 16) / 1e9


def is_artifact_path(rel: str) -> bool:
    """Whether ``rel`` (relative to the root, ``/``-separated) is laid out like an allocated
    artifact: at least ``<type>/<key>/<token>``, no hidden or reserved segment."""
    parts = rel.split("/")
    return (
        len(parts) >= _MIN_DEPTH
        and TOKEN.fullmatch(parts[-1]) is not None
        and not any(p.startswith((".", "_LOOPLINE")) or not p for p in parts)
    )


@dataclass(frozen=True, slots=True)
class References:
    """The folders live or pending rows name (relative to the root), and every folder above
    one of them: neither kind is ever removed."""

    folders: frozenset[str]
    ancestors: frozenset[str]

    @classmethod
    def of(cls, rels: Iterable[str]) -> References:
        folders = frozenset(r.strip("/") for r in rels)
        ancestors = {f.rsplit("/", n)[0] for f in folders for n in range(1, f.count("/") + 1)}
        return cls(folders, frozenset(ancestors))

    def protects(self, rel: str) -> bool:
        return rel in self.folders or rel in self.ancestors


def is_orphan(folder: ArtifactFolder, references: References, now: float, grace: float) -> bool:
    """Whether ``folder`` is removed at ``now``: laid out like an artifact, not protected by
    ``references``, and both its allocation and its last change ``grace`` seconds old."""
    if references.protects(folder.rel) or not is_artifact_path(folder.rel):
        return False
    return now - folder.changed_at >= grace and now - folder.allocated_at >= grace


def local_artifact_folders(root: Path, references: References) -> Iterator[ArtifactFolder]:
    """The unreferenced artifact folders under a local ``root``: never inside a referenced
    one, nor in hidden or reserved folders, nor through links. A folder above a referenced
    one is walked through, whatever its name."""
    stack = [(root, "")]
    while stack:
        directory, prefix = stack.pop()
        try:
            entries = list(os.scandir(directory))
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            continue
        for entry in entries:
            if entry.name.startswith((".", "_LOOPLINE")):
                continue
            rel = f"{prefix}{entry.name}"
            if rel in references.folders:
                continue  # an artifact's own bytes: not ours to judge
            try:
                if not entry.is_dir(follow_symlinks=False):
                    continue
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if is_artifact_path(rel) and rel not in references.ancestors:
                yield ArtifactFolder(rel, max(st.st_mtime, st.st_ctime))
            else:
                stack.append((Path(entry.path), rel + "/"))


def remote_artifact_folders(fs: Any, base: str, complete_marker: str) -> list[ArtifactFolder]:
    """The completed uploads under ``base`` of an fsspec file system ``fs``, each dated by
    the ``published_at`` of its completion marker (unreadable markers are left alone)."""
    base = base.rstrip("/")
    if not fs.exists(base or "/"):
        return []
    found = []
    for remote in fs.find(base or "/"):
        directory, _, name = str(remote).rpartition("/")
        if name != complete_marker or not directory.startswith(base + "/"):
            continue
        try:
            published = float(json.loads(fs.cat_file(str(remote)))["published_at"])
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            continue  # gone meanwhile, or not a marker of ours
        found.append(ArtifactFolder(directory[len(base) + 1 :], published))
    return found
