"""`wal stream`'s loop: receive, upload, force a segment switch when WAL waits too long.

Each tick (a quarter of WAL_MAX_DELAY, at most a second): restart pg_receivewal if it
ended for a reason a restart can fix, upload every complete file in the spool, stop taking
WAL while the spool is over WAL_SPOOL_MAX (the slot's max_slot_wal_keep_size then protects
the server) and take it again once uploads brought it under, read the slot (a lost slot
ends the stream, loudly), and call pg_switch_wal() when WAL has waited past WAL_MAX_DELAY
outside a complete segment. The state goes to the spool's `.backup-agent/state.json` after
every change, for `status`.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from backup_agent.model.errors import ConfigurationError, DatabaseError, S3Error
from backup_agent.model.settings import PostgresSettings
from backup_agent.model.wal_settings import WalSettings
from backup_agent.postgres.replication import (
    MINIMUM_SERVER_MAJOR,
    SlotState,
    WalServer,
    identify_system,
    local_clients_only,
)
from backup_agent.wal.names import WalKind, format_lsn, parse_lsn, segment_number
from backup_agent.wal.receiver import Receiver, slot_lost
from backup_agent.wal.spool import (
    ready_files,
    set_partials_aside,
    spool_bytes,
    trim_aside,
    write_state,
)
from backup_agent.wal.uploader import ConflictingObjectError, Encoder, upload_ready

if TYPE_CHECKING:
    from backup_agent.storage.s3 import S3Store

log = logging.getLogger(__name__)

RESUME_FRACTION = 0.8  # a paused stream takes WAL again below 80% of WAL_SPOOL_MAX
S3_ALARM_REPEAT_SECONDS = 60
# The state is written at least this often, so `status` can tell a quiet stream from a
# dead one.
HEARTBEAT_SECONDS = 10


def utc_now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass
class StreamState:
    """What `status` reads from the spool while (and after) the stream runs."""

    system_identifier: str
    timeline: int
    slot: str
    pid: int
    receiver: str = "starting"  # running, paused (spool full), restarting, stopped
    last_segment: str | None = None
    last_key: str | None = None
    last_uploaded_at: str | None = None
    archived_through: str | None = None  # LSN: every byte before it is in S3
    current_lsn: str | None = None  # the server's, at the last tick
    lag_bytes: int = 0  # WAL written but not yet in S3, at the last tick
    # When the oldest WAL not yet in S3 was first seen written (None: all of it is in S3).
    unarchived_since: str | None = None
    slot_state: str = "inactive"  # active, inactive, lost
    last_switch_at: str | None = None
    alarm: str | None = None
    updated_at: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Stream:
    """One `wal stream` run: build with the store and settings, then `run`."""

    def __init__(self, store: S3Store, postgres: PostgresSettings, wal: WalSettings,
                 encoder_for: Callable[[str], Encoder], *,
                 on_alarm: Callable[[str], None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        local_clients_only(postgres)
        self._store, self._postgres, self._wal = store, postgres, wal
        self._encoder_for = encoder_for
        self._on_alarm = on_alarm or (lambda text: None)
        self._clock = clock
        self._spool = wal.spool_directory
        self._tick_seconds = max(0.1, min(1.0, wal.max_delay.total_seconds() / 4))
        self._paused = False
        self._pending_since: float | None = None
        self._s3_alarm_at: float | None = None
        # (when first seen, LSN) as the server's position moves: the lag's clock.
        self._written: list[tuple[str, int]] = []
        self._recorded_at = clock()

    def _prepare(self) -> None:
        if not self._spool.is_dir() or not os.access(self._spool, os.W_OK):
            raise ConfigurationError(f"WAL_SPOOL_DIR {self._spool} is not a writable "
                                     "directory: create it for the agent's user (mode 700)")
        identity = identify_system(self._postgres)
        self._server = WalServer(self._postgres)
        major, self._segment_bytes = self._server.facts()
        if major < MINIMUM_SERVER_MAJOR:
            raise DatabaseError(f"the WAL stream needs PostgreSQL {MINIMUM_SERVER_MAJOR} or "
                                f"newer (the server is {major}): pg_receivewal resumes from "
                                "its slot only from 15 on")
        slot = self._slot()
        self._encoder = self._encoder_for(identity.system_identifier)
        self.state = StreamState(system_identifier=identity.system_identifier,
                                 timeline=identity.timeline, slot=self._wal.slot,
                                 pid=os.getpid())
        # Everything before the slot's segment is complete: only later WAL can be waiting.
        start = parse_lsn(slot.restart_lsn or slot.current_lsn)
        self._completed_end = start - start % self._segment_bytes
        set_partials_aside(self._spool, self._segment_bytes)
        trim_aside(self._spool)
        self._receiver = Receiver(self._postgres, self._spool, self._wal.slot)

    def _slot(self) -> SlotState:
        slot = self._server.slot(self._wal.slot)
        if slot is None:
            raise DatabaseError(f"the replication slot {self._wal.slot!r} does not exist: run "
                                "`backup-agent wal setup --yes` (or fix WAL_SLOT)")
        if slot.lost:
            if hasattr(self, "state"):
                self.state.slot_state = "lost"
                self._record()
            raise slot_lost(self._wal.slot, f"wal_status {slot.wal_status}")
        return slot

    def _record(self) -> None:
        self._recorded_at = self._clock()
        self.state.updated_at = utc_now_text()
        write_state(self._spool, self.state.to_dict())

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
            self._record()
        return self.state

    def _tick(self, now: float) -> None:
        self._receiver.check(now)
        self._upload(now)
        self._cap(now)
        if not self._paused and self._receiver.start_when_due(now):
            self.state.receiver = "running"
            self._record()
        slot = self._slot()
        self._measure_lag(now, slot)
        self._force_switch(now, slot)

    def _measure_lag(self, now: float, slot: SlotState) -> None:
        """Bytes and age of the WAL the server wrote that S3 does not hold yet."""
        current = parse_lsn(slot.current_lsn)
        archived = self._completed_end
        if not self._written or self._written[-1][1] != current:
            self._written.append((utc_now_text(), current))
        # Keep the first sample past what S3 holds (and the newest): its time is the lag's.
        self._written = [sample for index, sample in enumerate(self._written)
                         if sample[1] > archived or index == len(self._written) - 1]
        waiting = [seen for seen, position in self._written if position > archived]
        changed = (self.state.current_lsn != slot.current_lsn
                   or self.state.slot_state != ("active" if slot.active else "inactive"))
        self.state.current_lsn = slot.current_lsn
        self.state.lag_bytes = max(0, current - archived)
        self.state.unarchived_since = waiting[0] if waiting else None
        self.state.slot_state = "active" if slot.active else "inactive"
        if changed or now - self._recorded_at >= HEARTBEAT_SECONDS:
            self._record()

    def _upload(self, now: float) -> None:
        try:
            for uploaded in upload_ready(self._store, self._spool, self._encoder):
                if uploaded.wal.kind == WalKind.SEGMENT:
                    end = (segment_number(uploaded.wal.name, self._segment_bytes) + 1) \
                        * self._segment_bytes
                    self._completed_end = max(self._completed_end, end)
                    self.state.archived_through = format_lsn(self._completed_end)
                self.state.timeline = max(self.state.timeline, uploaded.wal.timeline)
                self.state.last_segment, self.state.last_key = uploaded.wal.name, uploaded.key
                self.state.last_uploaded_at = utc_now_text()
                if self._s3_alarm_at is not None:
                    self._s3_alarm_at, self.state.alarm = None, None
                    log.warning("S3 takes WAL again")
                self._record()
        except ConflictingObjectError:
            raise
        except S3Error as error:  # S3 down or refusing: WAL waits in the spool, loudly
            if self._s3_alarm_at is None or now - self._s3_alarm_at >= S3_ALARM_REPEAT_SECONDS:
                self._s3_alarm_at = now
                self._alarm(f"WAL cannot reach S3 ({error}); it waits in {self._spool}, "
                            f"{spool_bytes(self._spool)} bytes so far")

    def _alarm(self, text: str) -> None:
        log.error("%s", text)
        self.state.alarm = text
        self._record()
        self._on_alarm(text)

    def _cap(self, now: float) -> None:
        held = spool_bytes(self._spool)
        cap = self._wal.spool_max_bytes
        if not self._paused and held > cap:
            self._paused = True
            self._receiver.pause(now)
            self.state.receiver = "paused"
            self._alarm(f"ALARM: the WAL spool {self._spool} holds {held} bytes, over "
                        f"WAL_SPOOL_MAX ({cap}): stopped taking WAL until uploads catch up; "
                        "the server keeps WAL for the slot up to max_slot_wal_keep_size, "
                        "then drops the slot (check S3)")
        elif self._paused and held <= cap * RESUME_FRACTION:
            self._paused = False
            self.state.receiver, self.state.alarm = "restarting", None
            log.warning("the WAL spool is under WAL_SPOOL_MAX again: taking WAL")
            self._record()

    def _force_switch(self, now: float, slot: SlotState) -> None:
        """pg_switch_wal() when WAL written has sat outside a complete segment too long."""
        completed = self._completed_end
        ready = [wal for wal, _path in ready_files(self._spool) if wal.kind == WalKind.SEGMENT]
        if ready:
            completed = max(completed, (segment_number(ready[-1].name, self._segment_bytes)
                                        + 1) * self._segment_bytes)
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
            self.state.last_switch_at = utc_now_text()
            self._record()
