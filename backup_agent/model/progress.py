"""Progress as actions see it: a task per transfer, bytes done reported from any thread.

The command line picks the display (bars on a terminal, a log line now and then
elsewhere, nothing with --quiet); actions only know this protocol.
"""

from __future__ import annotations

from typing import Protocol


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
