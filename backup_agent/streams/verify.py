"""Prove a backup good while reading it once: SHA-256, a complete gzip stream, the closing line.

The same pass can hand the SQL to the restore engine (restoring/) or to nothing (verify),
from a file or straight from S3, with bounded memory. The verdict is known only at the end
of the stream, which is why a restore builds a new database and swaps it in only when the
verdict is good.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from backup_agent.model.backup import DUMP_COMPLETE_MARKER, TAIL_BYTES, ReadableStream
from backup_agent.streams.decoding import BackgroundDecoder
from backup_agent.streams.hashing import HashingReader
from backup_agent.streams.statements import StatementCheck

if TYPE_CHECKING:
    from pyrage.x25519 import Identity

    from backup_agent.streams.age import Readable


@dataclass(frozen=True)
class Verdict:
    """What one pass over a backup found."""

    sha256: str
    expected_sha256: str | None
    compressed_bytes: int
    uncompressed_bytes: int
    gzip_complete: bool  # every gzip member ended properly, nothing after the last one
    dump_complete: bool  # pg_dump's closing "dump complete" line is at the end
    encrypted: bool = False  # read through age decryption
    decryption_error: str | None = None  # why decryption stopped, if it did
    statement_problem: str | None = None  # the first statement pg_dump would never write

    @property
    def checksum_matches(self) -> bool:
        return self.expected_sha256 is not None and self.sha256 == self.expected_sha256

    @property
    def checksum_state(self) -> str:
        """"ok", "mismatch", or "missing" (no .sha256 to compare with)."""
        if self.expected_sha256 is None:
            return "missing"
        return "ok" if self.checksum_matches else "mismatch"

    @property
    def content_good(self) -> bool:
        """Whole, complete, and (when checked) only what pg_dump writes."""
        return self.gzip_complete and self.dump_complete and self.statement_problem is None

    @property
    def good(self) -> bool:
        return self.checksum_matches and self.content_good

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
        if self.statement_problem:
            found.append(f"it holds what pg_dump never writes, {self.statement_problem}")
        return found


def checksum_stream(source: ReadableStream, *, expected_sha256: str | None,
                    progress: Callable[[int], None] | None = None) -> Verdict:
    """Hash `source` only: for an encrypted backup when no private key is at hand."""
    hashing = HashingReader(source, progress)
    hashing.drain()
    return Verdict(sha256=hashing.hexdigest(), expected_sha256=expected_sha256,
                   compressed_bytes=hashing.size, uncompressed_bytes=0, gzip_complete=False,
                   dump_complete=False, encrypted=True)


def verify_stream(source: ReadableStream, *, expected_sha256: str | None,
                  sink: Callable[[bytes], None] | None = None,
                  progress: Callable[[int], None] | None = None,
                  identities: Sequence[Identity] | None = None,
                  check: StatementCheck | None = None) -> Verdict:
    """Read `source` to the end, feeding the decompressed SQL to `sink`; return the verdict.

    With `check`, every statement is checked as it passes (see streams/statements.py).

    With `identities`, the source is age-encrypted: the SHA-256 covers the stored bytes and
    the gzip stream is read from the plaintext. A stream that cannot be decrypted or
    decompressed stops feeding the sink early (gzip_complete False); the sink has then seen
    only a prefix of the dump, and the caller must discard its work.
    """
    hashing = HashingReader(source)
    decrypting = None
    if identities is not None:
        from backup_agent.streams.age import DecryptingReader  # pyrage only when decrypting

        decrypting = DecryptingReader(hashing, identities)
    compressed: Readable = decrypting if decrypting is not None else hashing
    decoder = None
    uncompressed = 0
    tail = b""
    try:
        decoder = BackgroundDecoder(compressed, hashing)
        for data, stored in decoder.chunks():
            if progress:
                progress(stored)
            if data:
                uncompressed += len(data)
                tail = (tail + data[-TAIL_BYTES:])[-TAIL_BYTES:]
                if check is not None:
                    check.feed(data)
                if sink:
                    sink(data)
    finally:
        try:
            if decoder is not None:
                decoder.close()
        finally:
            if decrypting is not None:
                decrypting.close()
    hashing.drain()
    if progress:
        progress(hashing.size)
    decryption_error = decrypting.error if decrypting is not None else None
    gzip_complete = (not decoder.corrupt and not decoder.in_member and decoder.read_any
                     and decryption_error is None)
    if check is not None and gzip_complete:
        check.finish()
    return Verdict(sha256=hashing.hexdigest(), expected_sha256=expected_sha256,
                   compressed_bytes=hashing.size, uncompressed_bytes=uncompressed,
                   gzip_complete=gzip_complete,
                   dump_complete=gzip_complete and DUMP_COMPLETE_MARKER in tail,
                   encrypted=identities is not None, decryption_error=decryption_error,
                   statement_problem=check.problem if check is not None else None)
