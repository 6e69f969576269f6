"""Local staging directories with owner markers, and the sweep that removes dead ones.

Layout of one entry::

    <area>/<token>/owner.json   host, pid, process start time of the writer
    <area>/<token>/data/        what the writer fills (yielded by ``staging()``)

Publishing renames ``data/`` away, so the entry is just removed afterwards. A process killed
mid-write leaves its entry; ``sweep`` removes it once the owner is provably dead.
"""

from __future__ import annotations

import os
import secrets
import shutil
import time
from pathlib import Path

from loopline.artifacts.owner import Owner

OWNER_FILE = "owner.json"
DATA_DIR = "data"


class StagingArea:
    """A directory of staging entries, each owned by one process."""

    def __init__(self, base: Path, *, unowned_grace: float) -> None:
        self.base = base
        self.unowned_grace = unowned_grace

    def create(self, *, with_data: bool = True) -> Path:
        """Make a fresh entry owned by the calling process and return its path."""
        self.base.mkdir(parents=True, exist_ok=True)
        entry = self.base / f"{time.time_ns():x}-{secrets.token_hex(8)}"
        entry.mkdir()
        fd = os.open(entry / OWNER_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.write(fd, Owner.current().to_json())
        finally:
            os.close(fd)
        if with_data:
            (entry / DATA_DIR).mkdir()
        return entry

    def sweep(self) -> list[Path]:
        """Remove entries whose owner is dead (or unreadable and older than the grace)."""
        removed: list[Path] = []
        try:
            entries = list(self.base.iterdir())
        except FileNotFoundError:
            return removed
        now = time.time()
        for entry in entries:
            if self._abandoned(entry, now):
                shutil.rmtree(entry, ignore_errors=True)
                if not entry.exists():
                    removed.append(entry)
        return removed

    def _abandoned(self, entry: Path, now: float) -> bool:
        try:
            raw = (entry / OWNER_FILE).read_bytes()
        except FileNotFoundError:
            raw = b""
        except OSError:
            return False
        owner = Owner.from_json(raw)
        if owner is not None:
            return owner.is_dead()
        # No readable owner: the writer died between mkdir and writing the marker, or the
        # entry is not ours. Give a live writer time to finish writing its marker.
        try:
            age = now - entry.lstat().st_mtime
        except OSError:
            return False
        return age > self.unowned_grace
