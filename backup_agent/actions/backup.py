"""`backup-agent backup`: dump, compress, checksum, keep locally, upload, prune.

Order matters for "nothing is lost": the data is complete and published locally before
anything is uploaded; retention runs only after everything else succeeded.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from backup_agent.catalog import retention
from backup_agent.catalog.writing import Sign, dump_into, write_sidecars
from backup_agent.model.backup import S3Location
from backup_agent.model.errors import S3Error
from backup_agent.model.naming import (
    AGENT_NAME,
    backup_name,
    checksum_name,
    globals_name,
    is_encrypted,
    manifest_name,
    s3_key,
    signature_name,
)
from backup_agent.model.progress import NO_PROGRESS, Progress
from backup_agent.model.settings import NO_BUCKET, Settings
from backup_agent.storage import local
from backup_agent.storage.lock import directory_lock
from backup_agent.storage.s3 import SERVER_SIDE_ENCRYPTION, S3Store
from backup_agent.storage.s3_upload import StreamingUpload

log = logging.getLogger(__name__)

GZIP_CONTENT_TYPE = "application/gzip"
AGE_CONTENT_TYPE = "application/octet-stream"  # age has no registered media type


UNSIGNED = ("SIGNING_KEY_FILE is not set: this backup is not signed, and restore and verify "
            "refuse it without --allow-unsigned; create a key with `backup-agent keygen "
            "--signing FILE` and set SIGNING_KEY_FILE (the server install makes one)")


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class BackupResult:
    name: str
    path: Path
    database: str
    size_bytes: int
    uncompressed_bytes: int
    sha256: str
    started_at: str
    duration_seconds: float
    s3: S3Location | None = None
    warnings: list[str] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)

    @property
    def status(self) -> str:
        """"warning" when the backup was kept locally only (S3 not configured)."""
        return "warning" if self.warnings else "success"

    def failure(self) -> None:
        return None  # a backup that fails raises instead of returning

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BackupResult:
        """Rebuild a result from its `--json` form (as a workflow receives it)."""
        fields = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        fields["path"] = Path(str(data["path"]))
        s3 = data.get("s3")
        fields["s3"] = S3Location(bucket=s3["bucket"], key=s3["key"]) if s3 else None
        return cls(**fields)

    def to_dict(self) -> dict[str, Any]:
        result = asdict(self)
        result.pop("warnings")  # the envelope carries them
        result["path"] = str(self.path)
        result["s3"] = {"bucket": self.s3.bucket, "key": self.s3.key, "uri": self.s3.uri} \
            if self.s3 else None
        return result


def _free_name(directory: Path, clock: Callable[[], datetime], *,
               encrypted: bool) -> tuple[str, datetime]:
    """Return a name not yet taken; two runs within one second get different stamps
    (whether either is encrypted or not, so a stamp always names one backup)."""
    for _ in range(3):
        moment = clock()
        name = backup_name(moment, encrypted=encrypted)
        if not any((directory / backup_name(moment, encrypted=variant)).exists()
                   for variant in (False, True)):
            return name, moment
        time.sleep(1)
    return name, moment  # publish() refuses to overwrite, with a clear message


def _s3_store(settings: Settings, warnings: list[str]) -> S3Store | None:
    """Return the S3 store, or None (with a warning) when S3 is not configured."""
    if not settings.s3.configured:
        warnings.append(f"{NO_BUCKET}: the backup is kept locally only "
                        "(set S3_BUCKET and AWS credentials for off-site copies)")
        return None
    store = S3Store(settings.s3)
    if not store.has_credentials():
        warnings.append(f"S3_BUCKET={settings.s3.bucket} but no AWS credentials were found: "
                        "the backup is kept locally only (set AWS_ACCESS_KEY_ID and "
                        "AWS_SECRET_ACCESS_KEY)")
        return None
    return store


def _upload_sidecars(store: S3Store, settings: Settings, directory: Path, name: str,
                     metadata: dict[str, str]) -> None:
    """The checksum and signature, then (last, marking the backup complete in S3) the
    manifest."""
    sidecars = [(checksum_name(name), "text/plain"),
                (globals_name(name), AGE_CONTENT_TYPE if is_encrypted(name)
                 else GZIP_CONTENT_TYPE),
                (manifest_name(name), "application/json")]
    if settings.signing_key_file is not None:
        sidecars.insert(2, (signature_name(name), "application/json"))
    for file_name, content_type in sidecars:
        store.put_file(s3_key(settings.s3.prefix, file_name), directory / file_name,
                       content_type=content_type, metadata=metadata)


def run_backup(settings: Settings, *, clock: Callable[[], datetime] = utc_now,
               hostname: str | None = None, progress: Progress = NO_PROGRESS) -> BackupResult:
    """Make one backup; return what happened. Raise a BackupAgentError on failure."""
    directory = settings.backup_directory
    hostname = hostname or socket.gethostname()
    local.check_writable_directory(directory)
    sign_manifest: Sign | None = None
    if settings.signing_key_file is not None:  # a bad key fails now, before any dump
        from backup_agent.keys.signing import load_signing_key, sign

        sign_manifest = partial(sign, load_signing_key(settings.signing_key_file))
    with directory_lock(directory, purpose="backup"):
        for leftover in local.remove_stale_temporary_files(directory):
            log.info("removed %s, left by an interrupted run", leftover)
        warnings: list[str] = []
        if sign_manifest is None:
            warnings.append(UNSIGNED)
        store = _s3_store(settings, warnings)
        name, started = _free_name(directory, clock, encrypted=bool(settings.encrypt_to))
        started_monotonic = time.monotonic()
        metadata = {"created": started.isoformat(), "hostname": hostname, "tool": AGENT_NAME}
        upload: StreamingUpload | None = None
        dumping = progress.task(f"dump {settings.postgres.database}")
        uploading = progress.task("upload to S3") if store is not None else None
        with local.temporary_file(directory, name) as (temporary, handle):
            try:
                if store is not None:
                    upload = store.start_upload(
                        s3_key(settings.s3.prefix, name), temporary, metadata=metadata,
                        content_type=AGE_CONTENT_TYPE if is_encrypted(name)
                        else GZIP_CONTENT_TYPE,
                        on_uploaded=uploading.update if uploading else None)
                dumped = dump_into(settings, handle,
                                   on_stored=upload.advance if upload else None,
                                   on_read=dumping.update)
                dumping.set_total(dumped.dump.uncompressed_bytes)
                if uploading is not None:
                    uploading.set_total(dumped.stored.size)
                os.fsync(handle.fileno())
                facts = write_sidecars(settings, directory, name, dumped, started=started,
                                       finished=clock(), hostname=hostname,
                                       sign=sign_manifest)
                local.publish(temporary, directory / name)
            except BaseException as error:
                if upload is not None:
                    upload.abort()
                if isinstance(error, OSError):
                    raise local.storage_error(error, directory) from None
                raise
        log.info("wrote %s (%d bytes, sha256 %s)", directory / name, facts.size_bytes,
                 facts.sha256)
        result = BackupResult(
            name=name, path=directory / name, database=settings.postgres.database,
            size_bytes=facts.size_bytes, uncompressed_bytes=facts.uncompressed_bytes,
            sha256=facts.sha256, started_at=started.isoformat(), duration_seconds=0.0,
            warnings=warnings)
        if store is not None and upload is not None:
            try:
                result.s3 = store.finish_upload(upload, facts.size_bytes)
                _upload_sidecars(store, settings, directory, name, metadata)
            except S3Error as error:  # the backup itself is safe on disk: say where
                raise S3Error(f"{error} (the local backup {directory / name} is complete and "
                              "kept)", details={"local_backup": str(directory / name),
                                                "name": name}) from None
            log.info("uploaded to %s while dumping (SSE %s, size and content confirmed)",
                     result.s3.uri, SERVER_SIDE_ENCRYPTION)
        plan = retention.prune(settings, dry_run=False, just_written=name)
        result.pruned = [backup.name for backup in plan.delete]
        result.warnings += plan.warnings
        result.duration_seconds = round(time.monotonic() - started_monotonic, 3)
        return result


def write_metrics_file(path: Path, text: str) -> None:
    """Write METRICS_FILE (made by cli/metrics.py around each backup run) atomically.

    World-readable: node_exporter usually runs as its own user. No secrets in it."""
    local.write_small_file(path, text, mode=0o644)
