"""`backup-agent prune`: keep the KEEP_LOCAL newest of the agent's own local backups.

Only backups with our manifest are counted or deleted; the guide's old script's backups,
stray files, directories and symlinks are never touched.
"""

from __future__ import annotations

import logging

from backup_agent import local_store
from backup_agent.local_store import LocalBackup
from backup_agent.lock import directory_lock
from backup_agent.postgres.admin import DatabaseAdmin
from backup_agent.retention import plan_retention
from backup_agent.settings import Settings

log = logging.getLogger(__name__)


def prune_local(settings: Settings, *, dry_run: bool,
                just_written: str | None = None) -> list[LocalBackup]:
    """Delete (or with dry_run, only name) what retention allows; caller holds the lock.

    `just_written` names a backup proven good while it was written: it is not re-read.
    """
    backups = local_store.scan(settings.backup_directory)
    plan = plan_retention(backups, settings.keep_local,
                          is_known_good=lambda backup: backup.name == just_written,
                          check=settings.retention_check)
    for backup in plan.delete:
        if dry_run:
            log.info("would delete %s and its sidecars", backup.path)
        else:
            local_store.delete_backup(backup)
            log.info("deleted %s and its sidecars (KEEP_LOCAL=%d)", backup.path,
                     settings.keep_local)
    foreign = [backup for backup in backups if not backup.made_by_agent]
    if foreign:
        log.info("left %d backup(s) without a backup-agent manifest alone (made by another "
                 "tool; delete them by hand when no longer needed)", len(foreign))
    return plan.delete


def prune_databases(settings: Settings, *, dry_run: bool) -> list[str]:
    """Drop the databases restores and restore tests left behind; return their names.

    That is `<db>_pre_restore_<stamp>` (the rollback copy a restore keeps) and, after a
    crash, `<db>_restore_<stamp>` / `<db>_verify_<stamp>`. Only on request: the rollback
    copy is the way back from a bad restore.
    """
    with DatabaseAdmin(settings.postgres) as admin:
        names = admin.leftovers(settings.postgres.database)
        for name in names:
            if dry_run:
                log.info("would drop database %s", name)
            else:
                admin.drop(name)
                log.info("dropped database %s", name)
    return names


def run_prune(settings: Settings, *, dry_run: bool) -> list[LocalBackup]:
    """Prune under the directory lock; a dry run only reads, so it takes no lock."""
    if dry_run:
        return prune_local(settings, dry_run=True)
    local_store.check_writable_directory(settings.backup_directory)
    with directory_lock(settings.backup_directory, purpose="prune"):
        return prune_local(settings, dry_run=dry_run)
