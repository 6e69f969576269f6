"""Replica working directories of the local engine: ``<root>/<replica_id>``, private, made at
a replica's start and removed once it is gone for good.

Both the root and each directory are mode 0700 and owned by this user; an existing one that
is anything else (a symlink, a file, another user's directory) is refused rather than used,
so no other local user can plant files in a replica's working directory or point it
elsewhere. A replica restarted in place (same id) reuses its directory.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

from loopline.errors import BackendError, InvalidInputError


def work_dir(root: Path, replica_id: str) -> Path:
    """The working directory of ``replica_id`` under ``root``.

    Raises:
        InvalidInputError: ``replica_id`` is not a single path component.
    """
    if replica_id in ("", ".", "..") or "/" in replica_id or "\0" in replica_id:
        raise InvalidInputError(
            f"Replica id {replica_id!r} cannot name a working directory; use the "
            "deployment's replica ids (name-xxxxxx)."
        )
    return root / replica_id


def make_work_dir(root: Path, replica_id: str) -> tuple[Path, bool]:
    """The replica's private working directory, made if missing: ``(path, created now)``.

    Raises:
        BackendError: it cannot be made, or an existing one (or the root) is not a private
            directory of this user.
    """
    path = work_dir(root, replica_id)
    try:
        _private_dir(root, parents=True)
        return path, _private_dir(path)
    except OSError as exc:
        raise BackendError(
            f"cannot start replica {replica_id!r}: no working directory {str(path)!r} ({exc})"
        ) from exc


def remove_work_dir(root: Path, replica_id: str) -> None:
    """Remove the replica's working directory and everything in it (nothing if it has none).

    Raises:
        BackendError: it could not be removed (the message names it).
    """
    path = work_dir(root, replica_id)
    try:
        shutil.rmtree(path)  # never follows a symlink inside, and refuses one at the top
    except FileNotFoundError:
        return
    except OSError as exc:
        raise BackendError(
            f"could not remove the working directory {str(path)!r} of replica "
            f"{replica_id!r}: {exc}"
        ) from exc


def chdir_launcher(python: str) -> list[str]:
    """``argv + [DIR, *ARGV]`` changes to DIR and execs ARGV (isolated mode, no site): same
    pid, same start time (posix_spawn has no ``chdir``)."""
    code = "import os,sys;os.chdir(sys.argv[1]);os.execvp(sys.argv[2],sys.argv[2:])"
    return [python, "-I", "-S", "-c", code]


def _private_dir(path: Path, parents: bool = False) -> bool:
    """Make ``path`` a directory of mode 0700 (True: it was created now). An existing one
    must be a directory (not a symlink) owned by this user; it gets mode 0700.

    Raises:
        OSError: it cannot be made, or an existing one is not such a directory.
    """
    try:
        path.mkdir(mode=0o700, parents=parents)
        created = True
    except FileExistsError:
        created = False
    st = path.lstat()
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
        raise OSError(f"{str(path)!r} exists and is not a directory of this user")
    if stat.S_IMODE(st.st_mode) != 0o700:
        path.chmod(0o700)
    return created
