"""`wal stream`'s loop: receive, upload, force a segment switch when WAL waits too long.

Each tick (a quarter of WAL_MAX_DELAY, at most a second): restart pg_receivewal if it
ended for a reason a restart can fix, upload every complete file in the spool, stop taking
WAL while the spool is over WAL_SPOOL_MAX or its disk is full (the slot's
max_slot_wal_keep_size then protects the server) and take it again once there is room, read
the slot (waiting for a server that stops answering, as for a restart), and call
pg_switch_wal() when WAL has waited past WAL_MAX_DELAY outside a complete segment. A lost
slot is an alarm; once S3 holds what the spool kept, the stream makes the slot again and
takes a new base backup (`rebase`; without it a lost slot ends the stream). The state goes
to the spool's `.backup-agent/state.json` after every change, for `status`.
"""

from __future__ import annotations

import errno
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from backup_agent.model import errors
from backup_agent.model.settings import PostgresSettings
from backup_agent.model.wal_settings import WalSettings
from backup_agent.postgres.replication import (
    SlotState,
    WalServer,
    identify_system,
    local_clients_only,
)
from backup_agent.wal import spool as spooling
from backup_agent.wal.names import WalKind, format_lsn, parse_lsn, segment_number
from backup_agent.wal.receiver import (
    RECOVERING,
    Receiver,
    SlotLostError,
    SlotWatch,
    SpoolFullError,
    slot_lost,
)
from backup_agent.wal.spool import StreamState, ready_files, set_partials_aside
from backup_agent.wal.uploader import ConflictingObjectError, Encoder, upload_ready

if TYPE_CHECKING:
    from backup_agent.storage.s3 import S3Store

log = logging.getLogger(__name__)

RESUME_FRACTION = 0.8  # a paused stream takes WAL again below 80% of WAL_SPOOL_MAX
S3_ALARM_REPEAT_SECONDS = 60
HEARTBEAT_SECONDS = 10  # the state is written this often at least: `status` sees we live
ROOM_SEGMENTS = 2  # a full disk takes WAL again with room for a segment and its upload


