"""Live progress of a run in the terminal (rich), or one line per step when not a terminal."""

from __future__ import annotations

import time
from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING

from loopline.metadata.entities import ExecutionState
from loopline.pipeline.results import StepResult

if TYPE_CHECKING:  # rich is imported only when progress is shown
    from rich.console import Console
    from rich.live import Live
    from rich.table import Table

_STYLE = {
    "waiting": ("·", "dim"),
    "running": ("▶", "cyan"),
    ExecutionState.COMPLETE: ("✓", "green"),
    ExecutionState.CACHED: ("↺", "blue"),
    ExecutionState.FAILED: ("✗", "red"),
    ExecutionState.CANCELED: ("⊘", "yellow"),
}


class RunProgress:
    """Shows each step's state while a run goes on."""

    def __init__(self, console: Console | None, run_name: str, step_ids: Sequence[str]) -> None:
        self.console = console
        self.run_name = run_name
        self.order = list(step_ids)
        self.state: dict[str, object] = dict.fromkeys(step_ids, "waiting")
        self.detail: dict[str, str] = {}
        self.started: dict[str, float] = {}
        self._live: Live | None = None

    def __enter__(self) -> RunProgress:
        if self.console is not None and self.console.is_terminal:
            from rich.live import Live

            self._live = Live(self._table(), console=self.console, refresh_per_second=8)
            self._live.__enter__()
        elif self.console is not None:
            self.console.print(f"run {self.run_name}: {len(self.order)} steps")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._live is not None:
            self._live.update(self._table())
            self._live.__exit__(exc_type, exc, tb)

    def running(self, step_id: str) -> None:
        """A step started."""
        self.state[step_id] = "running"
        self.started[step_id] = time.monotonic()
        self._refresh()

    def finished(self, result: StepResult) -> None:
        """A step reached a terminal state."""
        self.state[result.step_id] = result.state
        if result.cached:
            self.detail[result.step_id] = "from cache"
        elif result.error:
            self.detail[result.step_id] = ("gate: " if result.gate else "") + result.error
        else:
            self.detail[result.step_id] = ""
        if self._live is None and self.console is not None:
            icon, style = _STYLE[result.state]
            extra = f" ({self.detail[result.step_id]})" if self.detail[result.step_id] else ""
            self.console.print(
                f"[{style}]{icon}[/] {result.step_id} {result.state.value} "
                f"{result.seconds:.2f}s{extra}",
                highlight=False,
                soft_wrap=True,
            )
        self._refresh()

    def _refresh(self) -> None:
        if self._live is not None:
            self._live.update(self._table())

    def _table(self) -> Table:
        from rich.table import Table

        table = Table(title=f"run {self.run_name}", title_justify="left", expand=False)
        table.add_column("step")
        table.add_column("state")
        table.add_column("time", justify="right")
        table.add_column("detail", overflow="fold", max_width=70)
        now = time.monotonic()
        for sid in self.order:
            state = self.state[sid]
            icon, style = _STYLE[state]
            label = state.value if isinstance(state, ExecutionState) else str(state)
            secs = f"{now - self.started[sid]:.1f}s" if sid in self.started else ""
            table.add_row(sid, f"[{style}]{icon} {label}[/]", secs, self.detail.get(sid, ""))
        return table
