"""Recover a base backup to a moment: replay WAL to T, prove where replay stopped, promote,
shut down cleanly, leave the directory ready to start as a primary on a new timeline.

The recovery settings travel on the private server's command line (`commands`), never in
the cluster's files: there is nothing to remove afterwards and nothing left behind if the
agent is killed (then `recovery.signal` stays and the cluster refuses to start without a
restore_command, rather than starting half-recovered). PostgreSQL itself removes
`recovery.signal` and renames `backup_label` when it promotes.

Success is read from the server, never from an exit code: paused at the target
(`pg_get_wal_replay_pause_state()`), the last replayed commit at or before T
(`pg_last_xact_replay_timestamp()`), then promoted (`pg_is_in_recovery()` false). With
`latest`, the server ends recovery at the archive's end and promotes itself; a hole in the
archive stops it instead (see `handout`).
"""

from __future__ import annotations

import logging
import os
import re
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from backup_agent.model.errors import ConfigurationError, RestoreError
from backup_agent.model.targets import RecoveryTarget, postgres_time
from backup_agent.physical.commands import recovery_settings
from backup_agent.physical.handout import WalSupply, restore_command, serve, write_script
from backup_agent.physical.server import PrivateServer

log = logging.getLogger(__name__)

POLL_SECONDS = 0.1
# The pause state can only be asked for during recovery.
STATE_SQL = ("SELECT pg_is_in_recovery(), CASE WHEN pg_is_in_recovery() THEN "
             "pg_get_wal_replay_pause_state() END, pg_last_wal_replay_lsn()::text, "
             "pg_last_xact_replay_timestamp()")
_LAST_COMMIT = re.compile(r"last completed transaction was at log time (.+)$", re.MULTILINE)
_STOPPING = re.compile(r"recovery stopping before (?:commit|abort) of transaction .+$",
                       re.MULTILINE)


@dataclass(frozen=True)
class Reached:
    """Where a recovery ended, as the server reported it."""

    lsn: str
    last_commit: datetime | None  # the last transaction replayed (None: none was)
    timeline: str  # the new timeline's id, as in WAL file names
    stopped_before: str | None = None  # the server's "recovery stopping before …" log line


@dataclass(frozen=True)
class Recovery:
    data_directory: Path
    wal_directory: Path
    target: RecoveryTarget
    timeline: int  # the timeline to follow (the archive's newest, from the history files)
    bin_directory: Path | None = None
    owner: tuple[int, int] = (os.geteuid(), os.getegid())
    timeout_seconds: float = 6 * 3600  # the whole replay
    file_wait_seconds: int = 600  # one WAL file (the script gives up after this)


def recover(recovery: Recovery, supply: WalSupply) -> Reached:
    """Run the recovery; return where it stopped. Raise RestoreError (naming the moment
    reached) when it stopped anywhere but T, ConfigurationError when T was before the base
    backup's end."""
    directory = recovery.data_directory
    if not (directory / "backup_label").is_file():
        raise ConfigurationError(f"{directory} holds no backup_label: it is not a base backup "
                                 "(or was already started); restore into an empty directory")
    script = write_script(recovery.wal_directory, limit_seconds=recovery.file_wait_seconds,
                          owner=recovery.owner)
    signal_file = _signal_recovery(directory, recovery.owner)
    target_time = (postgres_time(recovery.target.moment) if recovery.target.moment is not None
                   else None)
    settings = recovery_settings(restore_command=restore_command(script),
                                 target_time=target_time, timeline=recovery.timeline)
    # Where replay stopped is logged at LOG: kept, so the drill can read it (and errors too).
    settings["log_min_messages"] = "log"
    with PrivateServer(recovery.bin_directory, directory, settings,
                       owner=recovery.owner) as server:
        answered: set[str] = set()
        _wait_for_target(server, recovery, supply, answered)
        reached = _promote(server, recovery, supply, answered)
        server.stop()
    if signal_file.exists():
        raise RestoreError(f"{signal_file} is still there after promotion: {directory} is not "
                           "ready to start")
    return reached


