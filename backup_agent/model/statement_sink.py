"""What the statement splitter hands a proven dump's statements to (restoring/executor.py)."""

from __future__ import annotations

from typing import Protocol


class StatementSink(Protocol):
    """Where the second pass hands what it judged (restoring/executor.py)."""

    def statement(self, text: bytes, parts: list[str], line: int) -> None:
        """One whole statement, from its first token to its semicolon."""

    def copy_data(self, data: bytes) -> None:
        """Rows of the COPY the last statement opened (never its `\\.` line)."""

    def copy_end(self) -> None:
        """The COPY's `\\.` line was reached."""
