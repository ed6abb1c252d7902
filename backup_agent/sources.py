"""Find the backup a restore or verify is about: `latest`, a local path, or an s3:// URL.

A source knows where its data is, how to open it as a stream, its expected SHA-256 (from
its `.sha256` sidecar) and its manifest, when those exist. Inputs that point outside the
backup directory or the configured bucket are refused before anything is read.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pyrage.x25519 import Identity

from backup_agent import local_store, s3_store
from backup_agent.encryption import check_identity_matches, load_identities, parse_identities
from backup_agent.errors import BackupAgentError, ConfigurationError, SourceNotFoundError
from backup_agent.naming import checksum_name, created_at, is_encrypted, manifest_name
from backup_agent.settings import Settings
from backup_agent.verification import ReadableStream

LATEST = "latest"
S3_SCHEME = "s3://"


@dataclass(frozen=True)
class BackupSource:
    name: str
    location: str  # a path or an s3:// URL, for people
    size: int
    created: datetime
    expected_sha256: str | None
    manifest: dict[str, Any] | None
    open: Callable[[], ReadableStream] = field(repr=False)

    @property
    def encrypted(self) -> bool:
        return is_encrypted(self.name)

    def progress_label(self, verb: str) -> str:
        """`restore NAME`, or `download + restore NAME` when it streams from S3."""
        return f"{'download + ' if self.location.startswith(S3_SCHEME) else ''}{verb} {self.name}"

    @property
    def recipients(self) -> list[str]:
        """The age public keys the manifest says this backup was encrypted to."""
        encryption = (self.manifest or {}).get("encryption")
        recipients = encryption.get("recipients") if isinstance(encryption, dict) else None
        return [str(item) for item in recipients] if isinstance(recipients, list) else []


def configured_identities(settings: Settings) -> tuple[list[Identity], str] | None:
    """Return the age identities the settings provide and where they came from, or None.

    AGE_IDENTITY_FILE (--identity) wins over AGE_IDENTITY.
    """
    if settings.identity_file is not None:
        return (load_identities(settings.identity_file),
                f"identity file {settings.identity_file}")
    if settings.identity_text is not None:
        return parse_identities(settings.identity_text, "AGE_IDENTITY"), "AGE_IDENTITY"
    return None


def decryption_keys(settings: Settings, source: BackupSource, *,
                    required: bool = True) -> list[Identity] | None:
    """Return the age identities that open `source`; None for an unencrypted backup (or,
    when not `required`, an encrypted one without AGE_IDENTITY_FILE).

    A missing or wrong key is refused here, before anything is created or read.
    """
    if not source.encrypted:
        return None
    configured = configured_identities(settings)
    if configured is None:
        if not required:
            return None
        recipients = f" (encrypted to {', '.join(source.recipients)})" if source.recipients else ""
        raise ConfigurationError(f"{source.location} is age-encrypted{recipients}: pass "
                                 "--identity FILE (or AGE_IDENTITY_FILE) with its private key")
    identities, origin = configured
    check_identity_matches(identities, source.recipients, origin=origin,
                           location=source.location)
    return identities


def parse_checksum_file(text: str, name: str) -> str | None:
    """Return the digest from `sha256sum` output for `name`, or None if it has none."""
    for line in text.splitlines():
        parts = line.strip().split()
        if len(parts) == 2 and parts[1].lstrip("*") == name and len(parts[0]) == 64:
            return parts[0].lower()
    return None


def _local_source(path: Path) -> BackupSource:
    created = created_at(path.name)
    assert created is not None
    checksum_path = path.with_name(checksum_name(path.name))
    expected = None
    if checksum_path.is_file():
        expected = parse_checksum_file(checksum_path.read_text(errors="replace"), path.name)
    manifest = local_store.read_manifest(path.with_name(manifest_name(path.name)))
    return BackupSource(name=path.name, location=str(path), size=path.stat().st_size,
                        created=created, expected_sha256=expected, manifest=manifest,
                        open=lambda: path.open("rb"))


def _local_path(settings: Settings, given: str) -> BackupSource:
    directory = settings.backup_directory.resolve()
    path = Path(given)
    path = path if path.is_absolute() else Path.cwd() / path
    resolved = path.resolve()
    if resolved.parent != directory:
        raise ConfigurationError(f"{given} is not in the backup directory {directory}: restore "
                                 "only from BACKUP_DIR (copy the file there, or set BACKUP_DIR)")
    if created_at(resolved.name) is None:
        raise ConfigurationError(f"{resolved.name} is not a backup name (db_backup_YYYYMMDD_"
                                 "HHMMSS.sql.gz[.age]): see `backup-agent list`")
    if not resolved.is_file():
        raise SourceNotFoundError(f"no backup at {resolved}: `backup-agent list local` shows "
                                  "what there is")
    return _local_source(resolved)


def latest_local(settings: Settings) -> BackupSource:
    for backup in local_store.scan(settings.backup_directory):
        if backup.made_by_agent and backup.has_checksum:
            return _local_source(backup.path)
    raise SourceNotFoundError(f"no complete backup in {settings.backup_directory}: "
                              "`backup-agent list` shows what there is, or use --from s3")


def parse_s3_url(url: str, settings: Settings) -> tuple[str, str]:
    """Return (bucket, key) of an s3:// URL that names a backup in the configured bucket."""
    bucket, _, key = url.removeprefix(S3_SCHEME).partition("/")
    if not bucket or not key:
        raise ConfigurationError(f"{url} is not an s3://BUCKET/KEY URL")
    if settings.s3.bucket and bucket != settings.s3.bucket:
        raise ConfigurationError(f"{url} is not in the configured bucket {settings.s3.bucket}: "
                                 "restore only from S3_BUCKET (or change S3_BUCKET)")
    if any(part in ("", ".", "..") for part in key.split("/")):
        raise ConfigurationError(f"{url} has an empty, '.' or '..' path segment: give the key "
                                 "exactly as `backup-agent list s3` prints it")
    if created_at(key.rsplit("/", 1)[-1]) is None:
        raise ConfigurationError(f"{url} does not name a backup "
                                 "(…/db_backup_YYYYMMDD_HHMMSS.sql.gz): see `backup-agent list s3`")
    return bucket, key


