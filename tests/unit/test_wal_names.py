"""The archive's key naming: what each WAL file and base backup file is called in the bucket."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from backup_agent.wal.names import (
    WalFile,
    WalKind,
    base_key,
    base_stamp,
    format_lsn,
    parse_base_key,
    parse_lsn,
    parse_wal_key,
    parse_wal_name,
    segment_name,
    timeline_prefix,
    wal_key,
)

SYSID = "7412345678901234567"


def test_a_segment_name_gives_its_timeline() -> None:
    assert parse_wal_name("0000000A0000000100000002") == WalFile(
        timeline=10, name="0000000A0000000100000002", kind=WalKind.SEGMENT)


def test_a_history_file_is_archived_under_the_timeline_it_starts() -> None:
    history = parse_wal_name("00000002.history")
    assert history == WalFile(timeline=2, name="00000002.history", kind=WalKind.HISTORY)
    assert wal_key(SYSID, history) == f"wal/{SYSID}/00000002/00000002.history"


@pytest.mark.parametrize("name", [
    "000000010000000000000001.partial", "000000010000000000000001.gz", "0000000100000000000001",
    "00000000000000000000000A",  # timeline 0 does not exist
    "0000000a0000000000000001",  # PostgreSQL writes upper case
    "00000001.history.tmp", "../00000001.history", "", "archive_status"])
def test_anything_else_is_not_a_wal_file(name: str) -> None:
    assert parse_wal_name(name) is None


def test_a_key_holds_the_system_identifier_and_timeline_and_parses_back() -> None:
    segment = parse_wal_name("000000010000000000000003")
    assert segment is not None
    key = wal_key(SYSID, segment)
    assert key == f"wal/{SYSID}/00000001/000000010000000000000003"
    assert key.startswith(timeline_prefix(SYSID, 1))
    assert parse_wal_key(key) == (SYSID, segment)


@pytest.mark.parametrize("key", [
    f"wal/{SYSID}/00000002/000000010000000000000003",  # folder and name disagree
    f"wal/{SYSID}/00000001/000000010000000000000003/x", "wal/abc/00000001/000000010000000000000003",
    f"base/{SYSID}/00000001/000000010000000000000003", f"wal/{SYSID}/000000010000000000000003"])
def test_a_key_the_archive_would_not_make_does_not_parse(key: str) -> None:
    assert parse_wal_key(key) is None


@pytest.mark.parametrize("system_identifier", ["", "abc", "0123", "1/2", "../1"])
def test_a_system_identifier_is_digits_only(system_identifier: str) -> None:
    segment = parse_wal_name("000000010000000000000003")
    assert segment is not None
    with pytest.raises(ValueError, match="system identifier"):
        wal_key(system_identifier, segment)


def test_base_backup_keys_carry_the_cluster_and_start_stamp() -> None:
    stamp = base_stamp(datetime(2026, 12, 2, 21, 5, 9, tzinfo=UTC))
    assert stamp == "20261202T210509Z"
    key = base_key(SYSID, stamp, "descriptor.json")
    assert key == f"base/{SYSID}/20261202T210509Z/descriptor.json"
    assert parse_base_key(key) == (SYSID, stamp, "descriptor.json")
    assert parse_base_key(f"base/{SYSID}/yesterday/descriptor.json") is None
    with pytest.raises(ValueError):
        base_key(SYSID, stamp, "../x/descriptor.json")


def test_segment_names_and_lsns_follow_postgresql() -> None:
    sixteen_mib = 16 * 1024 * 1024
    assert segment_name(1, parse_lsn("1/0") // sixteen_mib, sixteen_mib) \
        == "000000010000000100000000"
    assert segment_name(3, parse_lsn("0/3000028") // sixteen_mib, sixteen_mib) \
        == "000000030000000000000003"
    assert format_lsn(parse_lsn("A/16B3748")) == "A/16B3748"
    with pytest.raises(ValueError):
        parse_lsn("16B3748")
