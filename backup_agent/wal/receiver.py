"""pg_receivewal, supervised: started into the spool, stopped with us, its exits explained.

The child gets SIGTERM from the kernel when the agent dies, however it dies (prctl
PR_SET_PDEATHSIG, see execute.py): a `kill -9` of `wal stream` leaves no pg_receivewal
holding the slot. An exit is either final (the slot is missing or lost, credentials are
wrong: the stream stops and says so) or worth a restart (the connection dropped), and
restarts back off and give up after RESTART_WINDOW_SECONDS of failing.
"""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

from backup_agent import execute
from backup_agent.model.errors import BackupAgentError, DatabaseError, LocalStorageError
from backup_agent.model.settings import PostgresSettings
from backup_agent.postgres.commands import make_environment
from backup_agent.postgres.diagnosis import describe_server, diagnose, last_meaningful_line
from backup_agent.postgres.replication import make_receivewal_command

log = logging.getLogger(__name__)

STOP_SECONDS = 10  # pg_receivewal flushes and exits on SIGTERM well within this
RESTART_WINDOW_SECONDS = 300  # failing restarts for this long end the stream
LOST_SIGNS = ("has been invalidated", "can no longer", "has already been removed",
              "wal_status is lost", "requested wal segment")
FINAL_SIGNS = ("password authentication failed", "no password supplied", "fe_sendauth",
               "does not exist", "must have replication", "permission denied to start wal",
               "no pg_hba.conf entry")


class SlotLostError(DatabaseError):
    """The slot no longer holds the WAL the archive needs: the archive has a hole."""


def slot_lost(slot: str, detail: str) -> SlotLostError:
    return SlotLostError(
        f"ALARM: the replication slot {slot!r} was lost ({detail}): WAL the server dropped "
        "(max_slot_wal_keep_size) is missing from the archive, so no point in time after "
        "the last base backup can be restored across that hole; the database itself is "
        "fine. Recreate the slot (`backup-agent wal setup --yes`), restart `wal stream`, "
        "and take a new base backup at once (`backup-agent base-backup`)")


def explain_exit(stderr: str, settings: PostgresSettings, slot: str) -> BackupAgentError | None:
    """Return why pg_receivewal's exit is final, or None when a restart may help."""
    text = stderr.lower()
    if any(sign in text for sign in LOST_SIGNS):
        return slot_lost(slot, last_meaningful_line(stderr))
    if "replication slot" in text and "does not exist" in text:
        return DatabaseError(f"the replication slot {slot!r} does not exist at "
                             f"{describe_server(settings)}: run `backup-agent wal setup "
                             "--yes` (or fix WAL_SLOT)")
    if "is active for pid" in text or "already active" in text:
        return DatabaseError(f"the replication slot {slot!r} is in use by another receiver: "
                             "stop the other `wal stream` (one per slot)")
    if "could not create" in text or "could not open" in text or "no space left" in text:
        return LocalStorageError(f"pg_receivewal cannot write into the spool "
                                 f"({last_meaningful_line(stderr)}): check WAL_SPOOL_DIR, its "
                                 "permissions and free space")
    if any(sign in text for sign in FINAL_SIGNS):
        if "replication" in text or "pg_hba" in text:
            return DatabaseError(f"{describe_server(settings)} refused the replication "
                                 f"connection ({last_meaningful_line(stderr)}): run "
                                 "`backup-agent wal setup` and apply what it prints")
        return diagnose(stderr, settings, program="pg_receivewal")
    return None


class Receiver:
    """One pg_receivewal at a time into `spool` on `slot`."""

    def __init__(self, settings: PostgresSettings, spool: Path, slot: str) -> None:
        self._settings = settings
        self._command = make_receivewal_command(settings, spool, slot)
        self._slot = slot
        self._child: execute.Child | None = None
        self._failing_since: float | None = None
        self._next_start = 0.0
        self._started = 0.0
        self._delay = 1.0

    @property
    def running(self) -> bool:
        return self._child is not None and self._child.alive

    @property
    def pid(self) -> int | None:
        return self._child.process.pid if self.running and self._child else None

    def start_when_due(self, now: float) -> bool:
        """Start pg_receivewal unless it runs or its restart is not due yet; True if started."""
        if self._child is not None or now < self._next_start:
            return False
        self._child = execute.Child(self._command, environment=make_environment(self._settings),
                                    stdout=subprocess.DEVNULL, die_with_parent=True)
        self._started = now
        log.info("pg_receivewal started (pid %d) on slot %s", self._child.process.pid,
                 self._slot)
        return True

    def check(self, now: float) -> None:
        """Notice an exit: raise if it is final or restarts kept failing; else plan a restart."""
        if self._child is None or self._child.alive:
            if self._child is not None and now - self._started > 30:
                self._failing_since, self._delay = None, 1.0  # it ran: failures start over
            return
        code = self._child.wait()
        stderr = self._child.stderr_text()
        self._child.close()
        self._child = None
        final = explain_exit(stderr, self._settings, self._slot)
        if final is not None:
            raise final
        self._failing_since = self._failing_since or now
        if now - self._failing_since > RESTART_WINDOW_SECONDS:
            raise DatabaseError(f"pg_receivewal kept failing for {RESTART_WINDOW_SECONDS}s "
                                f"(last: exit {code}, {last_meaningful_line(stderr)}): check "
                                f"that {describe_server(self._settings)} is up and reachable")
        log.warning("pg_receivewal exited (%d: %s); restarting in %.0fs", code,
                    last_meaningful_line(stderr), self._delay)
        self._next_start = now + self._delay
        self._delay = min(self._delay * 2, 30.0)

    def stop(self) -> None:
        """Ask pg_receivewal to stop (it flushes what it has), kill it if it lingers."""
        if self._child is not None:
            self._child.terminate(STOP_SECONDS)
            self._child.close()
            self._child = None

    def pause(self, now: float) -> None:
        """Stop taking WAL for now (the spool is full); `start_when_due` resumes."""
        self.stop()
        self._next_start = now
