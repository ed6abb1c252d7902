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


class RangeDropper:
    """Leave out the given byte ranges [start, end) of the stream; pass the rest on."""

    def __init__(self, sink: Callable[[bytes], None], ranges: Iterable[tuple[int, int]]) -> None:
        self._sink = sink
        self._ranges = sorted(ranges)
        self._position = 0  # of the next byte in the stream

    def __call__(self, data: bytes) -> None:
        start, end = self._position, self._position + len(data)
        self._position = end
        kept_from = start
        for low, high in self._ranges:
            if high <= kept_from or low >= end:
                continue
            if low > kept_from:
                self._sink(data[kept_from - start:low - start])
            kept_from = max(kept_from, min(high, end))
        if kept_from < end:
            self._sink(data[kept_from - start:] if kept_from > start else data)


def copy_end(buffer: bytes, start: int) -> int:
    """Return where the line that ends COPY data starts (`start` is a line start), or -1.

    As psql: the line is exactly a backslash and a dot, before LF, CR LF, or the end of
    what was read so far (the next chunk decides).
    """
    def ends_here(at: int) -> bool:
        after = buffer[at + 2:at + 4]
        return after in (b"", b"\r", b"\r\n") or after.startswith(b"\n")

    if buffer.startswith(b"\\.", start) and ends_here(start):
        return start
    found = buffer.find(b"\n\\.", start)
    while found >= 0:
        if ends_here(found + 1):
            return found + 1
        found = buffer.find(b"\n\\.", found + 1)
    return -1
