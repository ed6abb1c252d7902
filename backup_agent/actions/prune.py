"""`backup-agent prune`: keep the KEEP_LOCAL newest of the agent's own local backups.

Only backups with our manifest are counted or deleted; the guide's old script's backups,
stray files, directories and symlinks are never touched. With --databases, also drop what
restores and restore tests left behind.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from backup_agent import retention
from backup_agent.model.backup import BackupRef
from backup_agent.model.settings import Settings
from backup_agent.postgres.admin import DatabaseAdmin
from backup_agent.storage import local
from backup_agent.storage.lock import directory_lock

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PruneResult:
    dry_run: bool
    keep_local: int
    deleted: list[BackupRef]
    databases: list[str]
    warnings: list[str] = field(default_factory=list)

    def failure(self) -> None:
        return None

    def to_dict(self) -> dict[str, Any]:
        return {"dry_run": self.dry_run,
                "would_delete" if self.dry_run else "deleted":
                    [backup.name for backup in self.deleted],
                "databases": self.databases}


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


def run_prune(settings: Settings, *, dry_run: bool, databases: bool = False) -> PruneResult:
    """Prune under the directory lock; a dry run only reads, so it takes no lock."""
    if dry_run:
        plan = retention.prune(settings, dry_run=True)
    else:
        local.check_writable_directory(settings.backup_directory)
        with directory_lock(settings.backup_directory, purpose="prune"):
            plan = retention.prune(settings, dry_run=False)
    dropped = prune_databases(settings, dry_run=dry_run) if databases else []
    return PruneResult(dry_run=dry_run, keep_local=settings.keep_local, deleted=plan.delete,
                       databases=dropped, warnings=plan.warnings)
