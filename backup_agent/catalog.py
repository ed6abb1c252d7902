"""The backup catalog: find backups, locally and in S3, and resolve what an operator names.

`latest`, a local path or an s3:// URL becomes a `BackupRef` whose sidecars (checksum and
manifest) are loaded and that can be opened, from the storage that listed it, without
listing again. Inputs that point outside the backup directory or the configured bucket are
refused before anything is read. "Latest complete" has one definition
(`model.backup.newest_complete`), used here for restore and verify, by status and by the
workflow's runner checks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from backup_agent.model.backup import BackupRef, Where, newest_complete, newest_first
from backup_agent.model.errors import ConfigurationError, SourceNotFoundError
from backup_agent.model.naming import (
    checksum_name,
    created_at,
    manifest_name,
    parse_checksum_file,
)
from backup_agent.model.settings import Settings
from backup_agent.storage import local

if TYPE_CHECKING:
    from backup_agent.storage.s3 import S3Object, S3Store

LATEST = "latest"
S3_SCHEME = "s3://"


@dataclass(frozen=True)
class Listing:
    backups: list[BackupRef]  # newest first
    warnings: list[str]


class Catalog:
    """The backups this configuration can see; S3 is only contacted when asked about."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._store: S3Store | None = None

    @property
    def store(self) -> S3Store:
        """The S3 store (imported on first use: commands that stay local never load boto3)."""
        if self._store is None:
            from backup_agent.storage.s3 import S3Store

            if not self._settings.s3.bucket:
                raise ConfigurationError("S3_BUCKET is not set: set it (env or --env-file) to "
                                         "use backups in S3, or use the local ones")
            self._store = S3Store(self._settings.s3)
        return self._store

    # Listing

    def local(self) -> list[BackupRef]:
        return local.scan(self._settings.backup_directory)

    def s3(self) -> list[BackupRef]:
        """Read only under S3_PREFIX; each backup with the sidecars listed beside it."""
        return newest_first(self._backups_in(self.store.list()))

    def _backups_in(self, objects: list[S3Object]) -> list[BackupRef]:
        store = self.store
        keys = {item.key for item in objects}
        found = []
        for item in objects:
            name = item.key.rsplit("/", 1)[-1]
            created = created_at(name)
            if created is None:
                continue
            found.append(BackupRef(
                name=name, where=Where.S3, location=store.url(item.key), size=item.size,
                created=created, has_checksum=checksum_name(item.key) in keys,
                has_manifest=manifest_name(item.key) in keys, bucket=store.bucket,
                key=item.key, opener=store.opener(item.key, item.size)))
        return found

    def listing(self, where: Where) -> Listing:
        """Return the backups in the chosen places, newest first (local before S3 on a tie)."""
        backups: list[BackupRef] = []
        warnings: list[str] = []
        if where in (Where.LOCAL, Where.ALL):
            backups += self.local()
        if where is Where.S3 or (where is Where.ALL and self._settings.s3.bucket):
            backups += self.s3()
        elif where is Where.ALL:
            warnings.append("S3_BUCKET is not set: showing local backups only")
        return Listing(backups=newest_first(backups), warnings=warnings)

    # Resolving

    def latest(self, *, from_s3: bool) -> BackupRef:
        """Return the newest complete backup, its details loaded."""
        newest = newest_complete(self.s3() if from_s3 else self.local())
        if newest is None:
            where = (f"s3://{self._settings.s3.bucket}/{self._settings.s3.prefix}" if from_s3
                     else str(self._settings.backup_directory))
            other = "" if from_s3 else ", or use --from s3"
            raise SourceNotFoundError(f"no complete backup in {where}: `backup-agent list` "
                                      f"shows what there is{other}")
        return self.details(newest)

    def resolve(self, given: str, *, from_s3: bool) -> BackupRef:
        """Return the backup that `given` (latest, a path, or an s3:// URL) names."""
        if given == LATEST:
            return self.latest(from_s3=from_s3)
        if given.startswith(S3_SCHEME):
            return self._s3_url(given)
        return self.details(self._local_path(given))

    def all(self, *, from_s3: bool) -> list[BackupRef]:
        """Every backup in one place, details loaded (one listing, then the sidecars)."""
        return [self.details(backup) for backup in (self.s3() if from_s3 else self.local())]

    def details(self, backup: BackupRef) -> BackupRef:
        """Return `backup` with its expected SHA-256 and manifest read from the sidecars."""
        if backup.details_loaded:
            return backup
        if backup.where is Where.LOCAL:
            assert backup.path is not None
            checksum_path = backup.path.with_name(checksum_name(backup.name))
            checksum_text = (checksum_path.read_text(errors="replace")
                             if local.is_regular_file(checksum_path) else None)
            manifest = local.read_manifest(backup.path.with_name(manifest_name(backup.name)))
        else:
            assert backup.key is not None
            # Only sidecars the listing showed are read: with a writer that may only list
            # its prefix, S3 answers a GET of a missing key with 403, not 404.
            checksum_text = (self.store.read_small(checksum_name(backup.key)).decode(
                "utf-8", "replace") if backup.has_checksum else None)
            manifest = (parse_manifest(self.store.read_small(manifest_name(backup.key)))
                        if backup.has_manifest else None)
        expected = parse_checksum_file(checksum_text, backup.name) if checksum_text else None
        return backup.with_details(manifest=manifest, expected_sha256=expected)

    def _local_path(self, given: str) -> BackupRef:
        directory = self._settings.backup_directory.resolve()
        path = Path(given)
        resolved = (path if path.is_absolute() else Path.cwd() / path).resolve()
        if resolved.parent != directory:
            raise ConfigurationError(f"{given} is not in the backup directory {directory}: "
                                     "restore only from BACKUP_DIR (copy the file there, or "
                                     "set BACKUP_DIR)")
        if created_at(resolved.name) is None:
            raise ConfigurationError(f"{resolved.name} is not a backup name (db_backup_"
                                     "YYYYMMDD_HHMMSS.sql.gz[.age]): see `backup-agent list`")
        backup = local.describe(resolved)
        if backup is None:
            raise SourceNotFoundError(f"no backup at {resolved}: `backup-agent list local` "
                                      "shows what there is")
        return backup

    def _s3_url(self, url: str) -> BackupRef:
        bucket, key = parse_s3_url(url, self._settings.s3.bucket)
        if self._store is None or self._store.bucket != bucket:
            from backup_agent.storage.s3 import S3Store

            self._store = S3Store(self._settings.s3, bucket=bucket)
        # One listing says what exists (see `details` for why we never probe blindly).
        for backup in self._backups_in(self._store.list(prefix=key)):
            if backup.key == key:
                return self.details(backup)
        raise SourceNotFoundError(f"no object at s3://{bucket}/{key}: `backup-agent list s3` "
                                  "shows what there is")


