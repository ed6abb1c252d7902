"""How the recovering server gets its WAL: a restore_command that waits for the agent.

The server's `restore_command` is a small shell script the agent writes into the WAL
directory. For each file the server asks for it records the name in `asked`, then waits
for the agent's answer, which is one of three files:

    <name>           the file itself, proven (the script copies it; `cp`, nothing else)
    <name>.absent    the archive ends before it: exit 1, so recovery ends there
    <name>.refused   it must not end here (a hole in the archive, an unproven segment):
                     exit 126, which PostgreSQL treats as fatal, so the server stops
                     rather than end recovery (and perhaps promote) at the wrong place

The agent answers from its own process (`serve`), so WAL can be fetched ahead while the
server replays. The script gives up (exit 126) when the agent's process is gone or no
answer came within its limit: a server left alone never ends recovery early.
"""

from __future__ import annotations

import contextlib
import os
import shlex
from enum import StrEnum
from pathlib import Path
from typing import Protocol

from backup_agent.physical.wal_files import SEGMENT_NAME, later_segment

SCRIPT = "restore_wal.sh"
ASKED = "asked"
ABSENT = ".absent"
REFUSED = ".refused"
# PostgreSQL aborts recovery when restore_command exits above 125 ("not found" is 1).
FATAL_STATUS = 126

_SCRIPT_TEXT = """#!/bin/sh
# restore_command of a backup-agent point-in-time restore (backup_agent/physical/handout.py):
# hand PostgreSQL the WAL file the agent proved, waiting while the agent fetches it.
directory=$1 name=$2 target=$3
printf '%s\\n' "$name" > "$directory/.asked.$$" && mv -f "$directory/.asked.$$" "$directory/asked"
tenths=0
while [ "$tenths" -lt {limit_tenths} ]; do
    if [ -f "$directory/$name" ]; then exec cp "$directory/$name" "$target"; fi
    if [ -f "$directory/$name.absent" ]; then exit 1; fi
    if [ -f "$directory/$name.refused" ]; then exit {fatal}; fi
    if [ ! -d /proc/{agent} ]; then
        echo "backup-agent (pid {agent}) is gone: not ending recovery at $name" >&2; exit {fatal}
    fi
    sleep 0.1
    tenths=$((tenths + 1))
done
echo "backup-agent gave no answer for $name within {limit} s" >&2
exit {fatal}
"""


class Offer(StrEnum):
    READY = "ready"  # the file is in the directory
    WAIT = "wait"  # it is being fetched
    NONE = "none"  # the archive ends before it
    REFUSE = "refuse"  # recovery must not end here: stop the server


class WalSupply(Protocol):
    """Where the agent's WAL comes from (a local directory, the prefetcher)."""

    def offer(self, name: str) -> Offer: ...

    def problem(self) -> str | None:
        """Why the supply stopped short (a hole, an unproven segment), if it did."""
        ...


def write_script(directory: Path, *, limit_seconds: int, owner: tuple[int, int] | None) -> Path:
    """Write the restore_command script into `directory`; return its path."""
    path = directory / SCRIPT
    path.write_text(_SCRIPT_TEXT.format(limit_tenths=limit_seconds * 10, limit=limit_seconds,
                                        fatal=FATAL_STATUS, agent=os.getpid()))
    path.chmod(0o755)
    if owner is not None:
        os.chown(path, *owner)
    return path


def restore_command(script: Path) -> str:
    """Return the restore_command setting that runs `script` on the WAL directory."""
    return f"{shlex.quote(str(script))} {shlex.quote(str(script.parent))} %f %p"


def serve(directory: Path, supply: WalSupply, answered: set[str]) -> str | None:
    """Answer the server's current request, if any and not answered yet; return its name."""
    try:
        name = (directory / ASKED).read_text().strip()
    except FileNotFoundError:
        return None
    if not name or name in answered or "/" in name:
        return name or None
    offer = supply.offer(name)
    if offer is Offer.NONE:
        (directory / f"{name}{ABSENT}").touch()
    elif offer is Offer.REFUSE:
        (directory / f"{name}{REFUSED}").touch()
    if offer in (Offer.NONE, Offer.REFUSE):
        # One marker at a time: an answer about another file may change before it is
        # asked for again.
        for other in list(answered):
            for suffix in (ABSENT, REFUSED):
                with contextlib.suppress(FileNotFoundError):
                    (directory / f"{other}{suffix}").unlink()
            answered.discard(other)
        answered.add(name)
    return name


class LocalWal:
    """WAL files already in the directory (copied there, or an archive on this machine)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._problem: str | None = None

    def offer(self, name: str) -> Offer:
        if (self.directory / name).is_file():
            return Offer.READY
        if SEGMENT_NAME.match(name) and (later := later_segment(self.directory, name)):
            self._problem = (f"WAL segment {name} is missing from {self.directory} while "
                             f"{later} exists: the archive has a hole, so nothing after it "
                             "can be replayed")
            return Offer.REFUSE
        return Offer.NONE

    def problem(self) -> str | None:
        return self._problem
