"""`doctor`'s checks of point-in-time recovery, one per piece, each naming its fix.

PITR is in use here when `wal stream` has recorded its state in WAL_SPOOL_DIR or the slot
WAL_SLOT exists; then: the role may replicate and switch WAL, a replication connection is
accepted (pg_hba.conf), the slot exists and is not lost, max_slot_wal_keep_size caps it,
the stream reported within the last minute, and its lag is under 3 x WAL_MAX_DELAY (the
same numbers `status` reads: `wal/health.py`). Otherwise one line says it is not set up.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from backup_agent.model.durations import age_text, human_duration
from backup_agent.model.errors import BackupAgentError, ConfigurationError, DatabaseError
from backup_agent.model.settings import Settings
from backup_agent.postgres.replication import probe_replication
from backup_agent.postgres.session import SqlSession
from backup_agent.postgres.wal_setup import ServerSetup, inspect
from backup_agent.wal.health import (
    STALE_STATE,
    StreamHealth,
    ended,
    lag_limit,
    lag_problem,
    lost_slot,
    not_reporting,
    silent,
    stream_health,
)

Check = tuple[str, Callable[[], str]]
APPLY = "run `backup-agent wal setup --yes` as a superuser (--user)"


class WalProblem(BackupAgentError):
    pass


def pitr_checks(settings: Settings, now: datetime) -> list[Check]:
    """Return doctor's PITR checks (name, check): each returns its line or raises."""
    role, slot, wal = settings.postgres.user, settings.wal.slot, settings.wal
    with SqlSession(settings.postgres, settings.postgres.database) as session:
        server = inspect(session, role, slot)
    health = stream_health(wal, now)
    if health is None and not server.slot_exists:
        return [("pitr", lambda: (
            f"point-in-time recovery is not set up here (no slot {slot}, no state of "
            f"`wal stream` in {wal.spool_directory}): not a failure; `backup-agent wal "
            "setup` shows how"))]
    return [("wal-role", lambda: _role(server, role)),
            ("wal-replication", lambda: _replication(settings)),
            ("wal-slot", lambda: _slot(server, slot)),
            ("wal-slot-cap", lambda: _slot_cap(server)),
            ("wal-stream", lambda: _stream(health, settings, now)),
            ("wal-lag", lambda: _lag(health, settings, now))]


def _role(server: ServerSetup, role: str) -> str:
    missing = [right for right, held in (("REPLICATION", server.replication),
                                         ("EXECUTE on pg_switch_wal()", server.can_switch))
               if not held]
    if missing:
        raise DatabaseError(f"role {role} lacks {' and '.join(missing)} (the stream's "
                            f"replication connection; its forced segment switch): {APPLY}")
    return f"role {role} may open replication connections and call pg_switch_wal()"


def _replication(settings: Settings) -> str:
    identity = probe_replication(settings.postgres)
    return (f"a replication connection as {settings.postgres.user} is accepted (system "
            f"{identity.system_identifier}, timeline {identity.timeline})")


def _slot(server: ServerSetup, slot: str) -> str:
    if not server.slot_exists:
        raise WalProblem(f"the replication slot {slot} does not exist, so WAL is not kept "
                         f"for the stream: {APPLY}, restart `wal stream` and take a base "
                         "backup (`backup-agent base-backup`)")
    if server.slot_state == "lost":
        raise WalProblem(lost_slot())
    return f"the replication slot {slot} exists ({server.slot_state})"


def _slot_cap(server: ServerSetup) -> str:
    if server.slot_keep == "-1":
        raise ConfigurationError(
            "max_slot_wal_keep_size is unlimited: a stopped stream would keep WAL until the "
            f"disk fills and the database stops; {APPLY} (it caps it and reloads)")
    return (f"max_slot_wal_keep_size is {server.slot_keep}: a long outage costs the slot, "
            "never the database's disk")


def _stream(health: StreamHealth | None, settings: Settings, now: datetime) -> str:
    spool = settings.wal.spool_directory
    if health is None:
        raise WalProblem(f"`wal stream` has never run here (no state in {spool}): install "
                         "its service, which `backup-agent wal setup` prints")
    if ended(health):
        raise WalProblem(not_reporting(health, settings.wal))
    if health.updated is None or abs(now - health.updated) > STALE_STATE:
        since = ("never" if health.updated is None else "at a time in the future (a clock?)"
                 if health.updated > now else f"{age_text(now - health.updated)} ago")
        raise WalProblem(f"`wal stream` last reported {since} (it does every 10 s; limit "
                         f"{human_duration(STALE_STATE)}, state in {spool}): is its service "
                         "running? (systemctl status backup-agent-wal, or the sidecar's "
                         "`docker compose ps`)")
    return (f"`wal stream` reported {age_text(now - health.updated)} ago (receiver "
            f"{health.report['receiver']})")


def _lag(health: StreamHealth | None, settings: Settings, now: datetime) -> str:
    if health is None or silent(health, now, STALE_STATE):
        raise WalProblem("the WAL lag is unknown while `wal stream` does not report "
                         "(see wal-stream)")
    problem = lag_problem(health, settings.wal)
    if problem:
        raise WalProblem(problem)
    return (f"WAL lag {age_text(health.lag)} ({health.report['lag_bytes']} bytes), under "
            f"{human_duration(lag_limit(settings.wal))} (3 x WAL_MAX_DELAY); last segment "
            f"{health.report['last_segment']}")
