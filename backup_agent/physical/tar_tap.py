"""Watch a tar stream go by: keep the members we need (backup_label, the manifest's tail).

pg_basebackup writes ustar: 512-byte headers, contents padded to 512 bytes, two zero blocks
at the end. The tap passes every byte on untouched and parses headers as they pass, so the
base backup's own description (its label first, its manifest last) is read in the same
single pass that compresses and uploads it.
"""

from __future__ import annotations

from typing import BinaryIO

BLOCK = 512
TAIL_BYTES = 64 * 1024  # the manifest's WAL-Ranges and checksum are at its end


class TarTap:
    """A writer that forwards to `target` and remembers `whole` members and `tails`."""

    def __init__(self, target: BinaryIO, *, whole: set[str], tails: set[str]) -> None:
        self._target = target
        self._whole, self._tails = whole, tails
        self.members: dict[str, bytes] = {}
        self.size = 0
        self._header = b""
        self._name: str | None = None
        self._remaining = 0  # content bytes left in the current member
        self._padding = 0
        self._ended = False

    def write(self, data: bytes | bytearray | memoryview) -> int:
        self._target.write(data)
        self.size += len(data)
        view = memoryview(data)
        while view and not self._ended:
            view = self._consume(view)
        return len(data)

    def flush(self) -> None:
        self._target.flush()

    def _consume(self, view: memoryview) -> memoryview:
        if self._remaining:
            piece = view[:self._remaining]
            self._remaining -= len(piece)
            if self._name is not None:
                kept = self.members.get(self._name, b"") + bytes(piece)
                self.members[self._name] = kept if self._name in self._whole \
                    else kept[-TAIL_BYTES:]
            return view[len(piece):]
        if self._padding:
            skipped = min(self._padding, len(view))
            self._padding -= skipped
            return view[skipped:]
        wanted = BLOCK - len(self._header)
        self._header += bytes(view[:wanted])
        if len(self._header) == BLOCK:
            self._start_member(self._header)
            self._header = b""
        return view[wanted:]

    def _start_member(self, header: bytes) -> None:
        if not header.strip(b"\0"):
            self._ended = True  # the first of the two closing zero blocks
            return
        name = header[:100].split(b"\0")[0].decode("utf-8", "replace")
        prefix = header[345:500].split(b"\0")[0].decode("utf-8", "replace")
        name = f"{prefix}/{name}" if prefix else name
        size_field = header[124:136].split(b"\0")[0].strip() or b"0"
        size = int(size_field, 8)
        self._remaining = size
        self._padding = -size % BLOCK
        self._name = name if name in self._whole | self._tails else None
