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
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from backup_agent.catalog import retention
from backup_agent.model.backup import S3Location
from backup_agent.model.errors import S3Error
from backup_agent.model.manifest import DumpFacts, build_manifest, render
from backup_agent.model.naming import (
    AGENT_NAME,
    backup_name,
    checksum_line,
    checksum_name,
    globals_name,
    is_encrypted,
    manifest_name,
    s3_key,
    signature_name,
)
from backup_agent.model.progress import NO_PROGRESS, Progress
from backup_agent.model.settings import NO_BUCKET, Settings
from backup_agent.postgres.dump import dump_database
from backup_agent.storage import local
from backup_agent.storage.lock import directory_lock
from backup_agent.storage.s3 import SERVER_SIDE_ENCRYPTION, S3Store
from backup_agent.storage.s3_upload import StreamingUpload
from backup_agent.streams.age import encrypting
from backup_agent.streams.gzip import compressing
from backup_agent.streams.hashing import HashingWriter

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

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


def _globals_file(settings: Settings, directory: Path, name: str,
                  document: bytes) -> dict[str, Any]:
    """Write the globals file (encrypted like the dump); return its manifest entry."""
    import hashlib
    import json

    from backup_agent.streams.globals_file import encode

    stored = encode(document, settings.encrypt_to)
    local.write_small_file(directory / globals_name(name), stored)
    content = json.loads(document)
    return {"sha256": hashlib.sha256(stored).hexdigest(), "size_bytes": len(stored),
            "roles": len(content["roles"]),
            "passwords_included": content["passwords_included"]}


def _write_sidecars(settings: Settings, directory: Path, name: str, sha256: str,
                    manifest: str, signing_key: Ed25519PrivateKey | None) -> None:
    """The checksum, the signature over the manifest's exact bytes, then the manifest."""
    local.write_small_file(directory / checksum_name(name), checksum_line(sha256, name))
    if signing_key is not None:
        from backup_agent.keys.signing import sign

        local.write_small_file(directory / signature_name(name),
                               sign(signing_key, manifest.encode()).decode())
    local.write_small_file(directory / manifest_name(name), manifest)


def run_backup(settings: Settings, *, clock: Callable[[], datetime] = utc_now,
               hostname: str | None = None, progress: Progress = NO_PROGRESS) -> BackupResult:
    """Make one backup; return what happened. Raise a BackupAgentError on failure."""
    directory = settings.backup_directory
    hostname = hostname or socket.gethostname()
    local.check_writable_directory(directory)
    signing_key = None
    if settings.signing_key_file is not None:  # a bad key fails now, before any dump
        from backup_agent.keys.signing import load_signing_key

        signing_key = load_signing_key(settings.signing_key_file)
    with directory_lock(directory, purpose="backup"):
        for leftover in local.remove_stale_temporary_files(directory):
            log.info("removed %s, left by an interrupted run", leftover)
        warnings: list[str] = []
        if signing_key is None:
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
                # The chain, from the file up: file <- hash <- age <- gzip <- pg_dump.
                with ExitStack() as chain:
                    stored = HashingWriter(handle, upload.advance if upload else None)
                    encrypted = chain.enter_context(encrypting(stored, settings.encrypt_to))
                    compressed = chain.enter_context(compressing(encrypted))
                    dump = dump_database(settings.postgres, compressed, on_read=dumping.update)
                stored.flush()
                dumping.set_total(dump.uncompressed_bytes)
                if uploading is not None:
                    uploading.set_total(stored.size)
                os.fsync(handle.fileno())
                facts = DumpFacts(server_version=dump.server.version,
                                  pg_dump_version=dump.pg_dump_version, size_bytes=stored.size,
                                  uncompressed_bytes=dump.uncompressed_bytes,
                                  sha256=stored.hexdigest(), row_counts=dump.row_counts,
                                  globals_file=_globals_file(settings, directory, name,
                                                             dump.globals_document))
                manifest = build_manifest(name=name, database=settings.postgres.database,
                                          facts=facts, started=started, finished=clock(),
                                          hostname=hostname, encrypt_to=settings.encrypt_to)
                _write_sidecars(settings, directory, name, facts.sha256, render(manifest),
                                signing_key)
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
