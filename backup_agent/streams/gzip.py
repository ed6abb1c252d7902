"""gzip both ways with ISA-L: the compressing end of a backup, the decoder of a restore.

ISA-L (the `isal` package) writes ordinary gzip, readable by `gunzip`, several times faster
than zlib; its threaded writer compresses on another core while the dump keeps streaming.
Memory is bounded by the block size times the queue length.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO, Protocol, cast

from isal import igzip_threaded, isal_zlib

# ISA-L levels run 0-3. Level 3 stays within 10% of gzip -6's size (level 2 is ~12% larger)
# at about 480 MB/s on one core, still well hidden behind pg_dump (measured: bench/run.py).
DEFAULT_LEVEL = 3
DEFAULT_THREADS = 1
GZIP_WINDOW_BITS = 31  # zlib's "gzip container" mode


class Writable(Protocol):
    def write(self, data: bytes, /) -> int | None: ...

    def flush(self) -> None: ...


@contextmanager
def compressing(target: Writable, *, level: int = DEFAULT_LEVEL,
                threads: int = DEFAULT_THREADS) -> Iterator[BinaryIO]:
    """Yield a writer whose bytes reach `target` gzip-compressed (flushed at the end)."""
    with igzip_threaded.open(  # type: ignore[no-untyped-call]
            target, "wb", compresslevel=level, threads=threads) as compressor:
        yield cast("BinaryIO", compressor)


# isal's stub declares `error` as an instance, not a class.
_ZLIB_ERROR = cast("type[Exception]", isal_zlib.error)


class CorruptStreamError(Exception):
    """The gzip data cannot be decompressed at all (a bit flip, not gzip, ...)."""


class _Decompressor(Protocol):
    eof: bool
    unused_data: bytes
    unconsumed_tail: bytes

    def decompress(self, data: bytes, max_length: int = 0, /) -> bytes: ...


# Pieces of 1 MiB stay in the core's cache between decoding and the statement check's scans
# (whole 4 MiB chunks measured a third slower).
PIECE_BYTES = 1024 * 1024


class GzipDecoder:
    """Incremental gzip decoding across concatenated members (still valid gzip)."""

    def __init__(self) -> None:
        self._decompressor: _Decompressor = isal_zlib.decompressobj(GZIP_WINDOW_BITS)
        self.in_member = False  # True while a member has started but not ended

    def pieces(self, chunk: bytes) -> Iterator[bytes]:
        """Yield the data decoded from `chunk`, PIECE_BYTES at most at a time; raise
        CorruptStreamError if it is not gzip."""
        if not chunk:
            return
        data = chunk
        while True:
            try:
                piece = self._decompressor.decompress(data, PIECE_BYTES)
            except _ZLIB_ERROR as error:
                raise CorruptStreamError(str(error)) from None
            if piece:
                yield piece
            if not self._decompressor.eof:
                self.in_member = True
                data = self._decompressor.unconsumed_tail
                if not data and len(piece) < PIECE_BYTES:
                    return  # all of `chunk` used and nothing more to give: wait for more
                continue  # a full piece may leave output pending even with no input left
            self.in_member = False
            data = self._decompressor.unused_data
            self._decompressor = isal_zlib.decompressobj(GZIP_WINDOW_BITS)
            if not data:
                return
