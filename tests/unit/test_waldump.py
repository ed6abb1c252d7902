"""pg_waldump and pg_verifybackup: argv as data, their output read."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from backup_agent.model.drill import Transaction
from backup_agent.model.settings import PostgresSettings
from backup_agent.postgres.waldump import (
    make_verifybackup_command,
    make_waldump_command,
    parse_commit,
    parse_error,
    parse_transaction,
)


def test_the_commands_use_pg_bindir_and_read_only_files() -> None:
    settings = PostgresSettings(database="app", bin_directory=Path("/pg/bin"))
    assert make_waldump_command(settings, Path("/w"), 2, "0/5000000", "0/7000000") == [
        "/pg/bin/pg_waldump", "--path", "/w", "--timeline", "2", "--start", "0/5000000",
        "--end", "0/7000000", "--rmgr", "Transaction"]
    assert make_verifybackup_command(settings, Path("/d")) == [
        "/pg/bin/pg_verifybackup", "--no-parse-wal", "--quiet", "/d"]


def test_a_commit_line_gives_its_lsn_and_utc_time() -> None:
    line = ("rmgr: Transaction len (rec/tot):     34/    34, tx:        735, lsn: 0/01A8E1B0, "
            "prev 0/01A8E178, desc: COMMIT 2026-11-26 14:02:11.123456 UTC")
    assert parse_commit(line) == (0x1A8E1B0, datetime(2026, 11, 26, 14, 2, 11, 123456,
                                                      tzinfo=UTC))
    assert parse_commit("rmgr: Heap len ... desc: INSERT") is None


def test_a_bad_record_is_located() -> None:
    assert parse_error("pg_waldump: error: error in WAL record at 0/5001234: incorrect "
                       "resource manager data checksum in record at 0/5001234\n") == (
        0x5001234, "error in WAL record at 0/5001234: incorrect resource manager data "
                   "checksum in record at 0/5001234")
    assert parse_error("") == (None, "pg_waldump failed without a message")


def test_commits_and_aborts_are_read_with_their_transaction_ids() -> None:
    line = ("rmgr: Transaction len (rec/tot):     34/    34, tx:        735, lsn: 0/01A8E1B0, "
            "prev 0/01A8E178, desc: {} 2026-11-26 14:02:11.5 UTC")
    moment = datetime(2026, 11, 26, 14, 2, 11, 500000, tzinfo=UTC)
    assert parse_transaction(line.format("COMMIT")) == Transaction(0x1A8E1B0, moment, 735, True)
    assert parse_transaction(line.format("ABORT")) == Transaction(0x1A8E1B0, moment, 735, False)
    assert parse_transaction(line.format("COMMIT_PREPARED 731:")) == Transaction(
        0x1A8E1B0, moment, 731, True)
    assert parse_transaction("rmgr: Transaction ... desc: ASSIGNMENT xtop 735") is None
