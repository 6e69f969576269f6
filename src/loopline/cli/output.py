"""Output helpers shared by the command groups: rich for people, JSON for machines."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from loopline.errors import (
    GateFailedError,
    InvalidDefinitionError,
    InvalidInputError,
    LooplineError,
    NotFoundError,
)
from loopline.types import Json

F = TypeVar("F", bound=Callable[..., Any])

if TYPE_CHECKING:
    from rich.console import Console


class _LazyConsole:
    """A rich Console made on first use: commands that print JSON never import rich."""

    def __init__(self, stderr: bool) -> None:
        self._stderr = stderr
        self._console: Console | None = None

    def __getattr__(self, name: str) -> Any:
        if self._console is None:
            from rich.console import Console

            self._console = Console(stderr=self._stderr, highlight=False)
        return getattr(self._console, name)

    def reset(self) -> None:
        """Forget the console: the next print makes one from the environment as it is then."""
        self._console = None


console: Console = _LazyConsole(stderr=False)  # type: ignore[assignment]
err_console: Console = _LazyConsole(stderr=True)  # type: ignore[assignment]


def reset_consoles() -> None:
    """For in-process runs of many commands (click's CliRunner in tests): rich reads the
    terminal width (``COLUMNS``) when a console is made, and a console is made once per
    process, so a command run with another ``COLUMNS`` needs fresh ones."""
    for lazy in (console, err_console):
        lazy.reset()  # type: ignore[attr-defined]


json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print machine-readable JSON instead of tables."
)


def print_json(value: Json) -> None:
    """Write one JSON document to stdout (nothing else is printed in JSON mode)."""
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")


def exit_code_for(exc: LooplineError) -> int:
    """1 for errors of the request or definition, 3 for a gate, 4 for a missing object."""
    if isinstance(exc, GateFailedError):
        return 3
    if isinstance(exc, NotFoundError):
        return 4
    if isinstance(exc, InvalidDefinitionError | InvalidInputError):
        return 1
    return 1


def handle_errors(fn: F) -> F:
    """Turn loopline errors into a one-line message on stderr and a non-zero exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except LooplineError as exc:
            err_console.print(f"[red]error:[/] {exc}")
            raise SystemExit(exit_code_for(exc)) from None

    return wrapper  # type: ignore[return-value]
