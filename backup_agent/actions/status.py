"""`backup-agent status --max-age 26h`: a dead man's switch for cron, monitoring and CI.

It fails when the newest *complete* backup (ours, with its manifest) is older than the limit,
or when there is none, whatever the schedule that should have made it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from backup_agent.catalog import Catalog
from backup_agent.model.backup import BackupRef, Where, newest_complete
from backup_agent.model.errors import ConfigurationError, StaleBackupError
from backup_agent.model.settings import Settings

DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def human_duration(duration: timedelta) -> str:
    """`26h`, `90m`, `5s`, `1.5h`: as an operator would write it for --max-age."""
    seconds = duration.total_seconds()
    for unit in ("d", "h", "m"):
        if seconds >= UNIT_SECONDS[unit] and seconds % (UNIT_SECONDS[unit] / 2) == 0:
            return f"{seconds / UNIT_SECONDS[unit]:g}{unit}"
    return f"{seconds:g}s"


def parse_duration(text: str) -> timedelta:
    """Return the duration in `26h`, `90m`, `2d` or `45s`."""
    match = DURATION.match(text)
    if not match:
        raise ConfigurationError(f"--max-age {text!r} is not a duration: use e.g. 26h, 90m, 2d")
    return timedelta(seconds=float(match[1]) * UNIT_SECONDS[match[2]])


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
        hours = age.total_seconds() / 3600
        error = StaleBackupError(
            f"the newest complete backup ({newest.name}, {newest.where.value}) is {hours:.1f} "
            f"hours old, over the {human_duration(max_age)} limit: backups have "
            "stopped; check the backup job's logs")
        error.warned = warnings
        raise error
    return StatusResult(newest=newest, age=age, max_age=max_age, warnings=warnings)
