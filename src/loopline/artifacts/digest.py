"""Content digests of artifacts: ``sha256`` over sorted relative paths and file contents.

The digest is computed in two levels so that memory stays bounded for any artifact size:
each file is hashed by streaming it in chunks, then the artifact digest is the SHA-256 of
one line per file, sorted by relative path::

    <relative/posix/path> NUL <hex sha256 of the file's bytes> LF

A single-file artifact hashes like a directory that holds only that file. Empty directories
do not contribute (object stores have no directories).
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from loopline.errors import InvalidInputError, NotFoundError

CHUNK = 1 << 20


def stream_sha256(f: BinaryIO) -> str:
    """Hex SHA-256 of a binary stream, read in 1 MiB chunks."""
    h = hashlib.sha256()
    while chunk := f.read(CHUNK):
        h.update(chunk)
    return h.hexdigest()


def combine(entries: Iterable[tuple[str, str]]) -> str:
    """The artifact digest from ``(relative path, file hex sha256)`` pairs, in any order."""
    h = hashlib.sha256()
    for rel, file_hex in sorted(entries):
        h.update(rel.encode("utf-8", "surrogateescape") + b"\0" + file_hex.encode() + b"\n")
    return "sha256:" + h.hexdigest()


def local_files(staged: Path) -> list[tuple[str, Path]]:
    """Every regular file of a staged directory (or the staged file itself), with its
    relative POSIX path, sorted.

    Raises:
        InvalidInputError: the tree holds a symbolic link or a special file (socket, FIFO,
            device); artifacts hold regular files only, so a link can never smuggle bytes
            from outside the staging directory into the store.
    """
    mode = os.lstat(staged).st_mode
    if stat.S_ISREG(mode):
        return [(staged.name, staged)]
    if not stat.S_ISDIR(mode):
        raise InvalidInputError(
            f"Staged path {str(staged)!r} is neither a regular file nor a directory; "
            "stage artifacts as plain files."
        )
    found: list[tuple[str, Path]] = []
    for dirpath, dirnames, filenames in os.walk(staged):
        base = Path(dirpath)
        for name in [*dirnames, *filenames]:
            path = base / name
            mode = os.lstat(path).st_mode
            if stat.S_ISDIR(mode):
                continue
            if not stat.S_ISREG(mode):
                kind = "a symbolic link" if stat.S_ISLNK(mode) else "a special file"
                raise InvalidInputError(
                    f"Staged artifact file {str(path)!r} is {kind}; artifacts hold regular "
                    "files only. Copy the target's bytes into the staging directory instead."
                )
            found.append((path.relative_to(staged).as_posix(), path))
    found.sort()
    return found


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of one file's bytes, streamed."""
    with open(path, "rb") as f:
        return stream_sha256(f)


def tree_digest(path: str | os.PathLike[str]) -> str:
    """The artifact digest (``"sha256:<hex>"``) of a local file or directory tree.

    The same value the artifact store records when it publishes these bytes, so a reader
    (the model server, a component) can check what it loads against the metadata store.

    Raises:
        NotFoundError: ``path`` does not exist.
        InvalidInputError: the tree holds a symbolic link or a special file.
    """
    root = Path(path)
    try:
        files = local_files(root)
    except FileNotFoundError:
        raise NotFoundError(f"Cannot digest {str(root)!r}: no such file or directory.") from None
    return combine((rel, file_sha256(p)) for rel, p in files)
