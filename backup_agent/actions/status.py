"""`backup-agent status --max-age 26h`: a dead man's switch for cron, monitoring and CI.

It fails when the newest *complete* backup (ours, with its manifest) is older than the limit,
or when there is none, whatever the schedule that should have made it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from backup_agent.actions.list import ListedBackup, Where, run_list
from backup_agent.errors import ConfigurationError, StaleBackupError
from backup_agent.settings import Settings

DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    """Return the duration in `26h`, `90m`, `2d` or `45s`."""
    match = DURATION.match(text)
    if not match:
        raise ConfigurationError(f"--max-age {text!r} is not a duration: use e.g. 26h, 90m, 2d")
    return timedelta(seconds=float(match[1]) * UNIT_SECONDS[match[2]])


@dataclass(frozen=True)
class StatusResult:
    newest: ListedBackup
    age: timedelta
    max_age: timedelta


def run_status(settings: Settings, *, max_age: timedelta, where: Where,
               now: datetime) -> StatusResult:
    """Return the newest complete backup; raise StaleBackupError if it is too old or absent."""
    complete = [backup for backup in run_list(settings, where).backups if backup.complete]
    if not complete:
        raise StaleBackupError(f"no complete backup found ({where.value}): backups are not "
                               "being made; check the backup job's logs")
    newest = max(complete, key=lambda backup: backup.created)
    age = now - newest.created
    if age > max_age:
        hours = age.total_seconds() / 3600
        raise StaleBackupError(
            f"the newest complete backup ({newest.name}, {newest.where}) is {hours:.1f} hours "
            f"old, over the {max_age.total_seconds() / 3600:g}-hour limit: backups have "
            "stopped; check the backup job's logs")
    return StatusResult(newest=newest, age=age, max_age=max_age)
