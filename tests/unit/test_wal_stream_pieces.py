"""The WAL stream's pure pieces: its settings, pg_receivewal's command, its exits explained."""

from __future__ import annotations

from pathlib import Path

import pytest

from backup_agent.model.errors import ConfigurationError, DatabaseError, LocalStorageError
from backup_agent.model.settings import PostgresSettings, resolve_settings
from backup_agent.postgres.replication import (
    local_clients_only,
    make_identify_command,
    make_receivewal_command,
)
from backup_agent.wal.receiver import SlotLostError, SpoolFullError, explain_exit

POSTGRES = PostgresSettings(database="app", user="backup", host="db", port=5433,
                            bin_directory=Path("/usr/lib/postgresql/18/bin"))


def test_the_wal_settings_have_defaults_and_parse_sizes_and_durations() -> None:
    defaults = resolve_settings({}, {}).wal
    assert (defaults.spool_max_bytes, defaults.max_delay.total_seconds(), defaults.slot) == \
        (2 * 1024**3, 60, "backup_agent")
    wal = resolve_settings({}, {"WAL_SPOOL_MAX": "500MB", "WAL_MAX_DELAY": "2m",
                                "WAL_SPOOL_DIR": "/srv/spool", "WAL_SLOT": "pitr"}).wal
    assert (wal.spool_max_bytes, wal.max_delay.total_seconds(), wal.spool_directory,
            wal.slot) == (500_000_000, 120, Path("/srv/spool"), "pitr")


@pytest.mark.parametrize(("variable", "value", "fragment"), [
    ("WAL_SPOOL_MAX", "lots", "is not a size"), ("WAL_SPOOL_MAX", "10MiB", "under 64MiB"),
    ("WAL_MAX_DELAY", "0.5s", "under a second"), ("WAL_MAX_DELAY", "soon", "not a duration"),
    ("WAL_SLOT", "Bad-Slot", "not a replication slot name")])
def test_a_bad_wal_setting_is_one_line_naming_it(variable: str, value: str,
                                                  fragment: str) -> None:
    with pytest.raises(ConfigurationError, match=fragment) as raised:
        resolve_settings({}, {variable: value})
    assert variable in str(raised.value)


def test_pg_receivewal_streams_synchronously_from_the_slot_with_no_password_in_argv() -> None:
    assert make_receivewal_command(POSTGRES, Path("/spool"), "backup_agent") == [
        "/usr/lib/postgresql/18/bin/pg_receivewal", "--no-password", "--host", "db",
        "--port", "5433", "--username", "backup", "--directory", "/spool",
        "--slot", "backup_agent", "--synchronous", "--no-loop"]
    identify = make_identify_command(POSTGRES)
    assert identify[-3:] == ["dbname='app' replication=database", "--command",
                             "IDENTIFY_SYSTEM"]


def test_the_stream_refuses_docker_mode() -> None:
    with pytest.raises(ConfigurationError, match="POSTGRES_CONTAINER"):
        local_clients_only(PostgresSettings(database="app", container="db"))


@pytest.mark.parametrize(("stderr", "kind", "fragment"), [
    ('pg_receivewal: error: could not send replication command "START_REPLICATION": ERROR:  '
     'can no longer get changes from replication slot "s"', SlotLostError, "ALARM"),
    ("pg_receivewal: error: requested WAL segment 000000010000000000000003 has already been "
     "removed", SlotLostError, "take a new base backup"),
    ('pg_receivewal: error: replication slot "s" does not exist', DatabaseError, "wal setup"),
    ('ERROR:  replication slot "s" is active for PID 42', DatabaseError, "another receiver"),
    ('pg_receivewal: error: could not create file "/spool/x.partial": Permission denied',
     LocalStorageError, "WAL_SPOOL_DIR"),
    # The cause is named, not pg_receivewal's last line; the stream pauses on this one.
    ('pg_receivewal: error: could not open write-ahead log file "x.partial": No space left on '
     "device\npg_receivewal: error: disconnected", SpoolFullError, "x.partial\": No space left"),
    ('FATAL:  no pg_hba.conf entry for replication connection from host "10.0.0.2"',
     DatabaseError, "wal setup"),
    ('FATAL:  password authentication failed for user "backup"', DatabaseError,
     "POSTGRES_PASSWORD")])
