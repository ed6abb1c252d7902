"""Read facts off a cluster directory and WAL files with PostgreSQL's own tools.

pg_controldata gives a base backup's system identifier and WAL segment size; pg_waldump
gives the commit (and abort) times of WAL records, which bound the moments a restore can
reach: T must not come before the base backup's last commit, nor at or after the archive's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from backup_agent import execute
from backup_agent.model.errors import RestoreError, ToolMissingError, VerificationError
from backup_agent.physical.commands import (
    ENVIRONMENT,
    make_controldata_command,
    make_waldump_command,
)
from backup_agent.physical.wal_files import parse_lsn

# `desc: COMMIT 2026-12-02 21:06:32.881409 UTC` (COMMIT_PREPARED and ABORT likewise).
_RECORD = re.compile(r"lsn: ([0-9A-F]+/[0-9A-F]+), .*desc: (?:COMMIT|ABORT)(?:_PREPARED \d+:)? "
                     r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?) UTC")


# pg_controldata's warnings when pg_control was written on another CPU architecture: the
# other byte order, or another layout (32/64-bit, alignment) that its CRC does not cover.
_FOREIGN = ("byte ordering mismatch", "crc checksum does not match")
_VERSION = re.compile(r"\(PostgreSQL\) (\d+)")


@dataclass(frozen=True)
class ControlFacts:
    system_identifier: str
    segment_bytes: int
    foreign: str | None = None  # pg_controldata's warning that this machine cannot run it


def control_facts(bin_directory: Path | None, data_directory: Path) -> ControlFacts:
    """Return what pg_control says; raise RestoreError when it cannot be read."""
    completed = execute.run(make_controldata_command(bin_directory, data_directory),
                            environment=ENVIRONMENT)
    fields = dict(line.split(":", 1) for line in completed.stdout.splitlines() if ":" in line)
    try:
        return ControlFacts(system_identifier=fields["Database system identifier"].strip(),
                            segment_bytes=int(fields["Bytes per WAL segment"].strip()),
                            foreign=next((line.strip() for line in completed.stderr.splitlines()
                                          if any(text in line.lower() for text in _FOREIGN)),
                                         None))
    except (KeyError, ValueError):
        raise RestoreError(f"pg_controldata could not read {data_directory} "
                           f"({completed.stderr.strip()[:200]}): is it a base backup of "
                           "PostgreSQL, made with this major version?") from None


def refuse_incompatible(bin_directory: Path | None, data_directory: Path, facts: ControlFacts,
                        *, system_identifier: str | None) -> None:
    """Raise before anything starts when this machine's binaries cannot run the extracted
    base backup (another major, another CPU architecture: ToolMissingError) or it is not
    the cluster its descriptor names (VerificationError)."""
    completed = execute.run([*make_controldata_command(bin_directory, data_directory)[:1],
                             "--version"], environment=ENVIRONMENT)
    binaries = _VERSION.search(completed.stdout)
    try:
        cluster = (data_directory / "PG_VERSION").read_text().strip().split(".")[0]
    except OSError:
        cluster = "unknown (no PG_VERSION)"
    if binaries is None or binaries.group(1) != cluster:
        raise ToolMissingError(
            f"the base backup is PostgreSQL {cluster}, these binaries are "
            f"{binaries.group(1) if binaries else 'unknown'} ({completed.stdout.strip()}): set "
            f"PG_BINDIR to PostgreSQL {cluster}'s bin directory (or run the postgres:{cluster} "
            "image)")
    if facts.foreign is not None:
        raise ToolMissingError(f"this machine cannot run the base backup: pg_controldata says "
                               f"'{facts.foreign}' (it was made on another CPU architecture); "
                               "restore on a machine of the server's architecture")
    if system_identifier is not None and facts.system_identifier != system_identifier:
        raise VerificationError(f"the base backup's pg_control names cluster "
                                f"{facts.system_identifier}, its descriptor {system_identifier}:"
                                " it is not the backup it claims to be; nothing was started")


def transaction_times(bin_directory: Path | None, wal_directory: Path, first: str,
                      last: str) -> list[tuple[int, datetime]]:
    """Return (LSN, time) of every commit and abort in segments `first` through `last`.

    pg_waldump complains at the end of the last segment it has (a segment still being
    written ends in zeros): its records up to there are still good, so its exit code is not
    the verdict; a run that found no record at all says why."""
    completed = execute.run(make_waldump_command(bin_directory, wal_directory, first, last),
                            environment=ENVIRONMENT, timeout=300)
    found = [(parse_lsn(match.group(1)),
              datetime.strptime(match.group(2) + ("" if "." in match.group(2) else ".0"),
                                "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC))
             for match in map(_RECORD.search, completed.stdout.splitlines()) if match]
    if not found and completed.returncode != 0 and "could not find" not in completed.stderr:
        raise RestoreError(f"pg_waldump could not read {first}..{last} in {wal_directory}: "
                           f"{completed.stderr.strip()[:300]}")
    return found


def last_commit_before(bin_directory: Path | None, wal_directory: Path, first: str, last: str,
                       end_lsn: int) -> datetime | None:
    """Return the time of the last commit or abort before `end_lsn` (a base backup's end)
    in segments `first` through `last`, or None when there is none."""
    times = [moment for lsn, moment in transaction_times(bin_directory, wal_directory, first,
                                                         last) if lsn < end_lsn]
    return max(times, default=None)


def last_commit_in(bin_directory: Path | None, wal_directory: Path,
                   segments: list[str]) -> datetime | None:
    """Return the last commit or abort time in the newest of `segments` (oldest first) that
    holds one, or None."""
    for name in reversed(segments):
        times = [moment for _lsn, moment in transaction_times(bin_directory, wal_directory,
                                                              name, name)]
        if times:
            return max(times)
    return None
