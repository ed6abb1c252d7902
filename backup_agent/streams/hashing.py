"""SHA-256 and byte counts of a stream as stored: the end of every chain that touches a file.

Backups hash what is written (ciphertext when encrypted), restores and verifies hash what
is read, so `sha256sum -c` and the agent always agree on the same bytes.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from typing import BinaryIO

from backup_agent.model.backup import ReadableStream

READ_CHUNK_BYTES = 1024 * 1024


class HashingWriter(io.RawIOBase):
    """A write-only file that hashes and counts what passes through to `target`."""

    def __init__(self, target: BinaryIO,
                 on_written: Callable[[int], None] | None = None) -> None:
        super().__init__()
        self._target = target
        self._hash = hashlib.sha256()
        self._on_written = on_written
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        self._hash.update(data)
        self._target.write(data)
        self.size += len(data)
        if self._on_written:
            # The streaming upload reads parts back from the file: hand them to the OS first.
            self._target.flush()
            self._on_written(self.size)
        return len(data)

    def flush(self) -> None:
        self._target.flush()

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


class HashingReader:
    """Read `source`, hashing and counting every byte as stored (ciphertext when encrypted)."""

    def __init__(self, source: ReadableStream,
                 progress: Callable[[int], None] | None = None) -> None:
        self._source = source
        self._progress = progress
        self.digest = hashlib.sha256()
        self.size = 0

    def read(self, size: int = READ_CHUNK_BYTES, /) -> bytes:
        chunk = self._source.read(size if size > 0 else READ_CHUNK_BYTES)
        self.digest.update(chunk)
        self.size += len(chunk)
        if self._progress and chunk:
            self._progress(self.size)
        return chunk

    def drain(self) -> None:
        """Hash the rest: the checksum is reported even when decoding stopped early."""
        while self.read(READ_CHUNK_BYTES):
            pass

    def hexdigest(self) -> str:
        return self.digest.hexdigest()
