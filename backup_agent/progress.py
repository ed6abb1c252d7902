"""A one-line progress display for terminals: bytes done of total, rate, percentage."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from backup_agent.report import human_size

REFRESH_SECONDS = 0.5


class ProgressLine:
    """Call with bytes done and total; redraws at most twice a second."""

    def __init__(self, label: str, stream: TextIO = sys.stderr) -> None:
        self._label = label
        self._stream = stream
        self._started = time.monotonic()
        self._last_drawn = 0.0
        self._drawn = False

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self._last_drawn < REFRESH_SECONDS:
            return
        self._last_drawn = now
        rate = done / max(now - self._started, 1e-6)
        text = f"{self._label}: {human_size(done)}"
        if total:
            text += f" of {human_size(total)} ({100 * done / total:.0f}%)"
        self._stream.write(f"\r{text} at {human_size(int(rate))}/s\033[K")
        self._stream.flush()
        self._drawn = True

    def finish(self) -> None:
        if self._drawn:
            self._stream.write("\n")
            self._stream.flush()


def progress_for(label: str) -> ProgressLine | None:
    """Return a progress line when stderr is a terminal, otherwise None (plain logs)."""
    return ProgressLine(label) if sys.stderr.isatty() else None
