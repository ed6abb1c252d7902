"""Point-in-time restore's pure pieces: the target, the window, the server's settings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from backup_agent.model.errors import ConfigurationError
from backup_agent.model.targets import RecoveryTarget, Window, parse_target, postgres_time
from backup_agent.physical.commands import make_server_command, recovery_settings
from backup_agent.physical.handout import restore_command


def test_a_time_needs_an_offset_and_latest_is_the_end() -> None:
    assert parse_target("latest").latest
    target = parse_target("2026-12-02T21:05:09.5Z")
    assert target.moment == datetime(2026, 12, 2, 21, 5, 9, 500000, tzinfo=UTC)
    moment = parse_target("2026-12-02 21:05:09+09:00").moment
    assert moment is not None and postgres_time(moment) == "2026-12-02 21:05:09+09:00"
    with pytest.raises(ConfigurationError, match="no UTC offset: add one"):
        parse_target("2026-12-02 21:05:09")
    with pytest.raises(ConfigurationError, match="is not a time"):
        parse_target("yesterday")


def test_the_window_refuses_before_the_base_and_at_or_after_the_last_commit() -> None:
    start = datetime(2026, 12, 2, 21, 0, tzinfo=UTC)
    window = Window(earliest=start, latest=start + timedelta(hours=1))
    window.check(RecoveryTarget(moment=start))
    window.check(RecoveryTarget(moment=None))
    with pytest.raises(ConfigurationError, match="before the base backup's end"):
        window.check(RecoveryTarget(moment=start - timedelta(microseconds=1)))
    with pytest.raises(ConfigurationError, match="use --to-time latest"):
        window.check(RecoveryTarget(moment=start + timedelta(hours=1)))


def test_recovery_travels_on_the_command_line_pausing_at_the_target() -> None:
    command = restore_command(Path("/tmp/wal dir/restore_wal.sh"))
    assert command == "'/tmp/wal dir/restore_wal.sh' '/tmp/wal dir' %f %p"
    settings = recovery_settings(restore_command=command, target_time="2026-12-02 21:05:09+00:00",
                                 timeline=2)
    assert make_server_command(Path("/pg/bin"), Path("/data"), settings) == [
        "/pg/bin/postgres", "-D", "/data", "-c", f"restore_command={command}",
        "-c", "recovery_target_timeline=2", "-c", "recovery_target=", "-c",
        "recovery_target_lsn=", "-c", "recovery_target_name=", "-c", "recovery_target_xid=",
        "-c", "recovery_target_time=2026-12-02 21:05:09+00:00",
        "-c", "recovery_target_inclusive=on", "-c", "recovery_target_action=pause"]
    latest = recovery_settings(restore_command=command, target_time=None, timeline=1)
    assert latest["recovery_target_time"] == "" and "recovery_target_action" not in latest
