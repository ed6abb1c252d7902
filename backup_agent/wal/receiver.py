"""pg_receivewal, supervised: started into the spool, stopped with us, its exits explained.

The child gets SIGTERM from the kernel when the agent dies, however it dies (prctl
PR_SET_PDEATHSIG, see execute.py): a `kill -9` of `wal stream` leaves no pg_receivewal
holding the slot. An exit is either final (the slot is missing or lost, credentials are
wrong: the stream stops and says so) or worth a restart (the connection dropped), and
restarts back off and give up after RESTART_WINDOW_SECONDS of failing.
"""

from __future__ import annotations

import logging
import signal
import subprocess
from pathlib import Path

from backup_agent import execute
from backup_agent.model.errors import BackupAgentError, DatabaseError, LocalStorageError
from backup_agent.model.settings import PostgresSettings
from backup_agent.postgres.commands import make_environment
from backup_agent.postgres.diagnosis import describe_server, diagnose, last_meaningful_line
from backup_agent.postgres.replication import SlotState, WalServer, make_receivewal_command
from backup_agent.wal.spool import set_partials_aside

log = logging.getLogger(__name__)

STOP_SECONDS = 10  # pg_receivewal flushes and exits on SIGTERM well within this
RESTART_WINDOW_SECONDS = 300  # failing restarts for this long end the stream
LOST_SIGNS = ("has been invalidated", "can no longer", "has already been removed",
              "wal_status is lost", "requested wal segment")
FINAL_SIGNS = ("password authentication failed", "no password supplied", "fe_sendauth",
               "does not exist", "must have replication", "permission denied to start wal",
               "no pg_hba.conf entry")


RECOVERING = ("The stream uploads what the spool holds, then makes the slot again and takes "
              "a new base backup")
LOST_FIX = ("Recreate the slot (`backup-agent wal setup --yes`), restart `wal stream`, and "
            "take a new base backup at once (`backup-agent base-backup`)")


class SlotLostError(DatabaseError):
    """The slot no longer holds the WAL the archive needs: the archive has a hole."""

    def __init__(self, slot: str, detail: str, then: str = LOST_FIX) -> None:
        super().__init__(
            f"ALARM: the replication slot {slot!r} was lost ({detail}): WAL the server "
            "dropped (max_slot_wal_keep_size) is missing from the archive, so no point in time "
            "after the last base backup can be restored across that hole; the database "
            f"itself is fine. {then}")
        self.slot, self.detail = slot, detail


class SlotMissingError(DatabaseError):
    """The slot does not exist: `wal setup` makes it."""


class SpoolFullError(LocalStorageError):
    """The spool's file system has no room for WAL: the stream stops taking it for now."""


def slot_lost(slot: str, detail: str) -> SlotLostError:
    return SlotLostError(slot, detail)


def slot_missing(slot: str, where: str = "") -> SlotMissingError:
    return SlotMissingError(f"the replication slot {slot!r} does not exist{where}: run "
                            "`backup-agent wal setup --yes` (or fix WAL_SLOT)")


def explain_exit(stderr: str, settings: PostgresSettings, slot: str) -> BackupAgentError | None:
    """Return why pg_receivewal's exit is final, or None when a restart may help."""
    text = stderr.lower()
    if any(sign in text for sign in LOST_SIGNS):
        return slot_lost(slot, last_meaningful_line(stderr))
    if "replication slot" in text and "does not exist" in text:
        return slot_missing(slot, f" at {describe_server(settings)}")
    if "is active for pid" in text or "already active" in text:
        return DatabaseError(f"the replication slot {slot!r} is in use by another receiver: "
                             "stop the other `wal stream` (one per slot)")
    if "no space left" in text:
        return SpoolFullError(next(line.strip() for line in stderr.splitlines()
                                   if "no space left" in line.lower()))
    if "could not create" in text or "could not open" in text:
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

    def __init__(self, settings: PostgresSettings, spool: Path, slot: str,
                 segment_bytes: int) -> None:
        self._settings = settings
        self._command = make_receivewal_command(settings, spool, slot)
        self._spool, self._slot, self._segment_bytes = spool, slot, segment_bytes
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
        # A torn .partial (a kill or a full disk while pg_receivewal padded it) would make it
        # refuse to start ("should be 0 or 16777216 bytes"): set aside, as at the stream's start.
        set_partials_aside(self._spool, self._segment_bytes, torn_only=True)
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
                                f"(last: {_ended(code)}, {last_meaningful_line(stderr)}): check "
                                f"that {describe_server(self._settings)} is up and reachable")
        log.warning("pg_receivewal %s (%s); restarting in %.0fs", _ended(code),
                    last_meaningful_line(stderr), self._delay)
        self._next_start = now + self._delay
        self._delay = min(self._delay * 2, 30.0)

    def stop(self) -> None:
        """Ask pg_receivewal to stop (it flushes what it has), kill it if it lingers."""
        if self._child is not None:
            self._child.terminate(STOP_SECONDS)
            self._child.close()
            self._child = None

    def start_over(self, server: WalServer, now: float) -> SlotState | None:
        """After a lost slot: the slot again (reserving WAL from now, unless already made)
        and pg_receivewal on it, from the server's position: the lost slot's .partial is
        set aside, as it would ask for WAL the server no longer has. Return the new slot
        (None if it was made before)."""
        slot = server.slot(self._slot)
        made = None
        if slot is None or slot.lost:
            server.recreate_slot(self._slot)
            made = server.slot(self._slot)
            set_partials_aside(self._spool, self._segment_bytes)
            self.pause(now)
        self.start_when_due(now)
        return made

    def pause(self, now: float) -> None:
        """Stop taking WAL for now (the spool is full); `start_when_due` resumes."""
        self.stop()
        self._next_start = now


def _ended(code: int) -> str:
    """How pg_receivewal ended: `exited 1`, `was killed by SIGKILL`."""
    if code < 0:
        with_name = signal.Signals(-code).name if -code in signal.valid_signals() else -code
        return f"was killed by {with_name}"
    return f"exited {code}"


class SlotWatch:
    """The stream's slot, read each tick: missing is final, lost is SlotLostError (the
    stream decides), and a server that stops answering (a restart) is asked again for up to
    RESTART_WINDOW_SECONDS, as pg_receivewal's restarts are."""

    def __init__(self, server: WalServer, slot: str) -> None:
        self._server, self._slot = server, slot
        self._away_since: float | None = None

    def read(self, *, lost_too: bool = False) -> SlotState:
        slot = self._server.slot(self._slot)
        if slot is None:
            raise slot_missing(self._slot)
        if slot.lost and not lost_too:
            raise slot_lost(self._slot, f"wal_status {slot.wal_status}")
        return slot

    def read_unless_away(self, now: float) -> SlotState | None:
        """The slot, or None while the server does not answer."""
        try:
            slot = self.read()
        except (SlotLostError, SlotMissingError):
            raise
        except DatabaseError as error:
            if self._away_since is None:
                log.warning("the server does not answer (%s): asking again until it does, "
                            "for up to %ds", error, RESTART_WINDOW_SECONDS)
            self._away_since = self._away_since or now
            if now - self._away_since > RESTART_WINDOW_SECONDS:
                raise
            return None
        self._away_since = None
        return slot
