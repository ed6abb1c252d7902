"""How the WAL archive is doing, from what `wal stream` last recorded in WAL_SPOOL_DIR.

`status` (which adds the restorable window) and `doctor` read the same numbers and say
the same things here: the lag (how long the oldest WAL not yet in S3 has waited), whether
the stream still reports, and whether its slot was lost.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from backup_agent.model.durations import age_text, human_duration
from backup_agent.model.wal_settings import WalSettings
from backup_agent.wal.spool import read_state

WAL_LAG_FACTOR = 3  # behind past 3 x WAL_MAX_DELAY of WAL waiting for S3
STALE_STATE = timedelta(minutes=1)  # the stream writes its state at least every 10 s


@dataclass(frozen=True)
class StreamHealth:
    report: dict[str, Any]  # what `status --json` shows as `wal` (without the window)
    updated: datetime | None  # when the stream last wrote its state

    @property
    def lag(self) -> timedelta:
        return timedelta(seconds=self.report["lag_seconds"])


def stream_health(wal: WalSettings, now: datetime) -> StreamHealth | None:
    """Return the stream's last recorded state, judged at `now` (None: it never ran here):
    `lag_seconds` (0 when S3 holds everything), `lag_bytes`, `last_segment`, `slot`
    (active, inactive, lost) and `problem` (why the archive is behind, or None)."""
    state = read_state(wal.spool_directory)
    if state is None:
        return None
    since = moment(state.get("unarchived_since"))
    lag = 0.0 if since is None else max(0.0, (now - since).total_seconds())
    report = {"lag_seconds": round(lag, 1), "lag_bytes": int(state.get("lag_bytes") or 0),
              "last_segment": state.get("last_segment"),
              "last_uploaded_at": state.get("last_uploaded_at"),
              "archived_through": state.get("archived_through"),
              "slot": state.get("slot_state") or "inactive",
              "slot_name": state.get("slot"), "receiver": state.get("receiver"),
              "alarm": state.get("alarm"), "system_identifier": state.get("system_identifier"),
              "timeline": state.get("timeline"),
              # after a lost slot: the base backup the stream took, where restores start
              "restorable_from": state.get("restorable_from")}
    health = StreamHealth(report=report, updated=moment(state.get("updated_at")))
    report["problem"] = _problem(health, wal, now)
    return health


def lag_limit(wal: WalSettings) -> timedelta:
    return WAL_LAG_FACTOR * wal.max_delay


def lost_slot() -> str:
    return ("the WAL stream's replication slot was lost (the server dropped it past "
            "max_slot_wal_keep_size): the archive has a hole; the stream makes the slot "
            "again and takes a new base backup once S3 holds its spool (if it is not "
            "running: `backup-agent wal setup --yes`, then start it)")


def not_reporting(health: StreamHealth, wal: WalSettings) -> str:
    if ended(health):  # it said so as it ended: no need to wait
        return (f"the WAL stream stopped at {health.updated or 'an unknown time'} "
                f"({wal.spool_directory}): start `backup-agent wal stream` again (its "
                "service, or the sidecar)")
    since = health.updated or "it started"
    return (f"the WAL stream has not reported since {since} ({wal.spool_directory}): is "
            "`backup-agent wal stream` running?")


def ended(health: StreamHealth) -> bool:
    """The stream said it stopped as it ended (while a lost slot is being made again its
    receiver is stopped too, but the stream runs: its heartbeat says so)."""
    return bool(health.report["receiver"] == "stopped" and health.report["slot"] != "lost")


def silent(health: StreamHealth, now: datetime, limit: timedelta) -> bool:
    """The stream ended or has not written for `limit`."""
    return (ended(health) or health.updated is None
            or abs(now - health.updated) > limit)  # from the future: a clock, not a heartbeat


def lag_problem(health: StreamHealth, wal: WalSettings) -> str | None:
    if health.lag <= lag_limit(wal):
        return None
    return (f"WAL written {age_text(health.lag)} ago is not in S3 yet, over "
            f"{human_duration(lag_limit(wal))} (3 x WAL_MAX_DELAY): "
            f"{health.report['alarm'] or 'check the WAL stream and S3'}")


def _problem(health: StreamHealth, wal: WalSettings, now: datetime) -> str | None:
    if health.report["slot"] == "lost":
        return lost_slot()
    if silent(health, now, STALE_STATE):  # the heartbeat is every 10 s, whatever the RPO
        return not_reporting(health, wal)
    return lag_problem(health, wal)


def moment(text: object) -> datetime | None:
    try:
        return datetime.fromisoformat(str(text)) if text else None
    except ValueError:
        return None
