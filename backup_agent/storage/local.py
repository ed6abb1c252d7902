"""The backup directory: what is in it, how a backup is published, and what retention removes.

A backup is visible under its final name only once it is complete: data written to a hidden
temporary file, fsynced and checked; then its `.sha256` and manifest are put in place; then
the data file is renamed (without replacing anything) and the directory fsynced. So a
`db_backup_*.sql.gz` is always a whole backup, and a crash leaves at most a hidden temp file.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from backup_agent.model.backup import BackupRef, Where
from backup_agent.model.errors import LocalStorageError
from backup_agent.model.naming import (
    SIDECAR_LIMIT_BYTES,
    checksum_name,
    created_at,
    globals_name,
    manifest_name,
    signature_name,
)

TEMPORARY_PREFIX = ".tmp-"
HASH_CHUNK_BYTES = 4 * 1024 * 1024


def storage_error(error: OSError, directory: Path) -> LocalStorageError:
    """Return a one-line error with a fix for a failed write in `directory`."""
    if error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return LocalStorageError(f"no space left writing to {directory} ({error.strerror}): "
                                 "free disk space or lower KEEP_LOCAL, then run again")
    if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return LocalStorageError(f"cannot write to {directory} ({error.strerror}): "
                                 "fix its owner/permissions or set BACKUP_DIR")
    return LocalStorageError(f"cannot write to {directory}: {error.strerror or error}")


def check_writable_directory(directory: Path) -> None:
    """Raise LocalStorageError unless `directory` is ours and we may create files in it."""
    check_own_directory(directory)
    if not os.access(directory, os.W_OK | os.X_OK):
        raise LocalStorageError(f"backup directory {directory} is not writable by this user: "
                                "fix its owner/permissions or set BACKUP_DIR")


def check_own_directory(directory: Path) -> None:
    """Raise LocalStorageError unless `directory` exists, belongs to this user, and nobody
    else may write in it: anyone who can plant a file there could plant a backup."""
    try:
        status = directory.stat()
    except FileNotFoundError:
        raise LocalStorageError(f"backup directory {directory} does not exist: create it "
                                f"(mkdir -p {directory} && chmod 700 {directory}) or set "
                                "BACKUP_DIR") from None
    except OSError as error:
        raise LocalStorageError(f"cannot read backup directory {directory} "
                                f"({error.strerror})") from None
    if not stat.S_ISDIR(status.st_mode):
        raise LocalStorageError(f"BACKUP_DIR {directory} is not a directory: fix BACKUP_DIR")
    if status.st_uid != os.geteuid():
        raise LocalStorageError(f"backup directory {directory} belongs to another user: "
                                f"chown it to this one (chown $(id -un) {directory}) or set "
                                "BACKUP_DIR")
    if status.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise LocalStorageError(f"backup directory {directory} is writable by other users: "
                                f"chmod 700 {directory}")


def read_sidecar(path: Path) -> bytes | None:
    """Return a sidecar's bytes (at most SIDECAR_LIMIT_BYTES), or None if there is no
    regular file to read."""
    if not is_regular_file(path):
        return None
    try:
        with path.open("rb") as sidecar:
            return sidecar.read(SIDECAR_LIMIT_BYTES)
    except OSError:
        return None


def parse_manifest(content: bytes) -> dict[str, Any] | None:
    """Return a manifest's JSON object (local or from S3), or None if it is not one."""
    try:
        loaded = json.loads(content.decode("utf-8", "replace"))
    except ValueError:
        return None
    return loaded if isinstance(loaded, dict) else None


def read_manifest(path: Path) -> dict[str, Any] | None:
    content = read_sidecar(path)
    return None if content is None else parse_manifest(content)


def is_regular_file(path: Path) -> bool:
    """True for a real file: symlinks are never taken for backups, nor followed."""
    return path.is_file() and not path.is_symlink()


def describe(path: Path) -> BackupRef | None:
    """Return the backup at `path` as listed (sidecars noted, manifest read), or None."""
    created = created_at(path.name)
    if created is None or not is_regular_file(path):
        return None
    manifest = read_manifest(path.with_name(manifest_name(path.name)))
    status = path.lstat()
    return BackupRef(
        name=path.name, where=Where.LOCAL, location=str(path), size=status.st_size,
        created=created, has_checksum=is_regular_file(path.with_name(checksum_name(path.name))),
        has_manifest=manifest is not None,
        has_signature=is_regular_file(path.with_name(signature_name(path.name))),
        has_globals=is_regular_file(path.with_name(globals_name(path.name))),
        modified=datetime.fromtimestamp(status.st_mtime, UTC), manifest=manifest, path=path,
        opener=lambda: path.open("rb"))


def scan(directory: Path) -> list[BackupRef]:
    """Return the backups in `directory`, newest first."""
    if not directory.is_dir():
        return []
    found = [backup for entry in directory.iterdir() if (backup := describe(entry))]
    return sorted(found, key=lambda backup: backup.created, reverse=True)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as data:
        while chunk := data.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def remove_stale_temporary_files(directory: Path) -> list[Path]:
    """Remove temporary files a killed run left; call only while holding the directory lock."""
    removed = []
    for entry in directory.glob(f"{TEMPORARY_PREFIX}*"):
        if is_regular_file(entry):
            entry.unlink()
            removed.append(entry)
    return removed


def delete_backup(data: Path) -> list[Path]:
    """Delete a backup's data file and its sidecars; return what was removed."""
    removed = []
    for path in (data.with_name(checksum_name(data.name)),
                 data.with_name(signature_name(data.name)),
                 data.with_name(globals_name(data.name)),
                 data.with_name(manifest_name(data.name)), data):
        if is_regular_file(path):
            path.unlink()
            removed.append(path)
    return removed


def fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


@contextmanager
def temporary_file(directory: Path, name: str) -> Iterator[tuple[Path, BinaryIO]]:
    """Yield a new hidden file in `directory`; it is removed unless renamed away by then."""
    path = directory / f"{TEMPORARY_PREFIX}{name}.{os.getpid()}"
    try:
        # 0600: a dump holds the whole database, so it is readable by its owner only.
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except OSError as error:
        raise storage_error(error, directory) from None
    handle = os.fdopen(descriptor, "wb")
    try:
        try:
            yield path, handle
        except BaseException:
            # The file is discarded: a flush failing again (disk still full) must not hide
            # the error that got us here.
            with contextlib.suppress(OSError):
                handle.close()
            raise
        handle.close()
    finally:
        path.unlink(missing_ok=True)


def write_small_file(path: Path, content: str | bytes, *, mode: int = 0o600) -> None:
    """Write `content` to `path` atomically (temp file, fsync, rename)."""
    with temporary_file(path.parent, path.name) as (temporary, handle):
        try:
            handle.write(content.encode() if isinstance(content, str) else content)
            os.fchmod(handle.fileno(), mode)
            handle.flush()
            os.fsync(handle.fileno())
            temporary.replace(path)
        except OSError as error:
            raise storage_error(error, path.parent) from None


def publish(temporary: Path, final: Path) -> None:
    """Give a finished data file its final name, refusing to replace an existing one."""
    try:
        os.link(temporary, final)
    except FileExistsError:
        raise LocalStorageError(f"{final} already exists: another backup was made in the same "
                                "second; run again") from None
    except OSError as error:
        raise storage_error(error, final.parent) from None
    temporary.unlink()
    fsync_directory(final.parent)
