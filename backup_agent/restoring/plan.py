"""What a restore will do, in order: the plan `restore` shows, asks about, and follows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from backup_agent.model.backup import BackupRef, Where
from backup_agent.model.database_names import BUILDING, ROLLBACK, made_name
from backup_agent.model.settings import Settings


@dataclass
class RestorePlan:
    source: BackupRef
    target: str  # the database that ends up holding the backup's data
    build: str  # where the backup is restored first
    previous: str | None  # what the current target is renamed to (swap mode only)
    stop_containers: list[str]
    drop_previous: bool
    no_owner: bool
    target_missing: bool = False  # disaster recovery: a server without the database

    @property
    def swap(self) -> bool:
        return self.previous is not None

    def steps(self, *, with_globals: bool = False) -> list[str]:
        kept = ("re-read through the same open file" if self.source.where is Where.LOCAL
                else "kept in a private spool file while it is read")
        steps = [f"prove {self.source.location}"
                 f"{', decrypting it (age)' if self.source.encrypted else ''}: SHA-256, the "
                 "whole gzip stream, the closing 'dump complete' line, and that every "
                 "statement is one pg_dump writes; nothing runs before this passes"]
        if with_globals:
            steps += ["create the roles it needs that this server lacks (never changing an "
                      "existing one)" if not self.no_owner else
                      "create no roles, and leave out ownership and grants (--no-owner)",
                      f"create empty database {self.build} with the recorded encoding, "
                      "locale provider, locales" + ("" if self.no_owner else " and owner")]
        else:
            steps.append(f"create empty database {self.build}")
        steps += [f"execute the proven bytes ({kept}) in it, statement by statement: code "
                  "from the backup runs only as a temporary role with no rights outside it",
                  f"ANALYZE {self.build}, give its objects their owners, create its event "
                  "triggers last"]
        if with_globals:
            steps.append("give it the recorded settings, per-role settings, comment, "
                         "connection limit" + ("" if self.no_owner else " and privileges"))
        if self.swap and self.target_missing:
            steps.append(f"rename {self.build} -> {self.target} (this server has no "
                         f"{self.target} yet: nothing to swap out or keep)")
        elif self.swap:
            if self.stop_containers:
                steps.append(f"stop app containers: {', '.join(self.stop_containers)}")
            steps.append(f"swap atomically: {self.target} -> {self.previous}, "
                         f"{self.build} -> {self.target}")
            if self.stop_containers:
                steps.append(f"start app containers: {', '.join(self.stop_containers)}")
            if self.drop_previous:
                steps.append(f"drop {self.previous}")
        else:
            steps.append(f"rename {self.build} -> {self.target}")
        created = " and the roles it created" if with_globals and not self.no_owner else ""
        steps.append(f"on any failure: drop {self.build}{created}; {self.target} stays as it "
                     "is")
        return steps



def containers_to_stop(settings: Settings, *, swap: bool) -> list[str]:
    """APP_CONTAINERS, stopped around a swap (never for --target-db, or with SKIP_APP_STOP)."""
    return list(settings.app_containers) if swap and not settings.skip_app_stop else []


def make_plan(settings: Settings, source: BackupRef, *, target_db: str | None,
              drop_previous: bool, no_owner: bool, moment: datetime) -> RestorePlan:
    target = target_db or settings.postgres.database
    swap = target_db is None
    return RestorePlan(
        source=source, target=target, build=made_name(target, BUILDING, moment),
        previous=made_name(target, ROLLBACK, moment) if swap else None,
        stop_containers=containers_to_stop(settings, swap=swap),
        drop_previous=drop_previous and swap, no_owner=no_owner)
