"""`backup-agent list [local|s3|all]`: every backup we can see, newest first."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from backup_agent import local_store, s3_store
from backup_agent.errors import ConfigurationError
from backup_agent.naming import CHECKSUM_SUFFIX, MANIFEST_SUFFIX, created_at
from backup_agent.settings import Settings


class Where(StrEnum):
    LOCAL = "local"
    S3 = "s3"
    ALL = "all"


@dataclass(frozen=True)
class ListedBackup:
    name: str
    where: str  # "local" or "s3"
    location: str  # a path or an s3:// URL
    size_bytes: int
    created: datetime
    has_checksum: bool
    # True: our manifest is there. False: no manifest (the old shell script's backups, or an
    # upload that stopped before its manifest): such a backup cannot be proven complete.
    complete: bool

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "where": self.where, "location": self.location,
                "size_bytes": self.size_bytes, "created": self.created.isoformat(),
                "has_checksum": self.has_checksum, "complete": self.complete}


def list_local(settings: Settings) -> list[ListedBackup]:
    return [ListedBackup(name=backup.name, where="local", location=str(backup.path),
                         size_bytes=backup.size, created=backup.created,
                         has_checksum=backup.has_checksum, complete=backup.made_by_agent)
            for backup in local_store.scan(settings.backup_directory)]


def list_s3(settings: Settings) -> list[ListedBackup]:
    """Read only under S3_PREFIX, paginating; group each backup with its sidecars."""
    bucket = settings.s3.bucket
    if not bucket:
        raise ConfigurationError("S3_BUCKET is not set: set it (env or --env-file) to list "
                                 "backups in S3, or use `backup-agent list local`")
    session = s3_store.make_session(settings.s3)
    client = s3_store.make_client(settings.s3, session)
    data: dict[str, s3_store.S3Object] = {}
    sidecars: set[str] = set()
    try:
        for item in s3_store.list_objects(client, bucket=bucket, prefix=settings.s3.prefix):
            base = item.key.rsplit("/", 1)[-1]
            if created_at(base) is not None:
                data[base] = item
            elif base.endswith((CHECKSUM_SUFFIX, MANIFEST_SUFFIX)):
                sidecars.add(base)
    except Exception as error:  # noqa: BLE001 - translate_error re-raises what it does not know
        raise s3_store.translate_error(error, bucket=bucket, action="list backups",
                                       endpoint=client.meta.endpoint_url) from None
    listed = []
    for name, item in data.items():
        created = created_at(name)
        assert created is not None
        listed.append(ListedBackup(
            name=name, where="s3", location=f"s3://{bucket}/{item.key}", size_bytes=item.size,
            created=created, has_checksum=name + CHECKSUM_SUFFIX in sidecars,
            complete=name + MANIFEST_SUFFIX in sidecars))
    return listed


@dataclass(frozen=True)
class ListResult:
    backups: list[ListedBackup]
    warnings: list[str]


def run_list(settings: Settings, where: Where) -> ListResult:
    """Return the backups in the chosen places, newest first (local before S3 on a tie)."""
    backups: list[ListedBackup] = []
    warnings: list[str] = []
    if where in (Where.LOCAL, Where.ALL):
        backups += list_local(settings)
    if where is Where.S3 or (where is Where.ALL and settings.s3.bucket):
        backups += list_s3(settings)
    elif where is Where.ALL:
        warnings.append("S3_BUCKET is not set: showing local backups only")
    backups.sort(key=lambda backup: (backup.created, backup.where == "local"), reverse=True)
    return ListResult(backups=backups, warnings=warnings)