SIDECAR_LIMIT_BYTES = 1024 * 1024


def _s3_text(client: Any, bucket: str, key: str, present: dict[str, int]) -> str | None:
    """Return a small sidecar object's text, or None when the listing did not show it."""
    if key not in present:
        return None
    with client.get_object(Bucket=bucket, Key=key)["Body"] as body:
        return str(body.read(SIDECAR_LIMIT_BYTES).decode("utf-8", "replace"))


def _s3_source(settings: Settings, bucket: str, key: str) -> BackupSource:
    client = s3_store.make_client(settings.s3, s3_store.make_session(settings.s3))
    name = key.rsplit("/", 1)[-1]
    try:
        # One listing says what exists: with a writer that may only list its prefix, S3
        # answers a GET of a missing key with 403, not 404, so we never probe blindly.
        present = {item.key: item.size
                   for item in s3_store.list_objects(client, bucket=bucket, prefix=key)}
        if key not in present:
            raise SourceNotFoundError(f"no object at s3://{bucket}/{key}: "
                                      "`backup-agent list s3` shows what there is")
        checksum_text = _s3_text(client, bucket, checksum_name(key), present)
        manifest_text = _s3_text(client, bucket, manifest_name(key), present)
    except BackupAgentError:
        raise
    except Exception as error:  # noqa: BLE001 - translate_error re-raises what it does not know
        raise s3_store.translate_error(error, bucket=bucket, action="read the backup",
                                       endpoint=client.meta.endpoint_url) from None
    manifest = None
    if manifest_text:
        try:
            loaded = json.loads(manifest_text)
            manifest = loaded if isinstance(loaded, dict) else None
        except ValueError:
            manifest = None
    created = created_at(name)
    assert created is not None
    return BackupSource(
        name=name, location=f"s3://{bucket}/{key}", size=present[key],
        created=created,
        expected_sha256=parse_checksum_file(checksum_text, name) if checksum_text else None,
        manifest=manifest,
        open=lambda: s3_store.open_object(client, bucket=bucket, key=key, size=present[key]))


def latest_s3(settings: Settings) -> BackupSource:
    from backup_agent.actions.list import list_s3  # late: list imports this module's peers

    complete = [backup for backup in list_s3(settings) if backup.complete]
    if not complete:
        raise SourceNotFoundError(f"no complete backup under s3://{settings.s3.bucket}/"
                                  f"{settings.s3.prefix}: `backup-agent list s3` shows what "
                                  "there is")
    newest = max(complete, key=lambda backup: backup.created)
    bucket, key = parse_s3_url(newest.location, settings)
    return _s3_source(settings, bucket, key)


def resolve_source(settings: Settings, given: str, *, from_s3: bool) -> BackupSource:
    """Return the backup that `given` (latest, a path, or an s3:// URL) names."""
    if given == LATEST:
        return latest_s3(settings) if from_s3 else latest_local(settings)
    if given.startswith(S3_SCHEME):
        bucket, key = parse_s3_url(given, settings)
        return _s3_source(settings, bucket, key)
    return _local_path(settings, given)
