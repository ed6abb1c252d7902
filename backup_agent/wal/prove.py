"""Read an archive object back from S3, proven: signature, decryption, gzip, size, SHA-256.

The decode side of the format in `objects`, for restore (`restore_command`, a base
backup's descriptor) and `verify`. Nothing unproven is handed out: a file is written under
a temporary name and renamed to its own only after every check passed.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from backup_agent.model.errors import SourceNotFoundError, VerificationError
from backup_agent.wal.codec import decode_stream
from backup_agent.wal.objects import Facts, Vouch, signed_facts

if TYPE_CHECKING:
    from pyrage.x25519 import Identity

    from backup_agent.storage.s3 import S3Store

# History files and descriptors are read into memory; nothing bigger than this is.
SMALL_OBJECT_LIMIT = 1024 * 1024


def proven_facts(store: S3Store, key: str, vouch: Vouch | None) -> tuple[Facts, int]:
    """Return the signed facts of the object at `key` (relative to S3_PREFIX) and its stored
    size; raise SourceNotFoundError if it is missing, VerificationError if untrusted."""
    head = store.head(store.prefix + key)
    if head is None:
        raise SourceNotFoundError(f"{store.url(store.prefix + key)} does not exist: the "
                                  "archive does not hold it")
    return signed_facts(key, head.get("Metadata", {}), vouch), int(head["ContentLength"])


def is_proven(store: S3Store, key: str, vouch: Vouch | None) -> bool:
    """True when the object at `key` exists and its metadata is signed for that very key by a
    trusted key (with `vouch` None: well-formed). Anything else (missing, planted, moved)
    counts as absent: the writer's key can add objects, never make them trusted."""
    try:
        proven_facts(store, key, vouch)
    except (SourceNotFoundError, VerificationError):
        return False
    return True


def fetch_proven(store: S3Store, key: str, destination: Path, *, vouch: Vouch | None,
                 identities: Sequence[Identity] = ()) -> Facts:
    """Write the plaintext of the object at `key` to `destination`, only once proven.

    `vouch` None accepts an unsigned object (the caller's --allow-unsigned)."""
    facts, stored_size = proven_facts(store, key, vouch)
    temporary = destination.with_name(f".{destination.name}.proving")
    source = store.opener(store.prefix + key, stored_size)()
    try:
        with temporary.open("wb") as target:
            decode_stream(source, target, facts, identities=identities,
                          what=store.url(store.prefix + key))
            target.flush()
            os.fsync(target.fileno())
        temporary.rename(destination)
    finally:
        source.close()
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
    return facts


def read_proven(store: S3Store, key: str, *, vouch: Vouch | None,
                identities: Sequence[Identity] = (),
                limit: int = SMALL_OBJECT_LIMIT) -> bytes:
    """Return the plaintext of a small object (a history file, a descriptor), proven."""
    facts, stored_size = proven_facts(store, key, vouch)
    if facts.size > limit or stored_size > 2 * limit:
        raise VerificationError(f"{store.url(store.prefix + key)} is larger than a "
                                f"{limit}-byte object may be: refusing to read it")
    source = store.opener(store.prefix + key, stored_size)()
    target = io.BytesIO()
    try:
        decode_stream(source, target, facts, identities=identities,
                      what=store.url(store.prefix + key))
    finally:
        source.close()
    return target.getvalue()
