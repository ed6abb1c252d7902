"""Progress without a terminal: a log line per transfer every half minute.

Actions only see the `model.progress` protocol. The command line picks the display:
`cli.bars.RichProgress` when stderr is a terminal, `PlainProgress` (so CI logs show a long
restore moving) when it is not, `NO_PROGRESS` with --quiet.
"""

from __future__ import annotations

import logging
import threading
import time

from backup_agent.model.progress import Task

log = logging.getLogger("backup_agent.cli.progress")
PLAIN_INTERVAL_SECONDS = 30.0


def human_size(size: float) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


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
