"""Progress bars on a terminal (rich): bytes, rate and time left, on stderr.

They fit the terminal (the label is shortened, the bar flexes, nothing wraps onto a second
line), speak binary units throughout (MiB, MiB/s), and do not pile up: a finished bar
gives way when the next transfer starts, and all of them go when the command ends, leaving
its summary. Log lines printed meanwhile are never hard-wrapped, so an s3:// URL or a
hash stays one line to copy.
"""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    ProgressColumn,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.progress import Progress as RichBars
from rich.progress import Task as RichTask
from rich.table import Column
from rich.text import Text

from backup_agent.cli.progress import human_size
from backup_agent.model.progress import Task

# A backup draws two bars at once (dump, upload); nothing needs more.
MOST_BARS = 2


class _BinaryRateColumn(ProgressColumn):
    """`12.5 MiB/s`, in the same units as the sizes (rich's own column says MB/s)."""

    def render(self, task: RichTask) -> Text:
        speed = task.finished_speed or task.speed
        text = "?" if speed is None else f"{human_size(speed)}/s"
        return Text(text, style="progress.data.speed")


class _BarTask:
    def __init__(self, bars: RichBars, task_id: TaskID) -> None:
        self._bars = bars
        self._id = task_id

    def update(self, done: int) -> None:
        self._bars.update(self._id, completed=done)

    def set_total(self, total: int) -> None:
        self._bars.update(self._id, total=total)


def _fixed() -> Column:
    return Column(no_wrap=True)


class RichProgress:
    """Bars with bytes, rate and time left (where the total is known), on stderr."""

    def __init__(self, console: Console | None = None) -> None:
        # soft_wrap: lines printed above the bars (logging) are never cut into two.
        self.console = console or Console(stderr=True, soft_wrap=True)
        self._bars = RichBars(
            TextColumn("{task.description}", table_column=Column(
                no_wrap=True, overflow="ellipsis", ratio=3)),
            BarColumn(bar_width=None, table_column=Column(ratio=2, min_width=5)),
            DownloadColumn(binary_units=True, table_column=_fixed()),
            _BinaryRateColumn(table_column=_fixed()),
            TimeRemainingColumn(table_column=_fixed()),
            console=self.console, expand=True, transient=True,
            # stdout carries --json for machines: never route it through the bars (stderr).
            redirect_stdout=False)
        self._started = False

    def task(self, label: str, total: int | None = None) -> Task:
        # Drawn from the first task on: a restore's confirmation question comes before.
        if not self._started:
            self._bars.start()
            self._started = True
        self._make_room()
        return _BarTask(self._bars, self._bars.add_task(label, total=total))

    def _make_room(self) -> None:
        """Finished bars go when a new one starts; at most MOST_BARS are ever drawn."""
        unfinished = []
        for task in list(self._bars.tasks):
            if task.finished:
                self._bars.remove_task(task.id)
            else:
                unfinished.append(task)
        for task in unfinished[:max(0, len(unfinished) - (MOST_BARS - 1))]:
            self._bars.remove_task(task.id)

    def __enter__(self) -> RichProgress:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if self._started:
            self._bars.stop()
