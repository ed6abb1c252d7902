"""Prove, then run: a backup is read once to prove it, and only those bytes are executed.

The proving pass checks everything that can be checked without running a byte: the
SHA-256, age's authentication, the whole gzip stream, pg_dump's closing line, and every
statement (streams/statements.py). A local backup is then read again through the same open
descriptor; one from S3 is spooled to a private, already-unlinked file while it is proven.
Either way the second pass compares every block of stored bytes with the digest the first
pass took of it *before* any of it is decompressed, so what is executed is exactly what was
proven, even if the file changed in between (and not only once the whole pass is over).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING

from backup_agent.model.backup import BackupRef, ReadableStream, Where
from backup_agent.model.errors import LocalStorageError
from backup_agent.streams.statements import StatementCheck
from backup_agent.streams.verify import Verdict, verify_stream

if TYPE_CHECKING:
    from pyrage.x25519 import Identity

BLOCK_BYTES = 1024 * 1024  # of stored bytes, each proven by its own SHA-256


class ChangedError(Exception):
    """The stored bytes differ from the ones that were proven."""


@dataclass(frozen=True)
class Proof:
    verdict: Verdict
    stream: IO[bytes]  # the proven bytes, rewound
    digests: list[bytes] = field(default_factory=list)  # one per BLOCK_BYTES of them

    def replay(self) -> ReadableStream:
        """The proven bytes again, each block checked against its proof before use."""
        self.stream.seek(0)
        return _Comparing(self.stream, self.digests)


class _Recording:
    """Pass reads through, taking the SHA-256 of every BLOCK_BYTES (and, with a spool,
    keeping a copy of every byte)."""

    def __init__(self, source: ReadableStream, spool: IO[bytes] | None = None,
                 directory: str = "") -> None:
        self._source = source
        self._spool = spool
        self._directory = directory
        self.digests: list[bytes] = []
        self._block = hashlib.sha256()
        self._filled = 0

    def read(self, size: int = -1, /) -> bytes:
        data = self._source.read(size)
        view = memoryview(data)
        while view:
            room = BLOCK_BYTES - self._filled
            self._block.update(view[:room])
            self._filled += min(room, len(view))
            view = view[room:]
            if self._filled == BLOCK_BYTES:
                self._close_block()
        if self._spool is not None:
            try:
                self._spool.write(data)
            except OSError as error:
                raise LocalStorageError(
                    f"cannot hold the backup in {self._directory} while proving it "
                    f"({error.strerror}): free space there, or restore from a local "
                    "copy") from None
        return data

    def _close_block(self) -> None:
        self.digests.append(self._block.digest())
        self._block, self._filled = hashlib.sha256(), 0

    def finish(self) -> list[bytes]:
        if self._filled:
            self._close_block()
        return self.digests

    def close(self) -> None:
        self._source.close()


class _Comparing:
    """Read whole blocks ahead and hand none of a block on before its SHA-256 matched."""

    def __init__(self, source: IO[bytes], digests: list[bytes]) -> None:
        self._source = source
        self._digests = digests
        self._index = 0
        self._buffer = memoryview(b"")

    def read(self, size: int = -1, /) -> bytes:
        if not self._buffer:
            self._buffer = memoryview(self._next_block())
        size = len(self._buffer) if size is None or size < 0 else size
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return bytes(data)

    def _next_block(self) -> bytes:
        block = b""
        while len(block) < BLOCK_BYTES:
            data = self._source.read(BLOCK_BYTES - len(block))
            if not data:
                break
            block += data
        if not block:
            if self._index != len(self._digests):
                raise ChangedError("the backup is shorter than when it was proven")
            return b""
        if self._index >= len(self._digests) or \
                hashlib.sha256(block).digest() != self._digests[self._index]:
            raise ChangedError(f"block {self._index} of the backup changed after it was "
                               "proven")
        self._index += 1
        return block

    def close(self) -> None:
        """The caller's stream stays open (the proof owns it)."""


def spool_directory(backup_directory: Path) -> str:
    """BACKUP_DIR when we may write there (it is sized for backups), else the temp dir."""
    if backup_directory.is_dir() and os.access(backup_directory, os.W_OK | os.X_OK):
        return str(backup_directory)
    return tempfile.gettempdir()


@contextmanager
def proven(backup: BackupRef, *, identities: Sequence[Identity] | None, spool_in: str,
           progress: Callable[[int], None] | None = None) -> Iterator[Proof]:
    """Read `backup` once, proving it; yield the verdict and the same bytes to execute."""
    with backup.open() as stream:
        if backup.where is Where.LOCAL and hasattr(stream, "seek"):
            recording = _Recording(stream)
            verdict = _prove(recording, backup, identities, progress)
            yield Proof(verdict=verdict, stream=stream,  # type: ignore[arg-type]
                        digests=recording.finish())
            return
        # 0600 and unlinked at once: nobody else can open, swap or read the spooled copy.
        with tempfile.TemporaryFile(dir=spool_in, prefix=".proving-") as spool:
            recording = _Recording(stream, spool, spool_in)
            verdict = _prove(recording, backup, identities, progress)
            spool.flush()
            yield Proof(verdict=verdict, stream=spool, digests=recording.finish())


def _prove(source: ReadableStream, backup: BackupRef, identities: Sequence[Identity] | None,
           progress: Callable[[int], None] | None) -> Verdict:
    return verify_stream(source, expected_sha256=backup.expected_sha256,
                         identities=identities, progress=progress, check=StatementCheck())
