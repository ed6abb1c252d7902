"""Which local backups retention may delete: never the newest good ones.

Retention keeps the KEEP_LOCAL newest backups that are *good*: whole (size as the manifest
says), with a `.sha256` that agrees with the manifest, and (by default) whose bytes hash to
it. Corrupt or incomplete backups never count towards KEEP_LOCAL; those newer than the
oldest kept good backup stay for inspection. Only what is older than that goes, and only
backups with our manifest: the old shell script's files and anything else are never touched.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

from backup_agent.local_store import LocalBackup
from backup_agent.naming import checksum_name
from backup_agent.settings import RetentionCheck
from backup_agent.sources import parse_checksum_file

log = logging.getLogger(__name__)
HASH_CHUNK_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class RetentionPlan:
    keep: list[LocalBackup]  # the good ones counted towards KEEP_LOCAL
    bad: list[LocalBackup]  # ours but corrupt/incomplete; kept, reported
    delete: list[LocalBackup]


def problem_with(backup: LocalBackup, check: RetentionCheck) -> str | None:
    """Return what is wrong with one of our backups, or None if it is good."""
    manifest = backup.manifest or {}
    if backup.size != manifest.get("size_bytes"):
        return f"size {backup.size} differs from the manifest's {manifest.get('size_bytes')}"
    sidecar = backup.path.with_name(checksum_name(backup.name))
    try:
        expected = parse_checksum_file(sidecar.read_text(errors="replace"), backup.name)
    except OSError:
        return "its .sha256 is missing or unreadable"
    if expected is None or expected != manifest.get("sha256"):
        return "its .sha256 does not match the manifest"
    if check is RetentionCheck.CHECKSUM and sha256_of(backup) != expected:
        return "its content does not match its SHA-256"
    return None


def sha256_of(backup: LocalBackup) -> str:
    digest = hashlib.sha256()
    with backup.path.open("rb") as data:
        while chunk := data.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def plan_retention(backups: list[LocalBackup], keep: int, *,
                   is_known_good: Callable[[LocalBackup], bool] = lambda backup: False,
                   check: RetentionCheck = RetentionCheck.CHECKSUM) -> RetentionPlan:
    """Walk our backups newest first until `keep` good ones are found; the rest may go."""
    own = sorted((backup for backup in backups if backup.made_by_agent),
                 key=lambda backup: backup.created, reverse=True)
    good: list[LocalBackup] = []
    bad: list[LocalBackup] = []
    for position, backup in enumerate(own):
        if len(good) == keep:
            return RetentionPlan(keep=good, bad=bad, delete=own[position:])
        problem = None if is_known_good(backup) else problem_with(backup, check)
        if problem:
            log.warning("backup %s is damaged (%s): kept for inspection, not counted towards "
                        "KEEP_LOCAL", backup.path, problem)
            bad.append(backup)
        else:
            good.append(backup)
    return RetentionPlan(keep=good, bad=bad, delete=[])
