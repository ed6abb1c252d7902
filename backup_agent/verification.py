"""Prove a backup good while reading it once: SHA-256, a complete gzip stream, the closing line.

The same pass can feed psql (restore) or nothing (verify), from a file or straight from S3,
with bounded memory. The verdict is known only at the end of the stream, which is why a
restore builds a new database and swaps it in only when the verdict is good.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, cast

from isal import isal_zlib

from backup_agent.compression import READ_CHUNK_BYTES, TAIL_BYTES
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

    @property
    def checksum_matches(self) -> bool:
        return self.expected_sha256 is not None and self.sha256 == self.expected_sha256

    @property
    def good(self) -> bool:
        return self.checksum_matches and self.gzip_complete and self.dump_complete

    def problems(self) -> list[str]:
        """Return what is wrong, in words, most fundamental first."""
        found = []
        if self.expected_sha256 is None:
            found.append("no .sha256 checksum to compare with")
        elif not self.checksum_matches:
            found.append(f"SHA-256 mismatch (expected {self.expected_sha256[:12]}…, "
                         f"got {self.sha256[:12]}…)")
        if not self.gzip_complete:
            found.append("the gzip stream is truncated or corrupt")
        if not self.dump_complete:
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


def verify_stream(source: ReadableStream, *, expected_sha256: str | None,
                  sink: Callable[[bytes], None] | None = None,
                  progress: Callable[[int], None] | None = None) -> Verdict:
    """Read `source` to the end, feeding the decompressed SQL to `sink`; return the verdict.

    A stream that cannot be decompressed stops feeding the sink early (gzip_complete False);
    the sink has then seen only a prefix of the dump, and the caller must discard its work.
    """
    digest = hashlib.sha256()
    decoder = GzipDecoder()
    compressed = uncompressed = 0
    head = tail = b""
    corrupt = False
    while chunk := source.read(READ_CHUNK_BYTES):
        digest.update(chunk)
        compressed += len(chunk)
        if progress:
            progress(compressed)
        if corrupt:
            continue  # keep hashing to report the checksum, but decode and feed nothing
        try:
            data = decoder.feed(chunk)
        except CorruptStreamError:
            corrupt = True
            continue
        if data:
            uncompressed += len(data)
            if len(head) < HEAD_BYTES:
                head = (head + data[:HEAD_BYTES])[:HEAD_BYTES]
            tail = (tail + data[-TAIL_BYTES:])[-TAIL_BYTES:]
            if sink:
                sink(data)
    gzip_complete = not corrupt and not decoder.in_member and compressed > 0
    return Verdict(sha256=digest.hexdigest(), expected_sha256=expected_sha256,
                   compressed_bytes=compressed, uncompressed_bytes=uncompressed,
                   gzip_complete=gzip_complete,
                   dump_complete=gzip_complete and DUMP_COMPLETE_MARKER in tail, head=head)
