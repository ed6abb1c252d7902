"""Progress for long transfers: rich bars on a terminal, plain log lines elsewhere, or none.

Actions only see the `Progress` protocol: they open a task per transfer and report bytes
done (from any thread). The command line picks the display: `RichProgress` when stderr is
a terminal, `PlainProgress` (a log line every half minute, so CI logs show a long restore
moving) when it is not, `NO_PROGRESS` with --quiet.
"""

from __future__ import annotations

import logging
import threading
import time
from types import TracebackType
from typing import Protocol

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

log = logging.getLogger("backup_agent.progress")
PLAIN_INTERVAL_SECONDS = 30.0


def human_size(size: float) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


class Task(Protocol):
    def update(self, done: int) -> None:
        """Report `done` bytes so far (called from any thread)."""

    def set_total(self, total: int) -> None:
        """The total became known (an upload's, when the dump ended)."""


class Progress(Protocol):
    def task(self, label: str, total: int | None = None) -> Task: ...


class _SilentTask:
    def update(self, done: int) -> None:
        pass

    def set_total(self, total: int) -> None:
        pass


class NoProgress:
    """--quiet, and the default for callers that show nothing (tests, the demo)."""

    def task(self, label: str, total: int | None = None) -> Task:
        return _SilentTask()


NO_PROGRESS = NoProgress()


class _PlainTask:
    def __init__(self, label: str, total: int | None, interval: float) -> None:
        self._label = label
        self._total = total
        self._interval = interval
        self._started = self._last = time.monotonic()
        self._lock = threading.Lock()

    def update(self, done: int) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._last < self._interval:
                return
            self._last = now
        log.info("%s", describe(self._label, done, self._total, now - self._started))

    def set_total(self, total: int) -> None:
        self._total = total


def describe(label: str, done: int, total: int | None, elapsed: float) -> str:
    """Return `label: 1.2 GiB of 5.0 GiB (24%) at 95.0 MiB/s, about 40s left`."""
    rate = done / max(elapsed, 1e-6)
    text = f"{label}: {human_size(done)}"
    if total:
        text += f" of {human_size(total)} ({100 * done / total:.0f}%)"
    text += f" at {human_size(rate)}/s"
    if total and rate > 0 and done < total:
        text += f", about {(total - done) / rate:.0f}s left"
    return text


class PlainProgress:
    """Log lines, at most one per task every `interval` seconds: for logs that are files."""

    def __init__(self, interval: float = PLAIN_INTERVAL_SECONDS) -> None:
        self._interval = interval

    def task(self, label: str, total: int | None = None) -> Task:
        return _PlainTask(label, total, self._interval)


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