class Stream:
    """One `wal stream` run: build with the store and settings, then `run`."""

    def __init__(self, store: S3Store, postgres: PostgresSettings, wal: WalSettings,
                 encoder_for: Callable[[str], Encoder], *,
                 on_alarm: Callable[[str], None] | None = None,
                 rebase: Callable[[], str] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        local_clients_only(postgres)
        self._store, self._postgres, self._wal = store, postgres, wal
        self._encoder_for = encoder_for
        self._on_alarm = on_alarm or (lambda text: None)
        self._clock = clock
        self._spool = wal.spool_directory
        self._tick_seconds = max(0.1, min(1.0, wal.max_delay.total_seconds() / 4))
        self._paused = self._full = False  # over WAL_SPOOL_MAX; its disk full
        # `rebase` takes a base backup into S3 and returns when it ended (ISO 8601).
        self._rebase, self._lost, self._rebase_at = rebase, False, 0.0
        self._unrecorded = False  # the state could not be written (said once)
        self._pending_since: float | None = None
        self._s3_alarm_at: float | None = None
        self._recorded_at = clock()

    def _prepare(self) -> None:
        identity = identify_system(self._postgres)
        self._server = WalServer(self._postgres)
        self._segment_bytes = self._server.segment_bytes()
        self._encoder = self._encoder_for(identity.system_identifier)
        self.state = spooling.resumed_state(self._spool, identity.system_identifier,
                                            identity.timeline, self._wal.slot)
        # (first seen, LSN) of the server's position: the lag's clock, kept over a restart
        self._written: list[tuple[str, int]] = spooling.still_waiting(self.state)
        self._slots = SlotWatch(self._server, self._wal.slot)
        slot = self._slots.read(lost_too=True)
        self._start_from(slot)
        set_partials_aside(self._spool, self._segment_bytes)
        spooling.trim_aside(self._spool)
        self._receiver = Receiver(self._postgres, self._spool, self._wal.slot,
                                  self._segment_bytes)
        hole = spooling.hole_before(self._spool, self.state, self._completed_end,
                                    self._segment_bytes)  # a slot made again meanwhile
        if self.state.slot_state == "lost":  # the last run stopped before its base backup
            hole = "the last run lost it and stopped before taking the base backup after it"
        if slot.lost or hole:
            self._lose(slot_lost(self._wal.slot, f"wal_status {slot.wal_status}" if slot.lost
                                 else str(hole)))

    def _start_from(self, slot: SlotState) -> None:  # only WAL after its segment can wait
        start = parse_lsn(slot.restart_lsn or slot.current_lsn)
        self._completed_end = start - start % self._segment_bytes

    def _record(self) -> None:
        self._recorded_at = self._clock()
        self.state.updated_at = spooling.utc_now_text()
        try:
            spooling.write_state(self._spool, self.state.to_dict())
            self._unrecorded = False
        except OSError as error:  # a full disk: `status` says the stream stopped reporting
            if not self._unrecorded:
                log.warning("could not record the stream's state in %s: %s", self._spool,
                            error)
            self._unrecorded = True

    def run(self, should_stop: Callable[[], bool] = lambda: False) -> StreamState:
        """Stream until `should_stop()` (or a signal, or a final error); return the state."""
        self._prepare()
        try:
            while not should_stop():
                self._tick(self._clock())
                time.sleep(self._tick_seconds)
        except BaseException as error:
            self.state.alarm = self.state.alarm or str(error)
            raise
        finally:
            self._receiver.stop()
            self._server.close()
            self.state.receiver = "stopped"
            if self.state.slot_state == "active":  # nothing reads from it now
                self.state.slot_state = "inactive"
            self._record()
        return self.state

    def _tick(self, now: float) -> None:
        if now - self._recorded_at >= HEARTBEAT_SECONDS:
            self._record()  # alive, also while the server is away or the slot lost
        try:
            self._receiver.check(now)
        except SpoolFullError as error:
            self._fill(now, str(error))
        except SlotLostError as error:
            self._lose(error)
        self._upload(now)
        if self._lost:
            self._recover(now)
            return
        self._cap(now)
        if not (self._paused or self._full) and self._receiver.start_when_due(now):
            self.state.receiver = "running"
            self._record()
        try:
            slot = self._slots.read_unless_away(now)
        except SlotLostError as error:
            self._lose(error)
            return
        if slot is None:  # a restart, say: asked again next tick
            return
        self._measure_lag(now, slot)
        self._force_switch(now, slot)

    def _lose(self, error: SlotLostError) -> None:
        """The slot is lost: stop receiving, say so loudly, recover once S3 takes WAL."""
        if self._rebase is None:
            raise error
        self._receiver.stop()
        self.state.receiver, self.state.slot_state = "stopped", "lost"
        if not self._lost:
            self._lost = True
            self._alarm(str(SlotLostError(error.slot, error.detail, RECOVERING)))

    def _recover(self, now: float) -> None:
        """Once S3 holds every file the spool kept (WAL before the hole): the slot again,
        reserving WAL from now, pg_receivewal on it, then a new base backup after it."""
        if ready_files(self._spool) or now < self._rebase_at or self._rebase is None:
            return
        if made := self._receiver.start_over(self._server, now):
            self._start_from(made)  # the lag's clock: S3 holds all it can before the new slot
        try:
            ended = self._rebase()
        except errors.InterruptedRunError:
            raise  # SIGTERM during the base backup: the run stops, no alarm of a failure
        except errors.BackupAgentError as error:
            self._rebase_at = now + S3_ALARM_REPEAT_SECONDS
            self._alarm(f"ALARM: the base backup after the lost slot {self._wal.slot!r} "
                        f"failed ({error}): tried again in {S3_ALARM_REPEAT_SECONDS}s")
            return
        self._lost, self._paused, self._written = False, False, []
        self.state.receiver, self.state.slot_state, self.state.alarm = "running", "active", None
        self.state.restorable_from = ended
        self.state.archived_through = format_lsn(self._completed_end)  # no hole on restart
        log.warning("made the replication slot %r again and took a new base backup (ended "
                    "%s): times from then on are restorable; the hole before it stays "
                    "(`verify --wal` names it)", self._wal.slot, ended)
        self._record()

    def _measure_lag(self, now: float, slot: SlotState) -> None:
        """Bytes and age of the WAL the server wrote that S3 does not hold yet."""
        current, archived = parse_lsn(slot.current_lsn), self._completed_end
        self._written, since = spooling.lag_samples(self._written, current, archived)
        changed = (self.state.current_lsn != slot.current_lsn
                   or self.state.slot_state != ("active" if slot.active else "inactive"))
        self.state.current_lsn = slot.current_lsn
        self.state.lag_bytes = max(0, current - archived)
        self.state.unarchived_since = since
        self.state.slot_state = "active" if slot.active else "inactive"
        if changed or now - self._recorded_at >= HEARTBEAT_SECONDS:
            self._record()

    def _upload(self, now: float) -> None:
        try:
            for uploaded in upload_ready(self._store, self._spool, self._encoder):
                # an older timeline's segment (left before a PITR) ends nothing of this one
                if uploaded.wal.kind == WalKind.SEGMENT and \
                        uploaded.wal.timeline == self.state.timeline:
                    end = (segment_number(uploaded.wal.name, self._segment_bytes) + 1) \
                        * self._segment_bytes
                    self._completed_end = max(self._completed_end, end)
                    self.state.archived_through = format_lsn(self._completed_end)
                self.state.timeline = max(self.state.timeline, uploaded.wal.timeline)
                self.state.last_segment, self.state.last_key = uploaded.wal.name, uploaded.key
                self.state.last_uploaded_at = spooling.utc_now_text()
                if self._s3_alarm_at is not None:
                    self._s3_alarm_at, self.state.alarm = None, None
                    log.warning("S3 takes WAL again")
                self._record()
        except ConflictingObjectError:
            raise
        except OSError as error:  # no room to encode it: the same as pg_receivewal's
            if error.errno != errno.ENOSPC:
                raise
            self._fill(now, str(error))
        except errors.S3Error as error:  # S3 down or refusing: WAL waits in the spool, loudly
            if self._s3_alarm_at is None or now - self._s3_alarm_at >= S3_ALARM_REPEAT_SECONDS:
                self._s3_alarm_at = now
                self._alarm(f"WAL cannot reach S3 ({error}); it waits in {self._spool}, "
                            f"{spooling.spool_bytes(self._spool)} bytes so far")

    def _alarm(self, text: str) -> None:
        log.error("%s", text)
        self.state.alarm = text
        self._record()
        self._on_alarm(text)

    def _cap(self, now: float) -> None:
        """Stop taking WAL over WAL_SPOOL_MAX; take it again under, or when a full disk
        has room for a segment again."""
        held, cap = spooling.spool_bytes(self._spool), self._wal.spool_max_bytes
        if not self._paused and held > cap:
            self._paused = True
            self._hold(now, spooling.over_cap_alarm(self._spool, held, cap))
        elif self._paused and held <= cap * RESUME_FRACTION:
            self._paused = False
            self._release("the WAL spool is under WAL_SPOOL_MAX again")
        if self._full and spooling.room_for(self._spool, ROOM_SEGMENTS * self._segment_bytes):
            self._full = False
            self._release("the WAL spool's disk has room again")

    def _hold(self, now: float, alarm: str) -> None:
        """Stop taking WAL (the slot keeps it on the server, up to its cap), loudly."""
        self._receiver.pause(now)
        self.state.receiver = "paused"
        self._alarm(alarm)

    def _release(self, why: str) -> None:
        self.state.receiver, self.state.alarm = "restarting", None
        log.warning("%s: taking WAL", why)
        self._record()

    def _fill(self, now: float, reason: str) -> None:
        """The spool's disk is full: stop taking WAL until it has room again."""
        if not self._full:
            self._full = True
            self._hold(now, spooling.full_disk_alarm(self._spool, reason))
        set_partials_aside(self._spool, self._segment_bytes, torn_only=True)  # room to encode

    def _force_switch(self, now: float, slot: SlotState) -> None:
        """pg_switch_wal() when WAL written has sat outside a complete segment too long."""
        completed = self._completed_end
        if ready := spooling.complete_segments(self._spool, self.state.timeline,
                                               self._segment_bytes):
            completed = max(completed, (ready[-1] + 1) * self._segment_bytes)
        if parse_lsn(slot.current_lsn) <= completed or not self._receiver.running:
            self._pending_since = None
            return
        if self._pending_since is None:
            self._pending_since = now
        elif now - self._pending_since >= self._wal.max_delay.total_seconds():
            position = self._server.switch_wal()
            log.info("forced a WAL segment switch at %s: WAL waited %.0fs (WAL_MAX_DELAY)",
                     position, now - self._pending_since)
            self._pending_since = now
            self.state.last_switch_at = spooling.utc_now_text()
            self._record()
