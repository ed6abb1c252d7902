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
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from backup_agent.model.naming import AGENT_NAME, in_the_future, is_encrypted

# The last line pg_dump writes: a plain dump without it was cut short.
DUMP_COMPLETE_MARKER = b"-- PostgreSQL database dump complete"
TAIL_BYTES = 8192  # enough of a dump's (uncompressed) end to find that closing line


class Where(StrEnum):
    """Where backups are looked for."""

    LOCAL = "local"
    S3 = "s3"
    ALL = "all"


class Place(StrEnum):
    """Where one backup is read from (`--from`)."""

    LOCAL = "local"
    S3 = "s3"


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
    has_signature: bool = False
    has_globals: bool = False
    modified: datetime | None = None  # the file's mtime, or the S3 object's LastModified
    path: Path | None = None  # local backups
    bucket: str | None = None  # S3 backups
    key: str | None = None
    # Read from the sidecars once the catalog loaded the details.
    manifest: Mapping[str, Any] | None = None
    manifest_bytes: bytes | None = field(default=None, repr=False)  # what was signed
    signature: bytes | None = field(default=None, repr=False)
    globals_bytes: bytes | None = field(default=None, repr=False)  # as stored
    expected_sha256: str | None = None
    details_loaded: bool = False
    # Set by keys.trust once a key in TRUSTED_SIGNING_KEYS vouched for it: not checked again.
    authenticated: bool = field(default=False, compare=False)
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
        """Ours, with its checksum, and (once the manifest is read) of the size it records:
        the only backups `latest`, status and retention trust. A cut-short copy is not."""
        recorded = (self.manifest or {}).get("size_bytes")
        return self.made_by_agent and self.has_checksum \
            and (not isinstance(recorded, int) or recorded == self.size)

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
                     expected_sha256: str | None, manifest_bytes: bytes | None = None,
                     signature: bytes | None = None,
                     globals_bytes: bytes | None = None) -> BackupRef:
        return replace(self, manifest=manifest, expected_sha256=expected_sha256,
                       has_manifest=manifest is not None, manifest_bytes=manifest_bytes,
                       signature=signature, globals_bytes=globals_bytes, details_loaded=True)

    def age(self, now: datetime) -> timedelta:
        """How old it is: by its name, or by when it was stored if that is earlier (a name
        can be chosen; S3's LastModified cannot)."""
        stored = self.modified if self.modified is not None else self.created
        return now - min(self.created, stored)

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
                "has_checksum": self.has_checksum, "signed": self.has_signature,
                "complete": self.complete}


@dataclass(frozen=True)
class S3Location:
    """Where an object is in S3."""

    bucket: str
    key: str

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def newest_complete(backups: Iterable[BackupRef], now: datetime) -> BackupRef | None:
    """Return the newest complete backup: the one definition of "latest".

    A backup dated in the future is never the latest: its name lies (see dated_ahead).
    """
    complete = [backup for backup in backups
                if backup.complete and not in_the_future(backup.created, now)]
    return max(complete, key=lambda backup: backup.created) if complete else None


def dated_ahead(backups: Iterable[BackupRef], now: datetime) -> list[str]:
    """The warnings for backups whose names are dated in the future (ignored everywhere)."""
    return [f"ignored {backup.location}: its name is dated in the future "
            f"({backup.created:%Y-%m-%d %H:%M} UTC), which no working clock wrote"
            for backup in backups if in_the_future(backup.created, now)]


def newest_first(backups: Iterable[BackupRef]) -> list[BackupRef]:
    """Sort newest first; on a tie (the same backup in both places) local comes first."""
    return sorted(backups, key=lambda backup: (backup.created, backup.where is Where.LOCAL),
                  reverse=True)
