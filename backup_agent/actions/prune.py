"""`backup-agent prune`: keep the KEEP_LOCAL newest of the agent's own good local backups.

Only backups with our manifest are counted or deleted; the guide's old script's backups,
stray files, directories and symlinks are never touched, and neither is a damaged backup
(left for inspection). With --databases, also drop what restores and restore tests left
behind: after showing them and asking, and never a rollback copy younger than
ROLLBACK_MIN_AGE unless it is named.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from backup_agent.catalog import retention
from backup_agent.model.backup import BackupRef
from backup_agent.model.database_names import stamped_at
from backup_agent.model.durations import human_duration
from backup_agent.model.errors import CancelledError, ConfigurationError
from backup_agent.model.settings import Settings
from backup_agent.postgres.admin import DatabaseAdmin
from backup_agent.storage import local
from backup_agent.storage.lock import directory_lock

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Leftover:
    """A database a restore or restore test left: its name and when its stamp says it was made."""

    name: str
    created: datetime | None

    def age(self, now: datetime) -> timedelta | None:
        return None if self.created is None else now - self.created


@dataclass(frozen=True)
class DatabasePlan:
    drop: list[Leftover]
    young: list[Leftover]  # younger than ROLLBACK_MIN_AGE and not named: they stay
    min_age: timedelta
    now: datetime

    @property
    def min_age_text(self) -> str:
        return human_duration(self.min_age)


@dataclass(frozen=True)
class PruneResult:
    dry_run: bool
    keep_local: int
    deleted: list[BackupRef]
    damaged: list[BackupRef]
    databases: DatabasePlan | None
    warnings: list[str] = field(default_factory=list)

    def failure(self) -> None:
        return None

    def to_dict(self) -> dict[str, Any]:
        plan = self.databases
        return {"dry_run": self.dry_run,
                "would_delete" if self.dry_run else "deleted":
                    [backup.name for backup in self.deleted],
                "damaged_kept": [backup.name for backup in self.damaged],
                "databases": [leftover.name for leftover in plan.drop] if plan else [],
                "databases_kept": [leftover.name for leftover in plan.young] if plan else []}


def plan_databases(names: Sequence[str], *, named: Sequence[str], min_age: timedelta,
                   now: datetime) -> DatabasePlan:
    """Which leftovers go: those at least `min_age` old, and any named; raise if a name is
    not a leftover."""
    strangers = sorted(set(named) - set(names))
    if strangers:
        raise ConfigurationError(f"{', '.join(strangers)} is not a database a restore or "
                                 "restore test left: `backup-agent prune --databases "
                                 "--dry-run` lists those that are")
    drop: list[Leftover] = []
    young: list[Leftover] = []
    for name in names:
        leftover = Leftover(name=name, created=stamped_at(name))
        age = leftover.age(now)
        old_enough = age is None or age >= min_age
        (drop if old_enough or name in named else young).append(leftover)
    return DatabasePlan(drop=drop, young=young, min_age=min_age, now=now)


def run_prune(settings: Settings, *, dry_run: bool, databases: bool = False,
              named: Sequence[str] = (),
              confirm: Callable[[DatabasePlan], bool] = lambda plan: True,
              now: datetime | None = None) -> PruneResult:
    """Prune under the directory lock; a dry run only reads, so it takes no lock.

    With `databases`, the databases to drop are planned and confirmed first: a "no"
    changes nothing at all (CancelledError).
    """
    # A mistyped BACKUP_DIR is an error, not "nothing to prune" (a dry run included).
    (local.check_own_directory if dry_run else local.check_writable_directory)(
        settings.backup_directory)
    plan = None
    with DatabaseAdmin(settings.postgres) if databases else nullcontext() as admin:
        if admin is not None:
            plan = plan_databases(admin.leftovers(settings.postgres.database), named=named,
                                  min_age=settings.rollback_min_age, now=now or datetime.now(UTC))
            if not dry_run and plan.drop and not confirm(plan):
                raise CancelledError("prune cancelled: nothing was deleted or dropped")
        if dry_run:
            backups = retention.prune(settings, dry_run=True)
        else:
            with directory_lock(settings.backup_directory, purpose="prune"):
                backups = retention.prune(settings, dry_run=False)
        if plan is not None and admin is not None and not dry_run:
            for leftover in plan.drop:
                admin.drop(leftover.name)
                log.info("dropped database %s", leftover.name)
    return PruneResult(dry_run=dry_run, keep_local=settings.keep_local, deleted=backups.delete,
                       damaged=backups.bad, databases=plan, warnings=backups.warnings)