def _signal_recovery(directory: Path, owner: tuple[int, int]) -> Path:
    """Write `recovery.signal` (never through a link) and remove a `standby.signal` the
    source left (`pg_basebackup -R`): a standby would stream WAL nobody proved from its
    primary_conninfo and never end recovery."""
    standby = directory / "standby.signal"
    if standby.is_symlink() or standby.exists():
        log.warning("removed %s from the base backup: the restore recovers from the archive "
                    "only, never as a standby", standby)
        standby.unlink()
    signal_file = directory / "recovery.signal"
    descriptor = os.open(signal_file, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        os.fchown(descriptor, *owner)
    finally:
        os.close(descriptor)
    return signal_file


def _wait_for_target(server: PrivateServer, recovery: Recovery, supply: WalSupply,
                     answered: set[str]) -> None:
    """Serve WAL until the server pauses at T (or, for `latest`, leaves recovery)."""
    deadline = time.monotonic() + recovery.timeout_seconds
    asked: str | None = None
    while True:
        asked = serve(recovery.wal_directory, supply, answered) or asked
        if not server.alive:
            raise _failure(server.log_text(), recovery.target, supply)
        state = server.query(STATE_SQL)
        if state is not None:
            in_recovery, pause_state, _lsn, last_commit = state
            if not in_recovery:
                if recovery.target.latest:
                    return
                raise RestoreError(f"the server left recovery without pausing at "
                                   f"{recovery.target.describe()} (last commit replayed: "
                                   f"{_moment(last_commit)}): nothing was promoted by the agent")
            if pause_state == "paused" and not recovery.target.latest:
                _check_reached(last_commit, recovery.target)
                return
        if time.monotonic() > deadline:
            where = (f"at LSN {state[2]}, last commit {_moment(state[3])}" if state
                     else "before it took connections")
            raise RestoreError(f"recovery did not reach {recovery.target.describe()} within "
                               f"{recovery.timeout_seconds:.0f} s: replay was {where}, waiting "
                               f"for WAL file {asked or 'none asked yet'}; the directory is "
                               f"not usable. The server's last words: {_tail(server.log_text())}")
        time.sleep(POLL_SECONDS)


def _check_reached(last_commit: datetime | None, target: RecoveryTarget) -> None:
    assert target.moment is not None
    if last_commit is not None and last_commit > target.moment:
        raise RestoreError(f"replay paused after a commit at {last_commit.isoformat()}, later "
                           f"than --to-time {target.describe()}: refusing to promote")


def _promote(server: PrivateServer, recovery: Recovery, supply: WalSupply,
             answered: set[str]) -> Reached:
    """Promote (unless the server already did, at the archive's end) and return where it is.

    pg_promote is not waited on in SQL: promotion asks restore_command for the next
    timeline's history file, which the agent answers from this loop."""
    state = server.query(STATE_SQL)
    if state is None:
        raise RestoreError("the recovered server stopped answering before promotion: "
                           f"see its log:\n{server.log_text()[-2000:]}")
    last_commit = state[3]
    if state[0]:
        promoted = server.query("SELECT pg_promote(false)")
        if not promoted or not promoted[0]:
            raise RestoreError("pg_promote() was refused: the directory is not ready")
    deadline = time.monotonic() + 300
    while True:
        serve(recovery.wal_directory, supply, answered)
        state = server.query("SELECT pg_is_in_recovery(), pg_walfile_name(pg_current_wal_lsn()),"
                             " pg_current_wal_lsn()::text")
        if state is not None and not state[0]:
            break
        if not server.alive:
            raise _failure(server.log_text(), recovery.target, supply)
        if time.monotonic() > deadline:
            raise RestoreError("the server did not leave recovery within 300 s of promotion")
        time.sleep(POLL_SECONDS)
    stopping = _STOPPING.search(server.log_text())
    return Reached(lsn=str(state[2]), last_commit=last_commit, timeline=str(state[1])[:8],
                   stopped_before=stopping.group(0).strip() if stopping else None)


def _moment(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else "none"


def _failure(text: str, target: RecoveryTarget, supply: WalSupply) -> Exception:
    """The error for a server that exited during recovery, from its log."""
    last = _LAST_COMMIT.search(text)
    reached = f"the last commit replayed was at {last.group(1).strip()}" if last else \
        "no commit was replayed"
    problem = supply.problem()
    if "before consistent recovery point" in text:
        return ConfigurationError(f"--to-time {target.describe()} is before the base backup's "
                                  "end (its consistent point): choose a later time or an "
                                  "earlier base backup")
    if problem is not None:
        return RestoreError(f"recovery stopped short of {target.describe()}: {problem}; "
                            f"{reached}. Nothing was promoted")
    if "recovery ended before configured recovery target was reached" in text:
        return RestoreError(f"the archive's WAL ends before --to-time {target.describe()}: "
                            f"{reached}. Nothing was promoted; choose an earlier time, or "
                            "wait until the WAL after it is archived")
    fatal = [line for line in text.splitlines() if "FATAL" in line or "PANIC" in line]
    return RestoreError(f"the recovering server stopped: {(fatal or [text.strip()[-300:]])[-1]}"
                        f"; {reached}")


def _tail(text: str) -> str:
    return " | ".join(text.strip().splitlines()[-5:])
