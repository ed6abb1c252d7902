"""The proving pass's machinery: gzip in pieces, the reader thread, memmem's find."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import random

import pytest

from backup_agent.streams import filters
from backup_agent.streams.decoding import BackgroundDecoder
from backup_agent.streams.gzip import PIECE_BYTES, CorruptStreamError, GzipDecoder
from backup_agent.streams.hashing import HashingReader
from backup_agent.streams.verify import verify_stream


def decode(blob: bytes, chunk: int) -> tuple[bytes, bool]:
    decoder = GzipDecoder()
    pieces = [piece for start in range(0, len(blob), chunk)
              for piece in decoder.pieces(blob[start:start + chunk])]
    assert all(len(piece) <= PIECE_BYTES for piece in pieces)
    return b"".join(pieces), decoder.in_member


@pytest.mark.parametrize("chunk", [997, 64 * 1024, 1024 * 1024, 1 << 30])
def test_pieces_give_everything_even_when_a_little_input_holds_a_lot(chunk: int) -> None:
    # 40 MiB of zeros compress to ~40 KiB: one input chunk decodes to many full pieces, and
    # output may still be pending after the last input byte was taken.
    zeros = bytes(40 << 20)
    assert decode(gzip.compress(zeros), chunk) == (zeros, False)


@pytest.mark.parametrize("chunk", [1, 5, 64, 4096])
def test_tiny_pieces_drain_output_pending_after_the_input_ran_out(
        chunk: int, monkeypatch: pytest.MonkeyPatch) -> None:
    # With 7-byte pieces a call often fills its piece with input left in zlib's window:
    # `pieces` must call again with no input rather than wait for the next chunk.
    monkeypatch.setattr("backup_agent.streams.gzip.PIECE_BYTES", 7)
    text = b"".join(b"line %d of a dump\n" % number for number in range(3000))
    blob = gzip.compress(text[:20_000]) + gzip.compress(text[20_000:])
    for cut in (len(gzip.compress(text[:20_000])) + delta for delta in (-3, 0, 3)):
        decoder = GzipDecoder()
        pieces = [piece for part in (blob[:cut], blob[cut:])
                  for start in range(0, len(part), chunk)
                  for piece in decoder.pieces(part[start:start + chunk])]
        assert b"".join(pieces) == text and not decoder.in_member
        assert max(len(piece) for piece in pieces) == 7
    # Everything up to gzip's 8-byte trailer gives back all the text at once: nothing is
    # held back waiting for input that only closes the member.
    decoder = GzipDecoder()
    member = gzip.compress(text)
    early = [piece for start in range(0, len(member) - 8, chunk)
             for piece in decoder.pieces(member[start:min(start + chunk, len(member) - 8)])]
    assert b"".join(early) == text and decoder.in_member
    assert list(decoder.pieces(member[-8:])) == [] and not decoder.in_member


def test_pieces_follow_members_and_see_truncation() -> None:
    first, second = b"abc" * 1000, os.urandom(3 << 20)
    blob = gzip.compress(first) + gzip.compress(second)
    assert decode(blob, 4096) == (first + second, False)
    assert decode(blob[:-5], 4096)[1]  # ended inside the second member
    decoder = GzipDecoder()
    assert list(decoder.pieces(b"")) == [] and not decoder.in_member
    with pytest.raises(CorruptStreamError):
        decode(b"not gzip at all", 4)


def test_memmem_find_is_bytes_find() -> None:
    pick = random.Random(7)  # noqa: S311 - test data, repeatable
    alphabet = b"ab\n\\."
    for _ in range(20_000):
        haystack = bytes(pick.choice(alphabet) for _ in range(pick.randrange(40)))
        needle = bytes(pick.choice(alphabet) for _ in range(pick.randrange(1, 4)))
        start = pick.randrange(45)
        assert filters.find(haystack, needle, start) == haystack.find(needle, start)
    assert filters._MEMMEM is not None  # the fast path is the one measured and tested


def test_copy_end_is_found_across_the_whole_search() -> None:
    # Many false markers (an escaped backslash before a dot, `\.` not alone on its line)
    # in a large buffer, searched from a start past the first of them.
    data = (b"1\t\\\\.\n" + b"\\.x\n") * 200_000 + b"2\tx\n\\.\n"
    assert filters.copy_end(data, 0) == len(data) - 3
    assert filters.copy_end(data, 4096) == len(data) - 3
    assert filters.copy_end(data[:-3], 0) == -1
    assert filters.copy_end(b"\\.\r\n", 0) == 0
    assert filters.copy_end(b"1\n\\.x\n2\n", 0) == -1


class FailingReader:
    """Gives a little, then fails as a disk or S3 read would."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)
        self.reads = 0

    def read(self, size: int = -1, /) -> bytes:
        self.reads += 1
        if self.reads > 2:
            raise OSError("the disk went away")
        return self._data.read(min(size, 1000))

    def close(self) -> None:
        self._data.close()


def test_a_read_error_in_the_thread_reaches_the_caller() -> None:
    source = FailingReader(gzip.compress(os.urandom(100_000)))
    with pytest.raises(OSError, match="the disk went away"):
        verify_stream(source, expected_sha256=None)


def test_a_caller_that_stops_early_stops_the_thread() -> None:
    data = gzip.compress(os.urandom(8 << 20))
    hashing = HashingReader(io.BytesIO(data))
    decoder = BackgroundDecoder(hashing, hashing)
    next(decoder.chunks())  # one piece, then the caller gives up (psql failed, Ctrl-C)
    decoder.close()
    assert not decoder._thread.is_alive()  # stopped within close()'s bounded wait
    assert hashing.size < len(data)  # it stopped reading, not ran to the end


def test_the_verdict_hashes_what_was_stored_and_counts_what_was_decoded() -> None:
    sql = b"-- x\n" * 300_000
    blob = gzip.compress(sql)
    seen: list[int] = []
    verdict = verify_stream(io.BytesIO(blob), expected_sha256=None, progress=seen.append)
    assert verdict.sha256 == hashlib.sha256(blob).hexdigest()
    assert verdict.uncompressed_bytes == len(sql) and verdict.gzip_complete
    assert seen[-1] == len(blob) and seen == sorted(seen)
