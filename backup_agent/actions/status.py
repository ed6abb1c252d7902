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

log = logging.getLogger(__name__)

__all__ = ["StatusResult", "human_duration", "parse_duration", "run_status"]

WAL_LAG_FACTOR = 3  # status fails past 3 x WAL_MAX_DELAY of WAL waiting for S3
STALE_STATE = timedelta(minutes=1)  # the stream writes its state at least every 10 s


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
    wal = wal_status(settings, now)
    if wal is not None and wal["problem"]:
        error = StaleBackupError(f"point-in-time recovery is behind: {wal['problem']}")
        error.warned = warnings
        raise error
    return StatusResult(newest=newest, age=age, max_age=max_age, warnings=warnings, wal=wal)


def wal_status(settings: Settings, now: datetime) -> dict[str, Any] | None:
    """Return the WAL archive's health from what `wal stream` last recorded in WAL_SPOOL_DIR
    (None: it never ran here): `lag_seconds` (how long the oldest WAL not yet in S3 has
    waited; 0 when S3 holds everything), `lag_bytes`, `last_segment`, `slot` (active,
    inactive, lost) and `problem` (why the archive is behind, or None)."""
    from backup_agent.wal.spool import read_state

    state = read_state(settings.wal.spool_directory)
    if state is None:
        return None
    since = _moment(state.get("unarchived_since"))
    updated = _moment(state.get("updated_at"))
    lag = 0.0 if since is None else max(0.0, (now - since).total_seconds())
    status = {"lag_seconds": round(lag, 1), "lag_bytes": int(state.get("lag_bytes") or 0),
              "last_segment": state.get("last_segment"),
              "last_uploaded_at": state.get("last_uploaded_at"),
              "archived_through": state.get("archived_through"),
              "slot": state.get("slot_state") or "inactive",
              "slot_name": state.get("slot"), "receiver": state.get("receiver"),
              "alarm": state.get("alarm"), "system_identifier": state.get("system_identifier"),
              "timeline": state.get("timeline")}
    status["problem"] = _wal_problem(status, settings, now, updated)
    status["window"] = _window(settings, state)
    return status


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
    rebased, began = _moment(state.get("restorable_from")), _moment(start)
    if rebased is not None and began is not None and rebased > began:
        start = str(state["restorable_from"])
    began, reached = _moment(start), _moment(end)
    # WAL that reached S3 before the base backup ended cannot restore it yet.
    if began is None or reached is None or reached < began:
        return {"start": start, "end": None}
    return {"start": start, "end": end}


def _wal_problem(status: dict[str, Any], settings: Settings, now: datetime,
                 updated: datetime | None) -> str | None:
    limit = WAL_LAG_FACTOR * settings.wal.max_delay
    if status["slot"] == "lost":
        return ("the WAL stream's replication slot was lost (the server dropped it past "
                "max_slot_wal_keep_size): the archive has a hole; the stream makes the slot "
                "again and takes a new base backup once S3 holds its spool (if it is not "
                "running: `backup-agent wal setup --yes`, then start it)")
    if updated is None or now - updated > max(limit, STALE_STATE):
        return (f"the WAL stream has not reported since {status.get('last_uploaded_at')} "
                f"({settings.wal.spool_directory}): is `backup-agent wal stream` running?")
    if timedelta(seconds=status["lag_seconds"]) > limit:
        return (f"WAL written {age_text(timedelta(seconds=status['lag_seconds']))} ago is not "
                f"in S3 yet, over {human_duration(limit)} (3 x WAL_MAX_DELAY): "
                f"{status['alarm'] or 'check the WAL stream and S3'}")
    return None


def _moment(text: object) -> datetime | None:
    try:
        return datetime.fromisoformat(str(text)) if text else None
    except ValueError:
        return None
