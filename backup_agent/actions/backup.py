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
from pathlib import Path
from typing import Any

from backup_agent import local_store, s3_store
from backup_agent.actions.prune import prune_local
from backup_agent.dump import dump_database
from backup_agent.errors import BackupAgentError, S3Error
from backup_agent.lock import directory_lock
from backup_agent.manifest import build_manifest, render
from backup_agent.naming import backup_name, checksum_name, is_encrypted, manifest_name, s3_key
from backup_agent.progress import NO_PROGRESS, Progress
from backup_agent.settings import Settings
from backup_agent.streaming_upload import StreamingUpload

log = logging.getLogger(__name__)

GZIP_CONTENT_TYPE = "application/gzip"
AGE_CONTENT_TYPE = "application/octet-stream"  # age has no registered media type


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class S3Location:
    bucket: str
    key: str

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


@dataclass
class BackupResult:
    status: str  # "success", or "warning" when S3 was skipped
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


def _s3_client(settings: Settings, warnings: list[str]) -> Any:
    """Return an S3 client, or None (with a warning) when S3 is not configured."""
    if not settings.s3.bucket:
        warnings.append("S3_BUCKET is not set: the backup is kept locally only "
                        "(set S3_BUCKET and AWS credentials for off-site copies)")
        return None
    session = s3_store.make_session(settings.s3)
    if not s3_store.has_credentials(session):
        warnings.append(f"S3_BUCKET={settings.s3.bucket} but no AWS credentials were found: "
                        "the backup is kept locally only (set AWS_ACCESS_KEY_ID and "
                        "AWS_SECRET_ACCESS_KEY)")
        return None
    return s3_store.make_client(settings.s3, session)


def start_upload(client: Any, settings: Settings, temporary: Path, name: str,
                 created: datetime, hostname: str, *,
                 on_uploaded: Callable[[int], None] | None = None) -> StreamingUpload:
    """Begin streaming the backup being written at `temporary` to its S3 key."""
    bucket = settings.s3.bucket
    assert bucket
    return StreamingUpload(
        client, path=temporary, bucket=bucket, key=s3_key(settings.s3.prefix, name),
        part_size=settings.s3.part_size_mib * s3_store.MEBIBYTE,
        extra_args={"ServerSideEncryption": s3_store.SERVER_SIDE_ENCRYPTION,
                    "ContentType": AGE_CONTENT_TYPE if is_encrypted(name)
                    else GZIP_CONTENT_TYPE,
                    "Metadata": {"created": created.isoformat(), "hostname": hostname,
                                 "tool": local_store.AGENT_NAME}},
        on_uploaded=on_uploaded)


def finish_upload(upload: StreamingUpload, client: Any, settings: Settings, directory: Path,
                  name: str, size: int) -> S3Location:
    """Complete the data object, confirm it, then add the checksum and (last, marking the
    backup complete in S3) the manifest. The local backup is already published."""
    bucket = settings.s3.bucket
    assert bucket
    key = s3_key(settings.s3.prefix, name)
    endpoint = getattr(getattr(client, "meta", None), "endpoint_url", None)
    try:
        uploaded = upload.finish(size)
        stored = s3_store.head(client, bucket=bucket, key=key)
        for file_name, content_type in ((checksum_name(name), "text/plain"),
                                        (manifest_name(name), "application/json")):
            s3_store.upload_file(client, bucket=bucket, key=s3_key(settings.s3.prefix, file_name),
                                 path=directory / file_name, content_type=content_type,
                                 metadata=upload.metadata)
    except BackupAgentError:
        raise
    except Exception as error:  # noqa: BLE001 - translate_error re-raises what it does not know
        raise s3_store.translate_error(error, bucket=bucket, action="upload the backup",
                                       endpoint=endpoint) from None
    if stored is None or stored.get("ContentLength") != uploaded.size \
            or str(stored.get("ETag", "")).strip('"') != uploaded.etag:
        raise S3Error(f"s3://{bucket}/{key} does not match the local backup after upload "
                      "(size or content differ): the local copy is kept; run again")
    if stored.get("ServerSideEncryption") not in (s3_store.SERVER_SIDE_ENCRYPTION, "aws:kms"):
        raise S3Error(f"s3://{bucket}/{key} is not encrypted at rest: enable default "
                      "encryption on the bucket (pulumi up) and run again")
    return S3Location(bucket=bucket, key=key)


def run_backup(settings: Settings, *, clock: Callable[[], datetime] = utc_now,
               hostname: str | None = None, progress: Progress = NO_PROGRESS) -> BackupResult:
    """Make one backup; return what happened. Raise a BackupAgentError on failure."""
    directory = settings.backup_directory
    hostname = hostname or socket.gethostname()
    local_store.check_writable_directory(directory)
    with directory_lock(directory, purpose="backup"):
        for leftover in local_store.remove_stale_temporary_files(directory):
            log.info("removed %s, left by an interrupted run", leftover)
        warnings: list[str] = []
        client = _s3_client(settings, warnings)
        name, started = _free_name(directory, clock, encrypted=bool(settings.encrypt_to))
        started_monotonic = time.monotonic()
        upload: StreamingUpload | None = None
        dumping = progress.task(f"dump {settings.postgres.database}")
        uploading = progress.task("upload to S3") if client is not None else None
        with local_store.temporary_file(directory, name) as (temporary, handle):
            try:
                if client is not None:
                    upload = start_upload(client, settings, temporary, name, started, hostname,
                                          on_uploaded=uploading.update if uploading else None)
                dump = dump_database(settings.postgres, handle,
                                     on_written=upload.advance if upload else None,
                                     on_read=dumping.update, encrypt_to=settings.encrypt_to)
                dumping.set_total(dump.stream.uncompressed_bytes)
                if uploading is not None:
                    uploading.set_total(dump.stream.compressed_bytes)
                handle.flush()
                os.fsync(handle.fileno())
                finished = clock()
                manifest = build_manifest(name=name, database=settings.postgres.database,
                                          dump=dump, started=started, finished=finished,
                                          hostname=hostname, encrypt_to=settings.encrypt_to)
                local_store.write_small_file(directory / checksum_name(name),
                                             local_store.checksum_line(dump.stream.sha256, name))
                local_store.write_small_file(directory / manifest_name(name), render(manifest))
                local_store.publish(temporary, directory / name)
            except BaseException as error:
                if upload is not None:
                    upload.abort()
                if isinstance(error, OSError):
                    raise local_store.storage_error(error, directory) from None
                raise
        log.info("wrote %s (%d bytes, sha256 %s)", directory / name,
                 dump.stream.compressed_bytes, dump.stream.sha256)
        result = BackupResult(
            status="success", name=name, path=directory / name,
            database=settings.postgres.database, size_bytes=dump.stream.compressed_bytes,
            uncompressed_bytes=dump.stream.uncompressed_bytes, sha256=dump.stream.sha256,
            started_at=started.isoformat(), duration_seconds=0.0, warnings=warnings)
        if upload is not None:
            result.s3 = finish_upload(upload, client, settings, directory, name,
                                      dump.stream.compressed_bytes)
            log.info("uploaded to %s while dumping (SSE %s, size and content confirmed)",
                     result.s3.uri, s3_store.SERVER_SIDE_ENCRYPTION)
        for warning in warnings:
            log.warning("%s", warning)
        result.pruned = [backup.name for backup in
                         prune_local(settings, dry_run=False, just_written=name)]
        result.duration_seconds = round(time.monotonic() - started_monotonic, 3)
        result.status = "warning" if warnings else "success"
        return result
