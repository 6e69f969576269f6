"""How the workers of one server converge on the same loaded models.

A load or unload reaches one worker (the kernel spreads connections over the workers'
``SO_REUSEPORT`` sockets). That worker records the change in the server's state folder
(``RepositoryOptions.state_dir``, 0700, made by the composition root and removed when the
server stops); every worker polls the folder and applies what changed; the worker that took
the request answers once every live worker reports it applied it.

Files in the state folder:

- ``desired.json`` — ``{"generation": n, "models": {NAME: spec | null}}``: the models changed
  since start (a :class:`~loopline.serving.repository.LoadSpec` document, or ``null`` for
  unloaded); a name not listed keeps what the server started with. Changed under an
  exclusive ``flock`` of ``desired.lock``, written to a temporary file and renamed, so a
  reader sees a whole document.
- ``worker-ID.json`` — ``{"pid", "generation", "models": {NAME: {"version", "state",
  "reason"}}}``: what worker ID applied last. A worker writes it after each convergence and
  at start, before it accepts connections (a restarted worker first applies the desired
  models, then serves).

Nothing here reads a clock: the caller polls and keeps its deadline.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loopline.errors import BackendError, InvalidInputError
from loopline.serving.repository import LoadSpec

_DESIRED = "desired.json"
_LOCK = "desired.lock"


@dataclass(frozen=True, slots=True)
class Desired:
    """The models changed since start: name → spec to serve, or None for unloaded."""

    generation: int
    models: Mapping[str, LoadSpec | None]


@dataclass(frozen=True, slots=True)
class WorkerStatus:
    """What one worker applied last (``models``: name → {version, state, reason})."""

    worker: str
    pid: int
    generation: int
    models: Mapping[str, Mapping[str, str]]


class SharedState:
    """The state folder of one server, seen from worker ``worker`` (see module docstring)."""

    def __init__(self, directory: Path, worker: str) -> None:
        self.directory = directory
        self.worker = worker

    # ------------------------------------------------------------------ desired
    def desire(self, name: str, spec: LoadSpec | None) -> int:
        """Record that ``name`` is to be served as ``spec`` (None: unloaded); return the new
        generation."""
        with self._locked():
            current = self.read()
            models = dict(current.models)
            models[name] = spec
            generation = current.generation + 1
            doc = {
                "generation": generation,
                "models": {n: (s.to_json() if s else None) for n, s in models.items()},
            }
            self._write(self.directory / _DESIRED, doc)
        return generation

    def read(self) -> Desired:
        """The desired models (generation 0 and none when nothing changed since start).

        Raises:
            BackendError: the file is not a desired-state document.
        """
        try:
            raw = (self.directory / _DESIRED).read_bytes()
        except FileNotFoundError:
            return Desired(0, {})
        try:
            doc = json.loads(raw)
            models = {
                n: (LoadSpec.from_json(s) if s is not None else None)
                for n, s in doc["models"].items()
            }
            return Desired(int(doc["generation"]), models)
        except (ValueError, KeyError, TypeError, AttributeError, InvalidInputError) as exc:
            raise BackendError(
                f"The server's model state {str(self.directory / _DESIRED)!r} is damaged "
                f"({exc}); restart the server."
            ) from None

    # ------------------------------------------------------------------- status
    def report(self, generation: int, models: Mapping[str, Mapping[str, str]]) -> None:
        """Record that this worker applied ``generation``; ``models`` is what it serves."""
        doc = {"pid": os.getpid(), "generation": generation, "models": dict(models)}
        self._write(self.directory / f"worker-{self.worker}.json", doc)

    def statuses(self) -> list[WorkerStatus]:
        """The last report of every worker whose process is alive."""
        out = []
        for path in sorted(self.directory.glob("worker-*.json")):
            try:
                doc = json.loads(path.read_bytes())
                status = WorkerStatus(
                    path.stem[len("worker-") :],
                    int(doc["pid"]),
                    int(doc["generation"]),
                    dict(doc["models"]),
                )
            except (OSError, ValueError, KeyError, TypeError):
                continue  # being replaced, or from a crashed write: the next poll reads it
            if _alive(status.pid):
                out.append(status)
        return out

    # ------------------------------------------------------------------ helpers
    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        fd = os.open(self.directory / _LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def _write(self, path: Path, doc: dict[str, Any]) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(doc, out)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError as exc:
        return exc.errno == errno.EPERM
    return True


__all__ = ["Desired", "SharedState", "WorkerStatus"]
