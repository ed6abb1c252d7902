"""Which local backups retention may delete: never the newest good ones.

Retention keeps the KEEP_LOCAL newest backups that are *good*: whole (size as the manifest
says), with a `.sha256` that agrees with the manifest, and (by default) whose bytes hash to
it. Corrupt or incomplete backups never count towards KEEP_LOCAL and are never deleted:
they stay for inspection, with a warning on every run until someone removes them. Only good
backups older than the KEEP_LOCAL kept ones go, and only backups with our manifest: the old
shell script's files and anything else are never touched. The plan is made here; the
deleting itself is storage's (`storage.local.delete_backup`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from backup_agent.model.backup import BackupRef, dated_ahead
from backup_agent.model.naming import checksum_name, in_the_future, parse_checksum_file
from backup_agent.model.settings import RetentionCheck, Settings
from backup_agent.storage import local

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetentionPlan:
    keep: list[BackupRef]  # the good ones counted towards KEEP_LOCAL
    bad: list[BackupRef]  # ours but corrupt/incomplete: never deleted, reported
    delete: list[BackupRef]
    foreign: list[BackupRef]  # not ours: never touched
    warnings: list[str]  # damaged backups kept, names dated in the future passed over


def problem_with(backup: BackupRef, check: RetentionCheck) -> str | None:
    """Return what is wrong with one of our local backups, or None if it is good."""
    assert backup.path is not None
    manifest = backup.manifest or {}
    if backup.size != manifest.get("size_bytes"):
        return f"size {backup.size} differs from the manifest's {manifest.get('size_bytes')}"
    sidecar = local.read_sidecar(backup.path.with_name(checksum_name(backup.name)))
    if sidecar is None:
        return "its .sha256 is missing or unreadable"
    expected = parse_checksum_file(sidecar.decode("utf-8", "replace"), backup.name)
    if expected is None or expected != manifest.get("sha256"):
        return "its .sha256 does not match the manifest"
    if check is RetentionCheck.CHECKSUM and local.sha256_of(backup.path) != expected:
        return "its content does not match its SHA-256"
    return None


def plan_retention(backups: list[BackupRef], keep: int, *,
                   is_known_good: Callable[[BackupRef], bool] = lambda backup: False,
                   check: RetentionCheck = RetentionCheck.CHECKSUM,
                   now: datetime | None = None) -> RetentionPlan:
    """Walk our backups newest first: the first `keep` good ones stay, older good ones may
    go, damaged ones stay for inspection whatever their age.

    A name dated in the future is neither counted nor deleted: it cannot be proven older
    than anything, and counting it would push real backups out.
    """
    now = now or datetime.now(UTC)
    warnings = dated_ahead(backups, now)
    own = sorted((backup for backup in backups
                  if backup.made_by_agent and not in_the_future(backup.created, now)),
                 key=lambda backup: backup.created, reverse=True)
    foreign = [backup for backup in backups if not backup.made_by_agent]
    good: list[BackupRef] = []
    bad: list[BackupRef] = []
    delete: list[BackupRef] = []
    for backup in own:
        problem = None if is_known_good(backup) else problem_with(backup, check)
        if problem:
            warnings.append(f"backup {backup.path} is damaged ({problem}): left for "
                            "inspection (retention never deletes a damaged backup, nor counts "
                            "it towards KEEP_LOCAL); delete it and its sidecars by hand once "
                            "inspected")
            bad.append(backup)
        elif len(good) < keep:
            good.append(backup)
        else:
            delete.append(backup)
    return RetentionPlan(keep=good, bad=bad, delete=delete, foreign=foreign, warnings=warnings)


def prune(settings: Settings, *, dry_run: bool,
          just_written: str | None = None) -> RetentionPlan:
    """Delete (or with dry_run, only name) what retention allows; caller holds the lock.

    `just_written` names a backup proven good while it was written: it is not re-read.
    """
    backups = local.scan(settings.backup_directory)
    plan = plan_retention(backups, settings.keep_local,
                          is_known_good=lambda backup: backup.name == just_written,
                          check=settings.retention_check)
    written = next((backup for backup in backups if backup.name == just_written), None)
    if written is not None:  # never the run's own backup, nor anything not older than it
        plan = replace(plan, delete=[backup for backup in plan.delete
                                     if backup.created < written.created])
    for backup in plan.delete:
        assert backup.path is not None
        if dry_run:
            log.info("would delete %s and its sidecars", backup.path)
        else:
            local.delete_backup(backup.path)
            log.info("deleted %s and its sidecars (KEEP_LOCAL=%d)", backup.path,
                     settings.keep_local)
    if plan.foreign and just_written is None:  # `prune` says it; a nightly backup need not
        log.info("left %d backup(s) without a backup-agent manifest alone (made by another "
                 "tool; delete them by hand when no longer needed)", len(plan.foreign))
    return plan