def parse_manifest(content: bytes) -> dict[str, Any] | None:
    try:
        loaded = json.loads(content.decode("utf-8", "replace"))
    except ValueError:
        return None
    return loaded if isinstance(loaded, dict) else None


def parse_s3_url(url: str, configured_bucket: str | None) -> tuple[str, str]:
    """Return (bucket, key) of an s3:// URL that names a backup in the configured bucket."""
    bucket, _, key = url.removeprefix(S3_SCHEME).partition("/")
    if not bucket or not key:
        raise ConfigurationError(f"{url} is not an s3://BUCKET/KEY URL")
    if configured_bucket and bucket != configured_bucket:
        raise ConfigurationError(f"{url} is not in the configured bucket {configured_bucket}: "
                                 "restore only from S3_BUCKET (or change S3_BUCKET)")
    if any(part in ("", ".", "..") for part in key.split("/")):
        raise ConfigurationError(f"{url} has an empty, '.' or '..' path segment: give the key "
                                 "exactly as `backup-agent list s3` prints it")
    if created_at(key.rsplit("/", 1)[-1]) is None:
        raise ConfigurationError(f"{url} does not name a backup "
                                 "(…/db_backup_YYYYMMDD_HHMMSS.sql.gz): see `backup-agent list s3`")
    return bucket, key
