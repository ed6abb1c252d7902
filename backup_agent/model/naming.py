"""Backup names, sidecar names, checksum lines and S3 keys: the layout the guide's scripts used."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

# Only exact matches are backups. `db_backup_latest.sql.gz` and friends are not.
# `.sql.gz.age` is an age-encrypted backup (ENCRYPT_TO).
BACKUP_NAME = re.compile(r"db_backup_(?P<stamp>[0-9]{8}_[0-9]{6})\.sql\.gz(?P<age>\.age)?")
STAMP_FORMAT = "%Y%m%d_%H%M%S"
CHECKSUM_SUFFIX = ".sha256"
MANIFEST_SUFFIX = ".manifest.json"
SIGNATURE_SUFFIX = ".sig"
# The roles and database properties the backup needs from its cluster: gzip'd JSON, age-
# encrypted like the dump (model/cluster_globals.py).
GLOBALS_SUFFIX = ".globals"
# A name dated further ahead than this cannot be a backup made by a working clock.
FUTURE_TOLERANCE = timedelta(minutes=10)
ENCRYPTED_SUFFIX = ".age"
AGENT_NAME = "backup-agent"  # the manifest's "tool": what makes a backup ours
SIDECAR_LIMIT_BYTES = 1024 * 1024  # a .sha256 or manifest is a few KiB at most


def backup_name(moment: datetime, *, encrypted: bool = False) -> str:
    """Return `db_backup_YYYYMMDD_HHMMSS.sql.gz[.age]` for `moment`, in UTC."""
    suffix = ENCRYPTED_SUFFIX if encrypted else ""
    return f"db_backup_{moment.astimezone(UTC).strftime(STAMP_FORMAT)}.sql.gz{suffix}"


def is_encrypted(name: str) -> bool:
    """True for the name of an age-encrypted backup."""
    match = BACKUP_NAME.fullmatch(name)
    return bool(match and match["age"])


def created_at(name: str) -> datetime | None:
    """Return the UTC time encoded in a backup name, or None if it is not a backup name."""
    match = BACKUP_NAME.fullmatch(name)
    if not match:
        return None
    try:
        return datetime.strptime(match["stamp"], STAMP_FORMAT).replace(tzinfo=UTC)
    except ValueError:  # 20261399_999999 matches the pattern but is no date
        return None


def checksum_name(name: str) -> str:
    return name + CHECKSUM_SUFFIX


def manifest_name(name: str) -> str:
    return name + MANIFEST_SUFFIX


def signature_name(name: str) -> str:
    return name + SIGNATURE_SUFFIX


def globals_name(name: str) -> str:
    return name + GLOBALS_SUFFIX


def in_the_future(moment: datetime, now: datetime) -> bool:
    """True for a time no working clock could have written yet."""
    return moment > now + FUTURE_TOLERANCE


def s3_key(prefix: str, name: str) -> str:
    """Return `<prefix>YYYY/MM/<name>` for a backup (or sidecar) name."""
    stem = name.removesuffix(CHECKSUM_SUFFIX).removesuffix(MANIFEST_SUFFIX) \
        .removesuffix(SIGNATURE_SUFFIX).removesuffix(GLOBALS_SUFFIX)
    moment = created_at(stem)
    if moment is None:
        raise ValueError(f"not a backup name: {name}")
    return f"{prefix}{moment:%Y}/{moment:%m}/{name}"


def checksum_line(sha256: str, name: str) -> str:
    """Return a line in `sha256sum` format, so `sha256sum -c` checks the backup."""
    return f"{sha256}  {name}\n"


def parse_checksum_file(text: str, name: str) -> str | None:
    """Return the digest from `sha256sum` output for `name`, or None if it has none."""
    for line in text.splitlines():
        parts = line.strip().split()
        if len(parts) == 2 and parts[1].lstrip("*") == name and len(parts[0]) == 64:
            return parts[0].lower()
    return None
