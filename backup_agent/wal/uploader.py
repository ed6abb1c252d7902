"""Upload the spool's complete WAL files to S3: encode, sign, create-only, idempotent.

A file is deleted from the spool only once S3 holds it: either our PUT was confirmed, or
an object is already at its key whose signed-for plaintext SHA-256 and size equal ours (an
earlier attempt whose answer was lost; encrypted bytes differ run to run, so the stored
bytes cannot be compared). An object there with another plaintext is an alarm: the file
stays in the spool and the stream stops (exit 5), never retrying forever.

Every upload is preceded by a HEAD of its key, so even a bucket (or proxy) that ignores
If-None-Match cannot make us overwrite a different segment: the metadata compare catches it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from backup_agent.model.errors import ObjectExistsError, S3Error
from backup_agent.wal.codec import encode_file
from backup_agent.wal.names import WalFile, wal_key
from backup_agent.wal.objects import Facts, Meta, Sign, metadata_for, same_content
from backup_agent.wal.spool import agent_directory, ready_files

if TYPE_CHECKING:
    from backup_agent.storage.s3 import S3Store

log = logging.getLogger(__name__)

CONTENT_TYPE = "application/octet-stream"


@dataclass(frozen=True)
class Encoder:
    """How this server stores its WAL: to whom it encrypts, how it signs, what it adds."""

    system_identifier: str
    recipients: tuple[str, ...] = ()
    sign: Sign | None = None
    extra_metadata: Mapping[str, str] | None = None


@dataclass(frozen=True)
class Uploaded:
    wal: WalFile
    key: str  # relative to S3_PREFIX
    facts: Facts
    already_there: bool  # an earlier attempt had stored it: nothing was written


class ConflictingObjectError(ObjectExistsError):
    """The archive holds a different file under this WAL file's name (exit 5): an alarm."""


def _conflict(store: S3Store, key: str, path: Path, existing: Mapping[str, Any]) -> Exception:
    stated = {name.lower(): value for name, value in existing.get("Metadata", {}).items()}
    return ConflictingObjectError(
        f"{store.url(store.prefix + key)} already holds a different {path.name} (plaintext "
        f"SHA-256 {str(stated.get(Meta.SHA256, 'unknown'))[:12]}…): the local {path} is kept "
        "and WAL archiving stopped; find out who wrote it (another cluster with the same "
        "system identifier and S3_PREFIX, a restored copy still streaming, or someone with "
        "the writer's key)")


def upload_file(store: S3Store, wal: WalFile, path: Path, encoder: Encoder) -> Uploaded:
    """Store one complete WAL file; delete it locally once S3 holds it. Raise
    ConflictingObjectError if a different file is stored under its key, S3Error otherwise."""
    key = wal_key(encoder.system_identifier, wal)
    full_key = store.prefix + key
    encoded = agent_directory(path.parent, "encoding") / f"{wal.name}.stored"
    try:
        with encoded.open("wb") as target:
            facts = encode_file(path, target, encoder.recipients)
        existing = store.head(full_key)
        if existing is None:
            metadata = metadata_for(key, facts, encoder.sign, encoder.extra_metadata)
            try:
                store.put_file(full_key, encoded, content_type=CONTENT_TYPE, metadata=metadata)
            except ObjectExistsError:  # created meanwhile: by our lost attempt, or not
                existing = store.head(full_key)
                if existing is None:
                    raise S3Error(f"S3 reported a conflicting write to {store.url(full_key)} "
                                  "and nothing is there now: it is retried") from None
        if existing is not None and not same_content(existing.get("Metadata"), facts):
            raise _conflict(store, key, path, existing)
        _confirm(store, key, facts)
    finally:
        with contextlib.suppress(FileNotFoundError):
            encoded.unlink()
    path.unlink()
    if existing is not None:
        log.info("%s was already archived with the same content: the local copy is removed",
                 wal.name)
    return Uploaded(wal=wal, key=key, facts=facts, already_there=existing is not None)


def _confirm(store: S3Store, key: str, facts: Facts) -> None:
    """Read the object's metadata back: what S3 holds now states our plaintext."""
    stored = store.head(store.prefix + key)
    if stored is None or not same_content(stored.get("Metadata"), facts):
        raise S3Error(f"{store.url(store.prefix + key)} does not state this file's SHA-256 "
                      "after upload: the local copy is kept and the upload retried")


def upload_ready(store: S3Store, spool: Path, encoder: Encoder) -> Iterator[Uploaded]:
    """Upload every complete WAL file in the spool, oldest first, yielding each once
    stored; stop at the first error (later files wait: the archive never has a hole the
    spool could have filled)."""
    for wal, path in ready_files(spool):
        yield upload_file(store, wal, path, encoder)
