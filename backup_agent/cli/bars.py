"""Progress bars on a terminal (rich): bytes, rate and time left, on stderr."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.progress import Progress as RichBars

from backup_agent.model.progress import Task


class _BarTask:
    def __init__(self, bars: RichBars, task_id: TaskID) -> None:
        self._bars = bars
        self._id = task_id

    def update(self, done: int) -> None:
        self._bars.update(self._id, completed=done)

    def set_total(self, total: int) -> None:
        self._bars.update(self._id, total=total)


class RichProgress:
    """Bars with bytes, rate and time left (where the total is known), on stderr."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self._bars = RichBars(
            TextColumn("{task.description}"), BarColumn(), DownloadColumn(binary_units=True),
            TransferSpeedColumn(), TimeRemainingColumn(), console=self.console,
            # stdout carries --json for machines: never route it through the bars (stderr).
            redirect_stdout=False)
        self._started = False

    def task(self, label: str, total: int | None = None) -> Task:
        # Drawn from the first task on: a restore's confirmation question comes before.
        if not self._started:
            self._bars.start()
            self._started = True
        return _BarTask(self._bars, self._bars.add_task(label, total=total))

    def __enter__(self) -> RichProgress:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if self._started:
            self._bars.stop()
