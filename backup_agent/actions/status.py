"""`backup-agent status --max-age 26h`: a dead man's switch for cron, monitoring and CI.

It fails when the newest *complete* backup (ours, with its manifest) is older than the limit,
or when there is none, whatever the schedule that should have made it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from backup_agent.catalog import Catalog
from backup_agent.model.backup import BackupRef, Where, newest_complete
from backup_agent.model.durations import age_text, human_duration, parse_duration
from backup_agent.model.errors import StaleBackupError
from backup_agent.model.settings import Settings

__all__ = ["StatusResult", "human_duration", "parse_duration", "run_status"]


@dataclass(frozen=True)
class StatusResult:
    newest: BackupRef
    age: timedelta
    max_age: timedelta
    warnings: list[str] = field(default_factory=list)

    def failure(self) -> None:
        return None

    def to_dict(self) -> dict[str, Any]:
        return {**self.newest.to_dict(),
                "age_hours": round(self.age.total_seconds() / 3600, 2),
                "max_age_hours": self.max_age.total_seconds() / 3600}


def run_status(settings: Settings, *, max_age: timedelta, where: Where,
               now: datetime) -> StatusResult:
    """Return the newest complete backup; raise StaleBackupError if it is too old or absent."""
    listing = Catalog(settings, now=now).listing(where)
    warnings = listing.warnings  # names dated in the future among them
    newest = newest_complete(listing.backups, now)
    if newest is None:
        error = StaleBackupError(f"no complete backup found ({where.value}): backups are not "
                                 "being made; check the backup job's logs")
        error.warned = warnings
        raise error
    age = newest.age(now)
    if age > max_age:
        error = StaleBackupError(
            f"the newest complete backup ({newest.name}, {newest.where.value}) is "
            f"{age_text(age)} old, over the {human_duration(max_age)} limit: backups have "
            "stopped; check the backup job's logs")
        error.warned = warnings
        raise error
    return StatusResult(newest=newest, age=age, max_age=max_age, warnings=warnings)
