"""pg_waldump and pg_verifybackup over archived files: argv as data, output read as it comes.

`verify --wal --deep` parses the WAL chain with pg_waldump (every record's CRC is checked,
whatever is printed) and checks each base backup against its manifest with
pg_verifybackup. Both run locally on downloaded files, never against a server. Only the
transaction records are printed (`--rmgr=Transaction`), for their commit times; TZ=UTC
makes pg_waldump print those in UTC.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from backup_agent import execute
from backup_agent.model.drill import Transaction
from backup_agent.model.settings import PostgresSettings

_COMMIT = re.compile(r"lsn: ([0-9A-F]+/[0-9A-F]+),.*desc: COMMIT (\d{4}-\d\d-\d\d "
                     r"\d\d:\d\d:\d\d(?:\.\d+)?) UTC")
# The drill's reading: commits and aborts with their transaction ids (2PC's are its own).
_TRANSACTION = re.compile(r"tx: +(\d+), lsn: ([0-9A-F]+/[0-9A-F]+),.*desc: (COMMIT|ABORT)"
                          r"(?:_PREPARED (\d+):)? (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?) UTC")
_ERROR_AT = re.compile(r"error in WAL record at ([0-9A-F]+/[0-9A-F]+): (.*)")


def program(settings: PostgresSettings, name: str) -> str:
    """A client program from PG_BINDIR, else from PATH (never in POSTGRES_CONTAINER: the
    files it reads are here)."""
    return str(settings.bin_directory / name) if settings.bin_directory else name


def make_waldump_command(settings: PostgresSettings, directory: Path, timeline: int,
                         start: str, end: str) -> list[str]:
    return [program(settings, "pg_waldump"), "--path", str(directory), "--timeline",
            str(timeline), "--start", start, "--end", end, "--rmgr", "Transaction"]


def make_verifybackup_command(settings: PostgresSettings, directory: Path) -> list[str]:
    # The WAL is parsed by pg_waldump over the archive; the copy has none of its own.
    return [program(settings, "pg_verifybackup"), "--no-parse-wal", "--quiet", str(directory)]


def environment() -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TZ": "UTC", "LC_ALL": "C"}


@dataclass
class Dump:
    """What pg_waldump said about one stretch: commit times by LSN, and its error if any."""

    commits: list[tuple[int, datetime]] = field(default_factory=list)
    transactions: list[Transaction] = field(default_factory=list)  # commits and aborts
    error: str | None = None
    error_lsn: int | None = None


def parse_commit(line: str) -> tuple[int, datetime] | None:
    """Return the LSN and time of a COMMIT record line, or None for any other line."""
    match = _COMMIT.search(line)
    if match is None:
        return None
    high, low = match.group(1).split("/")
    moment = datetime.fromisoformat(match.group(2) + "+00:00")
    return (int(high, 16) << 32) | int(low, 16), moment


def parse_transaction(line: str) -> Transaction | None:
    """Return the COMMIT or ABORT record on a line (a prepared one's own xid), or None."""
    match = _TRANSACTION.search(line)
    if match is None:
        return None
    high, low = match.group(2).split("/")
    return Transaction(lsn=(int(high, 16) << 32) | int(low, 16),
                       moment=datetime.fromisoformat(match.group(5) + "+00:00"),
                       xid=int(match.group(4) or match.group(1)),
                       committed=match.group(3) == "COMMIT")


def parse_error(stderr: str) -> tuple[int | None, str]:
    """Return the LSN of the bad record (None if not named) and pg_waldump's message."""
    lines = [line.removeprefix("pg_waldump: ").removeprefix("error: ")
             for line in stderr.strip().splitlines() if line.strip()]
    text = lines[-1] if lines else "pg_waldump failed without a message"
    match = _ERROR_AT.search(text)
    if match is None:
        return None, text
    high, low = match.group(1).split("/")
    return (int(high, 16) << 32) | int(low, 16), text


def dump_wal(settings: PostgresSettings, directory: Path, timeline: int, start: str,
             end: str) -> Dump:
    """Read WAL from `start` to `end` on `timeline` from the files in `directory`."""
    result = Dump()
    command = make_waldump_command(settings, directory, timeline, start, end)
    with execute.running(command, environment=environment()) as child:
        assert child.process.stdout is not None
        for raw in child.process.stdout:
            line = raw.decode("utf-8", "replace")
            commit = parse_commit(line)
            if commit is not None:
                result.commits.append(commit)
            transaction = parse_transaction(line)
            if transaction is not None:
                result.transactions.append(transaction)
        if child.wait() != 0:
            result.error_lsn, result.error = parse_error(child.stderr_text())
    return result


def verify_backup(settings: PostgresSettings, directory: Path) -> str | None:
    """Return pg_verifybackup's complaint about the extracted base backup, or None."""
    completed = execute.run(make_verifybackup_command(settings, directory),
                            environment=environment(), timeout=None)
    if completed.returncode == 0:
        return None
    return (completed.stderr.strip() or completed.stdout.strip()
            or f"pg_verifybackup exited {completed.returncode}")
