"""Durable local file-system primitives: fsync, rename-without-replace, hashing a tree."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from loopline.artifacts.digest import combine, local_files, stream_sha256

_AT_FDCWD = -100
_RENAME_NOREPLACE = 1


def fsync_dir(path: Path) -> None:
    """Flush a directory entry (a rename or a create inside it) to stable storage."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def makedirs_durable(path: Path) -> None:
    """``mkdir -p`` that fsyncs the parent of every directory it creates."""
    missing: list[Path] = []
    cursor = path
    while not cursor.exists():
        missing.append(cursor)
        cursor = cursor.parent
    for directory in reversed(missing):
        try:
            directory.mkdir()
        except FileExistsError:
            continue  # a concurrent writer made it; it is just as good
        fsync_dir(directory.parent)


def _load_renameat2() -> Callable[..., int] | None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        func = libc.renameat2
    except (OSError, AttributeError):
        return None
    func.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    func.restype = ctypes.c_int
    renameat2: Callable[..., int] = func
    return renameat2


_renameat2 = _load_renameat2()


def rename_noreplace(src: Path, dst: Path) -> None:
    """Rename ``src`` to ``dst`` atomically, failing if ``dst`` exists.

    Uses Linux ``renameat2(RENAME_NOREPLACE)``; elsewhere (or on file systems without it)
    falls back to a check then ``os.rename``, which refuses non-empty directories anyway.

    Raises:
        FileExistsError: ``dst`` exists.
    """
    if _renameat2 is not None:
        rc = _renameat2(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), _RENAME_NOREPLACE)
        if rc == 0:
            return
        err = ctypes.get_errno()
        if err == errno.EEXIST:
            raise FileExistsError(err, os.strerror(err), str(dst))
        if err not in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
            raise OSError(err, os.strerror(err), str(dst))
    if os.path.lexists(dst):
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(dst))
    try:
        os.rename(src, dst)
    except OSError as exc:
        if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
            raise FileExistsError(exc.errno, os.strerror(exc.errno), str(dst)) from exc
        raise


def hash_and_fsync(tree: Path, *, sync: bool = True) -> str:
    """Digest a local tree, flushing every file and directory to disk when ``sync``."""
    entries = []
    for rel, path in local_files(tree):
        with open(path, "rb") as f:
            entries.append((rel, stream_sha256(f)))
            if sync:
                os.fsync(f.fileno())
    if sync:
        for dirpath, _, _ in os.walk(tree, topdown=False):
            fsync_dir(Path(dirpath))
    return combine(entries)


def remove_path(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