def test_a_final_exit_is_explained(stderr: str, kind: type[Exception], fragment: str) -> None:
    error = explain_exit(stderr, POSTGRES, "s")
    assert isinstance(error, kind) and fragment in str(error), error


def test_a_dropped_connection_is_worth_a_restart() -> None:
    assert explain_exit("pg_receivewal: error: unexpected termination of replication stream: "
                        "server closed the connection unexpectedly", POSTGRES, "s") is None


def test_a_torn_partial_of_zeros_is_deleted_one_with_wal_set_aside_a_whole_one_kept(
        tmp_path: Path) -> None:
    from backup_agent.wal.spool import set_partials_aside

    (tmp_path / "000000010000000000000001.partial").write_bytes(b"\0" * 1000)  # padding cut
    (tmp_path / "000000010000000000000002.partial").write_bytes(b"\0\1" * 500)
    (tmp_path / "000000010000000000000003.partial").write_bytes(b"\0" * 4096)  # whole
    moved = set_partials_aside(tmp_path, 4096, torn_only=True)
    assert [path.name.split(".")[0] for path in moved] == ["000000010000000000000002"]
    assert sorted(path.name for path in tmp_path.glob("*.partial")) == [
        "000000010000000000000003.partial"]


def test_status_reads_the_stream_s_state_from_the_spool(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from backup_agent.actions.status import wal_status
    from backup_agent.wal.spool import write_state

    settings = resolve_settings({}, {"WAL_SPOOL_DIR": str(tmp_path), "WAL_MAX_DELAY": "60s"})
    now = datetime(2026, 12, 2, 21, 0, 30, tzinfo=UTC)
    assert wal_status(settings, now) is None  # the stream never ran here
    state = {"last_segment": "000000010000000000000003", "slot": "backup_agent",
             "slot_state": "active", "last_uploaded_at": "2026-12-02T20:59:00+00:00",
             "updated_at": "2026-12-02T21:00:25+00:00", "lag_bytes": 0,
             "unarchived_since": None, "receiver": "running", "alarm": None}
    write_state(tmp_path, state)
    status = wal_status(settings, now)
    assert status is not None
    # Idle: everything written is in S3, however long ago the last upload was.
    assert (status["lag_seconds"], status["lag_bytes"], status["slot"], status["problem"]) == \
        (0.0, 0, "active", None)
    assert (status["last_segment"], status["receiver"]) == \
        ("000000010000000000000003", "running")

    write_state(tmp_path, {**state, "unarchived_since": "2026-12-02T20:57:00+00:00",
                           "lag_bytes": 4096, "alarm": "WAL cannot reach S3 (timeout)"})
    behind = wal_status(settings, now)
    assert behind is not None and behind["lag_seconds"] == 210.0
    assert "over 3m" in behind["problem"] and "cannot reach S3" in behind["problem"]

    def problem_with(**changes: str) -> str:
        write_state(tmp_path, {**state, **changes})
        status = wal_status(settings, now)
        assert status is not None and status["problem"] is not None
        return str(status["problem"])

    assert "slot was lost" in problem_with(slot_state="lost")
    silent = problem_with(updated_at="2026-12-02T20:50:00+00:00")
    assert "is `backup-agent wal stream` running?" in silent
    assert "since 2026-12-02 20:50:00+00:00" in silent
    # Killed, it cannot say so: a minute of silence is enough, whatever WAL_MAX_DELAY.
    assert "has not reported since" in problem_with(updated_at="2026-12-02T20:59:25+00:00")
    # A heartbeat from the future is a clock's mistake (or a planted file), not a live stream.
    assert "is `backup-agent wal stream` running?" in problem_with(
        updated_at="2099-01-01T00:00:00+00:00")
    # A stream that ended says so as it does: flagged at once, not after minutes of silence.
    stopped = problem_with(receiver="stopped", slot_state="inactive")
    assert "the WAL stream stopped at" in stopped
    assert "start `backup-agent wal stream` again" in stopped
    # Making its lost slot again, its receiver is stopped but the stream runs.
    assert "slot was lost" in problem_with(receiver="stopped", slot_state="lost")


def test_a_restarted_stream_keeps_what_s3_holds_from_the_last_run(tmp_path: Path) -> None:
    from backup_agent.wal.spool import resumed_state, write_state

    write_state(tmp_path, {"system_identifier": "7", "slot": "backup_agent", "timeline": 1,
                           "last_segment": "000000010000000000000003",
                           "archived_through": "0/4000000", "receiver": "stopped",
                           "last_uploaded_at": "2026-12-02T20:59:00+00:00", "alarm": "old"})
    assert (tmp_path / ".backup-agent" / "state.json").stat().st_mode & 0o077 == 0
    state = resumed_state(tmp_path, "7", 1, "backup_agent")
    assert (state.last_segment, state.archived_through, state.last_uploaded_at) == \
        ("000000010000000000000003", "0/4000000", "2026-12-02T20:59:00+00:00")
    assert (state.receiver, state.alarm) == ("starting", None)
    # Another server or slot: nothing carried over (its segments are not this archive's).
    assert resumed_state(tmp_path, "8", 1, "backup_agent").last_segment is None
    assert resumed_state(tmp_path, "7", 1, "other").last_segment is None
    # After a PITR's timeline switch: the last segment is still S3's, positions are not.
    switched = resumed_state(tmp_path, "7", 2, "backup_agent")
    assert (switched.last_segment, switched.archived_through) == \
        ("000000010000000000000003", None)


def test_a_restart_does_not_make_old_wal_young(tmp_path: Path) -> None:
    from backup_agent.wal.spool import resumed_state, still_waiting, write_state

    write_state(tmp_path, {"system_identifier": "7", "slot": "backup_agent", "timeline": 1,
                           "unarchived_since": "2026-12-02T20:59:00+00:00",
                           "current_lsn": "0/5000100", "archived_through": "0/5000000"})
    state = resumed_state(tmp_path, "7", 1, "backup_agent")
    # The lag's clock starts from when the last run first saw that WAL waiting.
    assert still_waiting(state) == [("2026-12-02T20:59:00+00:00", 0x5000100)]
    write_state(tmp_path, {"system_identifier": "7", "slot": "backup_agent", "timeline": 1,
                           "unarchived_since": None, "current_lsn": "0/5000100"})
    assert still_waiting(resumed_state(tmp_path, "7", 1, "backup_agent")) == []


def test_a_hole_is_not_hidden_by_segments_after_it_in_the_spool(tmp_path: Path) -> None:
    from backup_agent.wal.spool import hole_before, resumed_state, write_state

    size = 16 * 1024 * 1024
    write_state(tmp_path, {"system_identifier": "7", "slot": "backup_agent", "timeline": 1,
                           "archived_through": "0/3000000", "slot_state": "lost"})
    state = resumed_state(tmp_path, "7", 1, "backup_agent")
    assert state.slot_state == "lost"  # stopped before the base backup after the hole
    (tmp_path / "000000010000000000000003").write_bytes(b"")  # continues the archive
    assert hole_before(tmp_path, state, 4 * size, size) is None
    # Segments the new slot received after a hole do not bridge it.
    (tmp_path / "000000010000000000000006").write_bytes(b"")
    assert hole_before(tmp_path, state, 7 * size, size) is not None
    # Nor does an older timeline's segment, left in the spool before a PITR's switch.
    from backup_agent.wal.spool import StreamState

    on_two = StreamState(system_identifier="7", timeline=2, slot="backup_agent", pid=1,
                         archived_through="0/3000000")
    assert hole_before(tmp_path, on_two, 4 * size, size) is not None  # 1's 03 is no bridge
    # A state.json whose LSN does not parse is not carried over (no crash on restart).
    write_state(tmp_path, {"system_identifier": "7", "slot": "backup_agent", "timeline": 1,
                           "archived_through": "nonsense"})
    assert resumed_state(tmp_path, "7", 1, "backup_agent").archived_through is None
