"""Per-step log capture for steps that run as threads of the runner's process.

``sys.stdout``/``sys.stderr`` are replaced, for the duration of a run, by a router that
writes to the log file of the step running on the current thread (and to the original stream
otherwise); a logging handler does the same for ``logging`` records.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
from collections.abc import Iterator
from typing import IO, Any

_local = threading.local()


class _Router:
    def __init__(self, fallback: IO[str]) -> None:
        self._fallback = fallback

    def _target(self) -> IO[str]:
        target: IO[str] | None = getattr(_local, "log", None)
        return target if target is not None else self._fallback

    def write(self, text: str) -> int:
        return self._target().write(text)

    def flush(self) -> None:
        self._target().flush()

    def isatty(self) -> bool:
        return False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fallback, name)


class _StepLogHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        target: IO[str] | None = getattr(_local, "log", None)
        if target is not None:
            try:
                target.write(self.format(record) + "\n")
            except ValueError:  # the step's log file was already closed
                pass


@contextlib.contextmanager
def routing() -> Iterator[None]:
    """Install the stdout/stderr router and the logging handler for the block."""
    old_out, old_err = sys.stdout, sys.stderr
    sys.stdout = _Router(old_out)  # type: ignore[assignment,unused-ignore]
    sys.stderr = _Router(old_err)  # type: ignore[assignment,unused-ignore]
    handler = _StepLogHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    try:
        yield
    finally:
        logging.getLogger().removeHandler(handler)
        sys.stdout, sys.stderr = old_out, old_err


@contextlib.contextmanager
def to_file(log: IO[str]) -> Iterator[None]:
    """Send this thread's output to ``log`` for the block."""
    previous = getattr(_local, "log", None)
    _local.log = log
    try:
        yield
    finally:
        _local.log = previous


def bind(log: IO[str] | None) -> None:
    """Send the current thread's output to ``log`` (None: back to the process streams)."""
    _local.log = log
