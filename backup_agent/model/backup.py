"""One record for one backup, wherever it is: what `list` shows, what restore and verify open.

A `BackupRef` comes from the catalog, local or from S3. Listing fills in what a directory
or a bucket listing tells (name, size, which sidecars exist); `details_loaded` ones also
carry the expected SHA-256 from the `.sha256` sidecar and the parsed manifest. Opening one
goes through the storage that listed it, without listing again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from backup_agent.model.naming import AGENT_NAME, is_encrypted

# The last line pg_dump writes: a plain dump without it was cut short.
DUMP_COMPLETE_MARKER = b"-- PostgreSQL database dump complete"


class Where(StrEnum):
    """Where backups are looked for."""

    LOCAL = "local"
    S3 = "s3"
    ALL = "all"


class ReadableStream(Protocol):
    """Anything with `read(size)` and `close()`: a file, an S3 body."""

    def read(self, size: int = -1, /) -> bytes: ...

    def close(self) -> None: ...


def _cannot_open() -> ReadableStream:
    raise RuntimeError("this backup reference was not made by the catalog")


@dataclass(frozen=True)
class BackupRef:
    name: str
    where: Where  # LOCAL or S3
    location: str  # a path or an s3:// URL, for people
    size: int
    created: datetime  # from the name, UTC
    has_checksum: bool
    has_manifest: bool
    path: Path | None = None  # local backups
    bucket: str | None = None  # S3 backups
    key: str | None = None
    # Read from the sidecars once the catalog loaded the details.
    manifest: Mapping[str, Any] | None = None
    expected_sha256: str | None = None
    details_loaded: bool = False
    opener: Callable[[], ReadableStream] = field(default=_cannot_open, repr=False,
                                                 compare=False)

    @property
    def encrypted(self) -> bool:
        return is_encrypted(self.name)

    @property
    def made_by_agent(self) -> bool:
        """True when our manifest is there (and, once read, says we wrote it).

        The guide's old script wrote none; an upload that stopped before its manifest
        left none either: neither can be proven complete.
        """
        if not self.has_manifest:
            return False
        return self.manifest is None or self.manifest.get("tool") == AGENT_NAME

    @property
    def complete(self) -> bool:
        """Ours, with its checksum: the only backups `latest`, status and retention trust."""
        return self.made_by_agent and self.has_checksum

    @property
    def recipients(self) -> list[str]:
        """The age public keys the manifest says this backup was encrypted to."""
        encryption = (self.manifest or {}).get("encryption")
        recipients = encryption.get("recipients") if isinstance(encryption, dict) else None
        return [str(item) for item in recipients] if isinstance(recipients, list) else []

    def progress_label(self, verb: str) -> str:
        """`restore NAME`, or `download + restore NAME` when it streams from S3."""
        return f"{'download + ' if self.where is Where.S3 else ''}{verb} {self.name}"

    def with_details(self, *, manifest: Mapping[str, Any] | None,
                     expected_sha256: str | None) -> BackupRef:
        return replace(self, manifest=manifest, expected_sha256=expected_sha256,
                       has_manifest=manifest is not None, details_loaded=True)

    @contextmanager
    def open(self) -> Iterator[ReadableStream]:
        """Yield the backup's stored bytes as a stream; it is closed afterwards."""
        stream = self.opener()
        try:
            yield stream
        finally:
            stream.close()

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "where": self.where.value, "location": self.location,
                "key": self.key, "size_bytes": self.size, "created": self.created.isoformat(),
                "has_checksum": self.has_checksum, "complete": self.complete}


@dataclass(frozen=True)
class S3Location:
    """Where an object is in S3."""

    bucket: str
    key: str

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def newest_complete(backups: Iterable[BackupRef]) -> BackupRef | None:
    """Return the newest complete backup: the one definition of "latest"."""
    complete = [backup for backup in backups if backup.complete]
    return max(complete, key=lambda backup: backup.created) if complete else None


def newest_first(backups: Iterable[BackupRef]) -> list[BackupRef]:
    """Sort newest first; on a tie (the same backup in both places) local comes first."""
    return sorted(backups, key=lambda backup: (backup.created, backup.where is Where.LOCAL),
                  reverse=True)
