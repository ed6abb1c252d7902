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
    wal: dict[str, Any] | None = None  # the WAL stream's last recorded state, if it ran here

    def failure(self) -> None:
        return None

    def to_dict(self) -> dict[str, Any]:
        return {**self.newest.to_dict(),
                "age_hours": round(self.age.total_seconds() / 3600, 2),
                "max_age_hours": self.max_age.total_seconds() / 3600, "wal": self.wal}


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
    return StatusResult(newest=newest, age=age, max_age=max_age, warnings=warnings,
                        wal=wal_status(settings, now))


def wal_status(settings: Settings, now: datetime) -> dict[str, Any] | None:
    """Return what `wal stream` last recorded in WAL_SPOOL_DIR (None: it never ran here),
    with `lag_seconds`: how long since a WAL file last reached S3."""
    from backup_agent.wal.spool import read_state

    state = read_state(settings.wal.spool_directory)
    if state is None:
        return None
    uploaded = state.get("last_uploaded_at")
    try:
        lag = (now - datetime.fromisoformat(uploaded)).total_seconds() if uploaded else None
    except (TypeError, ValueError):
        lag = None
    return {"lag_seconds": None if lag is None else round(lag, 1),
            "last_segment": state.get("last_segment"), "last_uploaded_at": uploaded,
            "archived_through": state.get("archived_through"),
            "slot": state.get("slot"), "receiver": state.get("receiver"),
            "alarm": state.get("alarm"), "system_identifier": state.get("system_identifier"),
            "timeline": state.get("timeline")}
