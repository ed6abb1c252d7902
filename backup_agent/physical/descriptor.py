"""A base backup's descriptor: the small JSON document that makes it complete and usable.

Stored last, at `base/<system identifier>/<stamp>/descriptor.json`, as a signed archive
object (see wal/objects: gzip, never encrypted, so a catalog can list base backups without
the private key). It names the tar and its plaintext SHA-256 and size (the tar's own
metadata cannot: it was streamed before they were known), and the WAL range a restore must
replay from the archive: from `start_lsn` on `start_timeline` to at least `end_lsn`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

DESCRIPTOR_FORMAT = "backup-agent-base-1"
DESCRIPTOR_NAME = "descriptor.json"
TAR_NAME = "base.tar"


@dataclass(frozen=True)
class StoredFile:
    key: str  # relative to S3_PREFIX
    sha256: str  # of the plaintext (the tar as pg_basebackup wrote it)
    size: int
    stored_sha256: str  # of the bytes in S3 (gzip, or age)
    stored_size: int
    encoding: str  # gzip or gzip+age


@dataclass(frozen=True)
class Descriptor:
    system_identifier: str
    server_version: str
    major_version: int
    start_lsn: str
    start_timeline: int
    end_lsn: str
    end_timeline: int
    start_time: str  # ISO 8601, UTC
    end_time: str
    label: str
    tar: StoredFile
    wal_method: str = "none"  # the WAL comes from the archive
    manifest_checksums: str = "SHA256"  # backup_manifest inside the tar

    def render(self) -> bytes:
        """Canonical JSON (sorted keys): the bytes stored and hashed."""
        document: dict[str, Any] = {"format": DESCRIPTOR_FORMAT, **asdict(self)}
        return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode()


def parse_descriptor(data: bytes) -> Descriptor:
    """Return the descriptor in `data` (read only after its object was proven); raise
    ValueError if it is not one."""
    document = json.loads(data)
    if not isinstance(document, dict) or document.pop("format", None) != DESCRIPTOR_FORMAT:
        raise ValueError("not a backup-agent base backup descriptor")
    tar = StoredFile(**document.pop("tar"))
    return Descriptor(tar=tar, **document)
