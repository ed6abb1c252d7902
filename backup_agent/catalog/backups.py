"""The backup catalog: find backups, locally and in S3, and resolve what an operator names.

`latest`, a local path or an s3:// URL becomes a `BackupRef` whose sidecars (checksum and
manifest) are loaded and that can be opened, from the storage that listed it, without
listing again. Inputs that point outside the backup directory or the configured bucket are
refused before anything is read. "Latest complete" has one definition
(`model.backup.newest_complete`), used here for restore and verify, by status and by the
workflow's runner checks. Trust is the layer above's: `keys.trust.TrustedCatalog` is this
catalog with TRUSTED_SIGNING_KEYS applied to `latest`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from backup_agent.catalog.s3_urls import S3_SCHEME, parse_s3_url
from backup_agent.model.backup import (
    BackupRef,
    Where,
    dated_ahead,
    newest_complete,
    newest_first,
)
from backup_agent.model.errors import (
    ConfigurationError,
    LocalStorageError,
    SourceNotFoundError,
)
from backup_agent.model.naming import (
    checksum_name,
    created_at,
    globals_name,
    manifest_name,
    parse_checksum_file,
    s3_key,
    signature_name,
)
from backup_agent.model.settings import NO_BUCKET, Settings
from backup_agent.storage import local

if TYPE_CHECKING:
    from backup_agent.storage.s3 import S3Object, S3Store

LATEST = "latest"


@dataclass(frozen=True)
class Listing:
    backups: list[BackupRef]  # newest first
    warnings: list[str]
    s3_listed: bool = False  # S3 was asked (not when listing everywhere without a bucket)


class Catalog:
    """The backups this configuration can see; S3 is only contacted when asked about."""

    def __init__(self, settings: Settings, *, now: datetime | None = None) -> None:
        self._settings = settings
        self._store: S3Store | None = None
        self._now = now or datetime.now(UTC)
        self.warnings: list[str] = []  # what was passed over, said once by the caller

    @property
    def store(self) -> S3Store:
        """The S3 store (imported on first use: commands that stay local never load boto3)."""
        if self._store is None:
            from backup_agent.storage.s3 import S3Store

            self._store = S3Store(self._settings.s3)  # raises if S3_BUCKET is not set
        return self._store

    # Listing

    def local(self) -> list[BackupRef]:
        directory = self._settings.backup_directory
        if not directory.is_dir():  # a mistyped BACKUP_DIR is not "no backups"
            raise LocalStorageError(f"backup directory {directory} does not exist: fix "
                                    "BACKUP_DIR (or --backup-dir), or look in S3 only")
        return local.scan(directory)

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
                has_manifest=manifest_name(item.key) in keys,
                has_signature=signature_name(item.key) in keys,
                has_globals=globals_name(item.key) in keys, modified=item.last_modified,
                bucket=store.bucket, key=item.key, opener=store.opener(item.key, item.size)))
        return found

    def listing(self, where: Where) -> Listing:
        """Return the backups in the chosen places, newest first (local before S3 on a tie)."""
        backups: list[BackupRef] = []
        warnings: list[str] = []
        if where in (Where.LOCAL, Where.ALL):
            backups += self.local()
        s3_listed = where is Where.S3 or (where is Where.ALL and self._settings.s3.configured)
        if s3_listed:
            backups += self.s3()
        elif where is Where.ALL:
            warnings.append(f"{NO_BUCKET}: showing local backups only")
        warnings += dated_ahead(backups, self._now)
        return Listing(backups=newest_first(backups), warnings=warnings, s3_listed=s3_listed)

    # Resolving

    def latest(self, *, from_s3: bool) -> BackupRef:
        """Return the newest complete backup, its details loaded.

        Names dated in the future are passed over, and with TRUSTED_SIGNING_KEYS so is every
        backup that no trusted key signed: a planted backup is never `latest`.
        """
        if not from_s3:
            local.check_own_directory(self._settings.backup_directory)
        candidates = self.s3() if from_s3 else self.local()
        self.warnings += dated_ahead(candidates, self._now)
        newest = None
        passed_over = [backup for backup in candidates if not backup.complete]
        while (candidate := newest_complete(candidates, self._now)) is not None:
            detailed, problem = self.vouch(self.details(candidate))
            if problem is None:
                newest = detailed
                break
            self.warnings.append(f"passed over {candidate.location}: {problem}")
            candidates = [backup for backup in candidates if backup is not candidate]
        self.warnings += [f"passed over {backup.location}: {incomplete(backup)}"
                          for backup in passed_over if backup.made_by_agent
                          and (newest is None or backup.created > newest.created)]
        if newest is None:
            where = (f"s3://{self._settings.s3.bucket}/{self._settings.s3.prefix}" if from_s3
                     else str(self._settings.backup_directory))
            other = "" if from_s3 else ", or use --from s3"
            passed = "; ".join(self.warnings)
            raise SourceNotFoundError(f"no complete backup in {where}: `backup-agent list` "
                                      f"shows what there is{other}"
                                      + (f" ({passed})" if passed else ""))
        return newest

    def vouch(self, backup: BackupRef) -> tuple[BackupRef, str | None]:
        """Return `backup` and why it may not be `latest` (None: it may).

        Trust is decided a layer up (`keys.trust.TrustedCatalog` overrides this): this
        catalog alone must never pick `latest` where TRUSTED_SIGNING_KEYS are set.
        """
        if self._settings.trusted_signing_keys:
            raise RuntimeError("TRUSTED_SIGNING_KEYS is set: use keys.trust.TrustedCatalog")
        return backup, None

    def resolve(self, given: str, *, from_s3: bool) -> BackupRef:
        """Return the backup that `given` (latest, a name, a path, or an s3:// URL) names.

        A bare name is looked up in BACKUP_DIR, or with `from_s3` in the bucket."""
        if given == LATEST:
            return self.latest(from_s3=from_s3)
        if given.startswith(S3_SCHEME):
            return self._s3_url(given)
        if from_s3 and Path(given).name == given and created_at(given) is not None:
            # A name as `list` prints it, looked up where --from says: its key in the bucket.
            return self._s3_url(self.store.url(s3_key(self._settings.s3.prefix, given)))
        if from_s3 and created_at(Path(given).name) is not None:
            # A key as `list --keys` prints it (parse_s3_url keeps it under S3_PREFIX).
            return self._s3_url(self.store.url(given.lstrip("/")))
        local.check_own_directory(self._settings.backup_directory)
        return self.details(self._local_path(given))

    def all(self, *, from_s3: bool) -> list[BackupRef]:
        """Every backup in one place, details loaded (one listing, then the sidecars)."""
        return [self.details(backup) for backup in (self.s3() if from_s3 else self.local())]

    def details(self, backup: BackupRef) -> BackupRef:
        """Return `backup` with its expected SHA-256 and manifest read from the sidecars."""
        if backup.details_loaded:
            return backup
        read = self._local_sidecar if backup.where is Where.LOCAL else self._s3_sidecar
        checksum = read(backup, checksum_name, listed=backup.has_checksum)
        manifest_bytes = read(backup, manifest_name, listed=backup.has_manifest)
        expected = (parse_checksum_file(checksum.decode("utf-8", "replace"), backup.name)
                    if checksum else None)
        manifest = local.parse_manifest(manifest_bytes) if manifest_bytes is not None else None
        return backup.with_details(
            manifest=manifest, expected_sha256=expected, manifest_bytes=manifest_bytes,
            signature=read(backup, signature_name, listed=backup.has_signature),
            globals_bytes=read(backup, globals_name, listed=backup.has_globals))

    @staticmethod
    def _local_sidecar(backup: BackupRef, name_of: Callable[[str], str], *,
                       listed: bool) -> bytes | None:
        assert backup.path is not None
        return local.read_sidecar(backup.path.with_name(name_of(backup.name)))

    def _s3_sidecar(self, backup: BackupRef, name_of: Callable[[str], str], *,
                    listed: bool) -> bytes | None:
        # Only sidecars the listing showed are read: with a writer that may only list its
        # prefix, S3 answers a GET of a missing key with 403, not 404.
        assert backup.key is not None
        return self.store.read_small(name_of(backup.key)) if listed else None

    def _local_path(self, given: str) -> BackupRef:
        directory = self._settings.backup_directory.resolve()
        path = Path(given)
        if path.name == given and created_at(given) is not None:
            path = directory / given  # a name as `list` prints it, from any directory
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
            raise SourceNotFoundError(f"no backup at {resolved}: `backup-agent list` shows "
                                      "what there is (add --from s3 for one in S3 only)")
        return backup

    def _s3_url(self, url: str) -> BackupRef:
        bucket, key = parse_s3_url(url, self._settings.s3.bucket, self._settings.s3.prefix)
        if self._store is None or self._store.bucket != bucket:
            from backup_agent.storage.s3 import S3Store

            self._store = S3Store(self._settings.s3, bucket=bucket)
        # One listing says what exists (see `details` for why we never probe blindly).
        for backup in self._backups_in(self._store.list(prefix=key)):
            if backup.key == key:
                return self.details(backup)
        raise SourceNotFoundError(f"no object at s3://{bucket}/{key}: `backup-agent list s3` "
                                  "shows what there is")


def incomplete(backup: BackupRef) -> str:
    """Why an agent's backup is not complete (`BackupRef.complete`), in a few words."""
    if not backup.has_checksum:
        return "it has no .sha256 (an interrupted backup or upload): verify it, or delete it"
    recorded = (backup.manifest or {}).get("size_bytes")
    return (f"it is {backup.size} bytes, its manifest says {recorded}: damaged or cut "
            "short; `backup-agent verify` it")
