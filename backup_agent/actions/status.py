"""`backup-agent status --max-age 26h`: a dead man's switch for cron, monitoring and CI.

It fails when the newest *complete* backup (ours, with its manifest) is older than the limit,
or when there is none, whatever the schedule that should have made it; and, where `wal
stream` runs, when WAL has waited for S3 over 3 x WAL_MAX_DELAY, the stream stopped
reporting, or its slot was lost.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from backup_agent.catalog import Catalog
from backup_agent.model.backup import BackupRef, Where, newest_complete
from backup_agent.model.durations import age_text, human_duration, parse_duration
from backup_agent.model.errors import BackupAgentError, StaleBackupError
from backup_agent.model.settings import Settings
from backup_agent.wal.health import moment, stream_health

log = logging.getLogger(__name__)

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
    wal = wal_status(settings, now)

    def stale(message: str) -> StaleBackupError:
        error = StaleBackupError(message, details={"wal": wal})  # --json shows it either way
        error.warned = warnings
        return error

    newest = newest_complete(listing.backups, now)
    if newest is None:
        raise stale(f"no complete backup found ({where.value}): backups are not being made; "
                    "check the backup job's logs")
    age = newest.age(now)
    if age > max_age:
        raise stale(f"the newest complete backup ({newest.name}, {newest.where.value}) is "
                    f"{age_text(age)} old, over the {human_duration(max_age)} limit: backups "
                    "have stopped; check the backup job's logs")
    if wal is not None and wal["problem"]:
        raise stale(f"point-in-time recovery is behind: {wal['problem']}")
    return StatusResult(newest=newest, age=age, max_age=max_age, warnings=warnings, wal=wal)


def wal_status(settings: Settings, now: datetime) -> dict[str, Any] | None:
    """Return the WAL archive's health (`wal/health.py`: lag, last segment, slot, problem)
    with the restorable window; None when `wal stream` never ran here."""
    health = stream_health(settings.wal, now)
    if health is None:
        return None
    return {**health.report, "window": _window(settings, health.report)}


def _window(settings: Settings, state: dict[str, Any]) -> dict[str, str | None]:
    """The moments a restore-cluster can reach: from the end of the oldest base backup in S3
    (its descriptor proven) to the last WAL file S3 received."""
    start, end = None, state.get("last_uploaded_at")
    system_identifier = state.get("system_identifier")
    if settings.s3.configured and isinstance(system_identifier, str):
        from backup_agent.keys.signing import signer
        from backup_agent.keys.trust import with_own_key
        from backup_agent.storage.s3 import S3Store
        from backup_agent.wal.base_backups import base_backups

        trusted = with_own_key(settings).trusted_signing_keys
        try:
            backups = base_backups(S3Store(settings.s3), system_identifier,
                                   vouch=lambda document, text: signer(document, text, trusted))
        except BackupAgentError as error:
            log.warning("the restorable window's start is unknown: %s", error)
            backups = []
        if backups and trusted:
            start = backups[0].descriptor.end_time
    # A lost slot left a hole: only the base backup the stream took after it restores on.
    rebased, began = moment(state.get("restorable_from")), moment(start)
    if rebased is not None and began is not None and rebased > began:
        start = str(state["restorable_from"])
    began, reached = moment(start), moment(end)
    # WAL that reached S3 before the base backup ended cannot restore it yet.
    if began is None or reached is None or reached < began:
        return {"start": start, "end": None}
    return {"start": start, "end": end}
