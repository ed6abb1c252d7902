"""Encode a file into the archive's stored form, and decode one back proving it on the way.

Both directions stream with bounded memory: plaintext → SHA-256 (of the plaintext) → gzip
→ age (with recipients) → target, and back: source → age → gunzip → size and SHA-256
checks → target. See `objects` for the format.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from backup_agent.model.errors import ConfigurationError, VerificationError
from backup_agent.streams.gzip import CorruptStreamError, GzipDecoder
from backup_agent.wal.objects import Facts, encoding_for

if TYPE_CHECKING:
    from pyrage.x25519 import Identity

    from backup_agent.streams.age import Readable

CHUNK_BYTES = 1024 * 1024


def encode_stream(source: Readable, target: BinaryIO, recipients: Sequence[str]) -> Facts:
    """Write `source` to `target` gzip'd (and age-encrypted to `recipients`, if any);
    return the plaintext's facts. The age stream is finished before this returns."""
    from backup_agent.streams.age import encrypting
    from backup_agent.streams.gzip import compressing

    digest = hashlib.sha256()
    size = 0
    with ExitStack() as chain:
        encrypted = chain.enter_context(encrypting(target, recipients))
        compressed = chain.enter_context(compressing(encrypted))
        while chunk := source.read(CHUNK_BYTES):
            digest.update(chunk)
            size += len(chunk)
            compressed.write(chunk)
    target.flush()
    return Facts(sha256=digest.hexdigest(), size=size,
                 encoding=encoding_for(encrypted=bool(recipients)))


def encode_file(source: Path, target: BinaryIO, recipients: Sequence[str]) -> Facts:
    """`encode_stream` of a file."""
    with source.open("rb") as plaintext:
        return encode_stream(plaintext, target, recipients)


def decode_stream(source: Readable, target: BinaryIO, facts: Facts, *,
                  identities: Sequence[Identity], what: str) -> None:
    """Write the plaintext of stored `source` to `target`, proving it against `facts`.

    Raise VerificationError when decryption, the gzip stream, the size or the SHA-256 do
    not agree with `facts` (what was written to `target` is then not to be used: callers
    write to a temporary file and keep it only on success). `what` names the object."""
    reader: Readable = source
    decrypting = None
    if facts.encrypted:
        if not identities:
            raise ConfigurationError(f"{what} is age-encrypted: pass --identity "
                                     "(AGE_IDENTITY_FILE, or AGE_IDENTITY) to read it")
        from backup_agent.streams.age import DecryptingReader

        reader = decrypting = DecryptingReader(source, identities)
    decoder = GzipDecoder()
    digest = hashlib.sha256()
    size = 0
    try:
        while chunk := reader.read(CHUNK_BYTES):
            for piece in decoder.pieces(chunk):
                size += len(piece)
                if size > facts.size:
                    raise VerificationError(f"{what} decodes to more than its signed "
                                            f"{facts.size} bytes: it was changed")
                digest.update(piece)
                target.write(piece)
    except CorruptStreamError as error:
        raise VerificationError(f"{what} is not a valid gzip stream ({error}): it is "
                                "corrupt or was changed") from None
    finally:
        if decrypting is not None:
            decrypting.close()
    if decrypting is not None and decrypting.error is not None:
        raise VerificationError(f"{what}: {decrypting.error}")
    if decoder.in_member:
        raise VerificationError(f"{what} ends inside its gzip stream: it is truncated")
    if size != facts.size or digest.hexdigest() != facts.sha256:
        raise VerificationError(f"{what} decodes to {size} bytes with SHA-256 "
                                f"{digest.hexdigest()[:12]}…, not the signed {facts.size} "
                                f"bytes with {facts.sha256[:12]}…: it was changed")
