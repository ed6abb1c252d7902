"""Filters on the decompressed SQL on its way to psql: whole lines, COPY data untouched."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

# pg_dump writes ownership as one-line statements: `ALTER TABLE shop.orders OWNER TO app;`
OWNER_STATEMENT = re.compile(rb"^ALTER (?:[A-Z]+ )+\S.* OWNER TO \S.*;$")
COPY_START = re.compile(rb"^COPY .* FROM stdin;$")
COPY_END = b"\\."
# An ownership statement is one short line; a longer pending line (a huge value in COPY
# data, say) is passed on as it comes instead of being held in memory.
LONG_LINE_BYTES = 64 * 1024


class OwnerFilter:
    """Drop `ALTER ... OWNER TO` lines outside COPY data, for --no-owner restores."""

    def __init__(self, sink: Callable[[bytes], None]) -> None:
        self._sink = sink
        self._pending = b""
        self._in_copy = False
        self._in_long_line = False

    def __call__(self, data: bytes) -> None:
        if self._in_long_line:
            head, newline, data = data.partition(b"\n")
            self._sink(head + newline)
            if not newline:
                return
            self._in_long_line = False
        lines = (self._pending + data).split(b"\n")
        self._pending = lines.pop()
        kept = [line for line in lines if self._keep(line)]
        if kept:
            self._sink(b"\n".join(kept) + b"\n")
        if len(self._pending) > LONG_LINE_BYTES:
            self._sink(self._pending)
            self._pending = b""
            self._in_long_line = True

    def _keep(self, line: bytes) -> bool:
        if self._in_copy:
            self._in_copy = line != COPY_END
            return True
        if COPY_START.match(line):
            self._in_copy = True
            return True
        return not OWNER_STATEMENT.match(line)

    def flush(self) -> None:
        if self._pending and self._keep(self._pending):
            self._sink(self._pending)
        self._pending = b""


class LineDropper:
    """Leave out the given lines (1-based numbers), pass everything else on as it comes."""

    def __init__(self, sink: Callable[[bytes], None], lines: Iterable[int]) -> None:
        self._sink = sink
        self._targets = sorted(set(lines))
        self._line = 1  # the line the next byte belongs to
        self._dropping = False

    def __call__(self, data: bytes) -> None:
        position = 0
        while self._targets and position < len(data):
            if self._dropping:
                newline = data.find(b"\n", position)
                if newline < 0:
                    return
                position, self._dropping = newline + 1, False
                self._line += 1
                self._targets.pop(0)
                continue
            if self._line + data.count(b"\n", position) < self._targets[0]:
                break
            start = position
            while self._line < self._targets[0]:
                position = data.index(b"\n", position) + 1
                self._line += 1
            self._sink(data[start:position])
            self._dropping = True
        if position < len(data):
            self._line += data.count(b"\n", position)
            self._sink(data[position:])
