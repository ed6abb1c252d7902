"""Prove a backup good while reading it once: SHA-256, a complete gzip stream, the closing line.

The same pass can feed psql (restore) or nothing (verify), from a file or straight from S3,
with bounded memory. The verdict is known only at the end of the stream, which is why a
restore builds a new database and swaps it in only when the verdict is good.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, cast

from isal import isal_zlib
from pyrage.x25519 import Identity

from backup_agent.compression import READ_CHUNK_BYTES, TAIL_BYTES
from backup_agent.encryption import DecryptingReader, Readable
from backup_agent.postgres.commands import DUMP_COMPLETE_MARKER

GZIP_WINDOW_BITS = 31  # zlib's "gzip container" mode
HEAD_BYTES = 4096  # enough of the uncompressed start to read pg_dump's header comments


@dataclass(frozen=True)
class Verdict:
    """What one pass over a backup found."""

    sha256: str
    expected_sha256: str | None
    compressed_bytes: int
    uncompressed_bytes: int
    gzip_complete: bool  # every gzip member ended properly, nothing after the last one
    dump_complete: bool  # pg_dump's closing "dump complete" line is at the end
    head: bytes  # the first HEAD_BYTES of the dump, for its version header
    encrypted: bool = False  # read through age decryption
    decryption_error: str | None = None  # why decryption stopped, if it did

    @property
    def checksum_matches(self) -> bool:
        return self.expected_sha256 is not None and self.sha256 == self.expected_sha256

    @property
    def good(self) -> bool:
        return self.checksum_matches and self.gzip_complete and self.dump_complete

    def problems(self) -> list[str]:
        """Return what is wrong, in words, most fundamental first."""
        return self.checksum_problems() + self.content_problems()

    def checksum_problems(self) -> list[str]:
        if self.expected_sha256 is None:
            return ["no .sha256 checksum to compare with"]
        if not self.checksum_matches:
            return [f"SHA-256 mismatch (expected {self.expected_sha256[:12]}…, "
                    f"got {self.sha256[:12]}…)"]
        return []

    def content_problems(self) -> list[str]:
        found = []
        if self.decryption_error:
            found.append(self.decryption_error)
        elif not self.gzip_complete:
            found.append("the gzip stream is truncated or corrupt")
        if not self.dump_complete and not self.decryption_error:
            found.append("the dump lacks pg_dump's closing 'dump complete' line")
        return found


# isal's stub declares `error` as an instance, not a class.
_ZLIB_ERROR = cast("type[Exception]", isal_zlib.error)


class ReadableStream(Protocol):
    """Anything with `read(size)`: a file, an S3 body."""

    def read(self, size: int = -1, /) -> bytes: ...

    def close(self) -> None: ...


class CorruptStreamError(Exception):
    """The gzip data cannot be decompressed at all (a bit flip, not gzip, ...)."""


class _Decompressor(Protocol):
    eof: bool
    unused_data: bytes

    def decompress(self, data: bytes) -> bytes: ...


class GzipDecoder:
    """Incremental gzip decoding across concatenated members (still valid gzip)."""

    def __init__(self) -> None:
        self._decompressor: _Decompressor = isal_zlib.decompressobj(GZIP_WINDOW_BITS)
        self.in_member = False  # True while a member has started but not ended

    def feed(self, chunk: bytes) -> bytes:
        """Return the data decoded from `chunk`; raise CorruptStreamError if it is not gzip."""
        pieces = []
        data = chunk
        while data:
            try:
                pieces.append(self._decompressor.decompress(data))
            except _ZLIB_ERROR as error:
                raise CorruptStreamError(str(error)) from None
            self.in_member = not self._decompressor.eof
            if self.in_member:
                break
            data = self._decompressor.unused_data
            self._decompressor = isal_zlib.decompressobj(GZIP_WINDOW_BITS)
        return b"".join(pieces)


class _HashingReader:
    """Read `source`, hashing and counting every byte as stored (ciphertext when encrypted)."""

    def __init__(self, source: ReadableStream,
                 progress: Callable[[int], None] | None) -> None:
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


def checksum_stream(source: ReadableStream, *, expected_sha256: str | None,
                    progress: Callable[[int], None] | None = None) -> Verdict:
    """Hash `source` only: for an encrypted backup when no private key is at hand."""
    hashing = _HashingReader(source, progress)
    hashing.drain()
    return Verdict(sha256=hashing.digest.hexdigest(), expected_sha256=expected_sha256,
                   compressed_bytes=hashing.size, uncompressed_bytes=0, gzip_complete=False,
                   dump_complete=False, head=b"", encrypted=True)


def verify_stream(source: ReadableStream, *, expected_sha256: str | None,
                  sink: Callable[[bytes], None] | None = None,
                  progress: Callable[[int], None] | None = None,
                  identities: Sequence[Identity] | None = None) -> Verdict:
    """Read `source` to the end, feeding the decompressed SQL to `sink`; return the verdict.

    With `identities`, the source is age-encrypted: the SHA-256 covers the stored bytes and
    the gzip stream is read from the plaintext. A stream that cannot be decrypted or
    decompressed stops feeding the sink early (gzip_complete False); the sink has then seen
    only a prefix of the dump, and the caller must discard its work.
    """
    hashing = _HashingReader(source, progress)
    decrypting = DecryptingReader(hashing, identities) if identities is not None else None
    compressed: Readable = decrypting if decrypting is not None else hashing
    decoder = GzipDecoder()
    uncompressed = 0
    read_any = False
    head = tail = b""
    corrupt = False
    try:
        while chunk := compressed.read(READ_CHUNK_BYTES):
            read_any = True
            try:
                data = decoder.feed(chunk)
            except CorruptStreamError:
                corrupt = True
                break
            if data:
                uncompressed += len(data)
                if len(head) < HEAD_BYTES:
                    head = (head + data[:HEAD_BYTES])[:HEAD_BYTES]
                tail = (tail + data[-TAIL_BYTES:])[-TAIL_BYTES:]
                if sink:
                    sink(data)
    finally:
        if decrypting is not None:
            decrypting.close()
    hashing.drain()
    decryption_error = decrypting.error if decrypting is not None else None
    gzip_complete = (not corrupt and not decoder.in_member and read_any
                     and decryption_error is None)
    return Verdict(sha256=hashing.digest.hexdigest(), expected_sha256=expected_sha256,
                   compressed_bytes=hashing.size, uncompressed_bytes=uncompressed,
                   gzip_complete=gzip_complete,
                   dump_complete=gzip_complete and DUMP_COMPLETE_MARKER in tail, head=head,
                   encrypted=identities is not None, decryption_error=decryption_error)
