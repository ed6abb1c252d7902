"""The globals file as stored: gzip'd JSON, age-encrypted when the dump is.

Password hashes and role names are never readable where the dump is not: with ENCRYPT_TO
the file is encrypted to the same recipients. Proving it is the same as proving the dump:
its SHA-256 (recorded in the manifest, which the server signs), age's authentication, a
complete gzip stream, and then the strict reading of model/cluster_globals.py.
"""

from __future__ import annotations

import gzip
import hashlib
import zlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

from backup_agent.model.cluster_globals import ClusterGlobals, GlobalsError, parse_globals

if TYPE_CHECKING:
    from pyrage.x25519 import Identity

UNCOMPRESSED_LIMIT_BYTES = 64 * 1024 * 1024  # a cluster's roles fit many times over


def encode(content: bytes, recipients: Sequence[str]) -> bytes:
    """Return the stored form of the globals file's `content`."""
    compressed = gzip.compress(content, mtime=0)
    if not recipients:
        return compressed
    import pyrage
    from pyrage import x25519

    return pyrage.encrypt(compressed, [x25519.Recipient.from_str(key) for key in recipients])


def check_sha256(stored: bytes, expected_sha256: str) -> None:
    """Raise GlobalsError unless the stored bytes are the ones the manifest records."""
    if hashlib.sha256(stored).hexdigest() != expected_sha256:
        raise GlobalsError("its SHA-256 differs from the one in the manifest")


def prove(stored: bytes, *, expected_sha256: str,
          identities: Sequence[Identity] | None) -> ClusterGlobals:
    """Return the globals a stored file holds; raise GlobalsError naming what is wrong."""
    check_sha256(stored, expected_sha256)
    if identities is not None:
        import pyrage

        try:
            stored = pyrage.decrypt(stored, list(identities))
        except pyrage.DecryptError:
            raise GlobalsError("wrong key: it does not decrypt with the given key (check "
                               "--identity)") from None
    decoder = zlib.decompressobj(zlib.MAX_WBITS | 16)
    try:
        content = decoder.decompress(stored, UNCOMPRESSED_LIMIT_BYTES)
    except zlib.error:
        raise GlobalsError("it is not a gzip stream") from None
    if not decoder.eof or decoder.unconsumed_tail or decoder.unused_data:
        raise GlobalsError("its gzip stream is cut short, too large or followed by data")
    return parse_globals(content)
