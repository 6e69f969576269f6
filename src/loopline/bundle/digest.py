"""Content digests of files and directory trees (the registry's artifact digest)."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from loopline.errors import InvalidInputError, NotFoundError

_CHUNK = 1 << 20


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Return the lowercase hex sha256 of one file's bytes (streamed in 1 MiB chunks)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def tree_digest(path: str | os.PathLike[str]) -> str:
    """Return ``"sha256:<hex>"`` over the sorted relative paths and contents of a tree.

    The same algorithm as the artifact store (``loopline.artifacts``), so the digest the
    registry recorded for a model artifact can be checked here:

    1. list every regular file under ``path`` with its relative POSIX path (``a/b.txt``);
       a single file is listed under its own name; empty directories do not contribute;
    2. hash each file's bytes with sha256 (hex);
    3. sort by relative path and feed one sha256 with, per file,
       ``relpath.encode("utf-8", "surrogateescape") + b"\\0" + hex.encode() + b"\\n"``.

    Raises:
        NotFoundError: ``path`` does not exist.
        InvalidInputError: the tree holds a symbolic link or a special file.
    """
    root = Path(path)
    try:
        mode = os.lstat(root).st_mode
    except FileNotFoundError:
        raise NotFoundError(f"Cannot digest {str(root)!r}: no such file or directory.") from None
    files: list[tuple[str, Path]] = []
    if stat.S_ISREG(mode):
        files.append((root.name, root))
    elif stat.S_ISDIR(mode):
        for dirpath, dirnames, filenames in os.walk(root):
            base = Path(dirpath)
            for name in [*dirnames, *filenames]:
                p = base / name
                m = os.lstat(p).st_mode
                if stat.S_ISDIR(m):
                    continue
                if not stat.S_ISREG(m):
                    kind = "a symbolic link" if stat.S_ISLNK(m) else "a special file"
                    raise InvalidInputError(
                        f"Cannot digest {str(root)!r}: {str(p)!r} is {kind}; model bundles hold "
                        "regular files only."
                    )
                files.append((p.relative_to(root).as_posix(), p))
    else:
        raise InvalidInputError(f"Cannot digest {str(root)!r}: not a regular file or directory.")
    h = hashlib.sha256()
    for rel, p in sorted(files):
        h.update(rel.encode("utf-8", "surrogateescape") + b"\0" + file_sha256(p).encode() + b"\n")
    return f"sha256:{h.hexdigest()}"
