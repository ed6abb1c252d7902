"""The local spool (WAL_SPOOL_DIR): what pg_receivewal wrote, what is ready, what it holds.

pg_receivewal writes into the spool itself (its -D): a segment in progress as
`<segment>.partial`, renamed to `<segment>` once complete, and `.history` files. The agent
keeps its own things in the hidden `.backup-agent/` beside them, which pg_receivewal never
looks at: `aside/` (partial segments a crash left behind), `encoding/` (a segment while it
is compressed and encrypted for upload) and `state.json` (what `status` reads).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import stat
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from backup_agent.model.errors import ConfigurationError, LocalStorageError
from backup_agent.wal.names import (
    WalFile,
    WalKind,
    format_lsn,
    parse_lsn,
    parse_wal_name,
    segment_number,
)

log = logging.getLogger(__name__)

AGENT_DIRECTORY = ".backup-agent"
PARTIAL_SUFFIX = ".partial"
STATE_FILE = "state.json"
SLOT_KEEPS = ("the server keeps WAL for the slot up to max_slot_wal_keep_size, then drops "
              "the slot")


def agent_directory(spool: Path, *parts: str) -> Path:
    """Return (made if missing, private) a directory of the agent's own inside the spool."""
    directory = spool.joinpath(AGENT_DIRECTORY, *parts)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    return directory


def check_spool(spool: Path) -> None:
    """Raise LocalStorageError unless the spool is this user's and nobody else may write in
    it: every WAL file there is uploaded signed with the server's key, so a file another
    user planted (a segment, a `.history` that redirects `latest`) would be trusted."""
    if not spool.is_dir() or not os.access(spool, os.W_OK):  # never made for it here
        raise ConfigurationError(f"WAL_SPOOL_DIR {spool} is not a writable directory: create "
                                 "it for the agent's user (install -d -m 700 DIR)")
    status = spool.stat()
    if stat.S_ISDIR(status.st_mode) and status.st_uid != os.geteuid():
        raise LocalStorageError(f"WAL_SPOOL_DIR {spool} belongs to another user: chown it to "
                                "this one (what is in it is uploaded signed)")
    if status.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise LocalStorageError(f"WAL_SPOOL_DIR {spool} is writable by other users, who "
                                f"could plant WAL the server signs: chmod 700 {spool}")


def over_cap_alarm(spool: Path, held: int, cap: int) -> str:
    return (f"ALARM: the WAL spool {spool} holds {held} bytes, over WAL_SPOOL_MAX ({cap}): "
            f"stopped taking WAL until uploads catch up; {SLOT_KEEPS} (check S3)")


def full_disk_alarm(spool: Path, reason: str) -> str:
    return (f"ALARM: the WAL spool's disk is full ({spool}: {reason}; "
            f"{shutil.disk_usage(spool).free} bytes free): stopped taking WAL until it has "
            f"room for a segment again; {SLOT_KEEPS}")


def room_for(spool: Path, size: int) -> bool:
    return shutil.disk_usage(spool).free >= size


def ready_files(spool: Path) -> list[tuple[WalFile, Path]]:
    """Return the complete WAL files waiting in the spool, in archive order: by timeline,
    its history file first (a restore needs it before the new timeline's segments)."""
    found = []
    for path in spool.iterdir():
        wal = parse_wal_name(path.name)
        if wal is not None and path.is_file() and not path.is_symlink():
            found.append((wal, path))
    return sorted(found, key=lambda item: (item[0].timeline,
                                           item[0].kind != WalKind.HISTORY, item[0].name))


def complete_segments(spool: Path, timeline: int, segment_bytes: int) -> list[int]:
    """The numbers of the complete segments of `timeline` waiting in the spool, in order
    (an older timeline's, left by the run before a PITR, say nothing of this one's)."""
    return sorted(segment_number(wal.name, segment_bytes) for wal, _path in ready_files(spool)
                  if wal.kind == WalKind.SEGMENT and wal.timeline == timeline)


def spool_bytes(spool: Path) -> int:
    """Return the bytes the spool holds on disk, the agent's own files included."""
    total = 0
    for root, _directories, files in os.walk(spool):
        for name in files:
            with contextlib.suppress(FileNotFoundError):
                total += (Path(root) / name).stat().st_size
    return total


def set_partials_aside(spool: Path, segment_bytes: int | None, *,
                       torn_only: bool = False) -> list[Path]:
    """Move every `.partial` a crash left in the spool into `.backup-agent/aside/`; return
    where they went. pg_receivewal resumes from the server, not from a partial file, so
    none is ever fed back to it: an odd-sized one (a torn write) would make it refuse to
    start, and a full-sized one only repeats what the server still has in the slot.
    Full-sized ones are kept (they may hold WAL the slot has since lost) for a human.
    `torn_only`: only the odd-sized ones (a whole one is where a restart resumes), and
    one holding nothing but zeros is deleted: pg_receivewal pads a segment to its size
    before it writes WAL into it, so that is a padding cut short (a full disk, a kill), and
    keeping it would keep the disk full."""
    moved = []
    for path in sorted(spool.glob(f"*{PARTIAL_SUFFIX}")):
        size = path.stat().st_size
        if torn_only and size in (0, segment_bytes):
            continue
        if torn_only and not path.read_bytes().strip(b"\0"):
            path.unlink()
            log.warning("deleted %s (%d bytes of zeros): a segment's padding cut short",
                        path.name, size)
            continue
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        target = agent_directory(spool, "aside") / f"{path.name}.{stamp}"
        path.rename(target)
        odd = segment_bytes is not None and size != segment_bytes
        # Every stop leaves the segment being written; only a cut one is worth a warning.
        log.log(logging.WARNING if odd else logging.INFO, "moved %s (%d bytes%s), the "
                "segment the last run was writing, to %s: the stream resumes from the "
                "server's slot", path.name, size, ", not a whole segment" if odd else "",
                target)
        moved.append(target)
    return moved


def utc_now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass
class StreamState:
    """What `status` reads from the spool while (and after) `wal stream` runs."""

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
    # The end of the base backup taken after the slot was lost: the archive has a hole
    # before it, so the restorable window starts there.
    restorable_from: str | None = None
    updated_at: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# What a restarted stream keeps from the last run on the same server and slot: S3 still
# holds those segments, and `status` should not say "none" until the next one.
CARRIED_OVER = ("last_segment", "last_key", "last_uploaded_at", "last_switch_at",
                "restorable_from")
# Positions, kept only on the same timeline: after a PITR's switch the old timeline's end
# says nothing of what S3 holds of the new one.
POSITIONS = ("archived_through", "current_lsn", "unarchived_since")


def resumed_state(spool: Path, system_identifier: str, timeline: int, slot: str) -> StreamState:
    state = StreamState(system_identifier=system_identifier, timeline=timeline, slot=slot,
                        pid=os.getpid())
    previous = read_state(spool) or {}
    if (previous.get("system_identifier"), previous.get("slot")) == (system_identifier, slot):
        kept = CARRIED_OVER + (POSITIONS if previous.get("timeline") == timeline else ())
        for name in kept:
            if isinstance(previous.get(name), str) and _readable(name, previous[name]):
                setattr(state, name, previous[name])
        if previous.get("slot_state") == "lost":  # stopped before its base backup was taken
            state.slot_state = "lost"
    return state


def _readable(name: str, value: str) -> bool:
    if name not in ("archived_through", "current_lsn"):
        return True
    try:
        parse_lsn(value)
    except ValueError:
        return False
    return True


def hole_before(spool: Path, state: StreamState, start: int, segment_bytes: int) -> str | None:
    """Why the archive has a hole before `start` (where the slot's WAL begins), or None:
    what the last run archived (carried over) and the spool's complete segments end before
    it. The slot was made again while no stream ran (dropped to free pg_wal, a failover):
    the WAL between reached nobody, as with a lost slot."""
    if state.archived_through is None:
        return None
    covered = parse_lsn(state.archived_through)
    for number in complete_segments(spool, state.timeline, segment_bytes):
        if number * segment_bytes <= covered:  # only what continues the archive, no hole
            covered = max(covered, (number + 1) * segment_bytes)
    if start <= covered:
        return None
    return (f"it reserves WAL from {format_lsn(start)}, the archive ends at "
            f"{format_lsn(covered)}: it was made again while the stream was stopped")


def lag_samples(written: list[tuple[str, int]], current: int,
                archived: int) -> tuple[list[tuple[str, int]], str | None]:
    """Add the server's position `current` (first seen now) to the samples `written`; keep
    the first past what S3 holds (`archived`) and the newest. Return them and since when
    WAL has waited for S3 (None: S3 holds all of it)."""
    if not written or written[-1][1] != current:
        written = [*written, (utc_now_text(), current)]
    kept = [sample for index, sample in enumerate(written)
            if sample[1] > archived or index == len(written) - 1]
    waiting = [seen for seen, position in kept if position > archived]
    return kept, waiting[0] if waiting else None


def still_waiting(state: StreamState) -> list[tuple[str, int]]:
    """The lag's first sample from the last run: WAL up to its server position had
    waited since `unarchived_since` (none: S3 held everything then)."""
    if state.unarchived_since is None or state.current_lsn is None:
        return []
    return [(state.unarchived_since, parse_lsn(state.current_lsn))]  # carried: it parses


def write_state(spool: Path, state: Mapping[str, Any]) -> None:
    """Replace `.backup-agent/state.json` atomically (status reads it while we run)."""
    directory = agent_directory(spool)
    temporary = directory / f".{STATE_FILE}.tmp"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(json.dumps(dict(state), indent=2, sort_keys=True) + "\n")
    temporary.replace(directory / STATE_FILE)


def read_state(spool: Path) -> dict[str, Any] | None:
    """Return the stream's last recorded state, or None when it never ran here."""
    try:
        state = json.loads((spool / AGENT_DIRECTORY / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


KEEP_ASIDE = 4


def trim_aside(spool: Path, keep: int = KEEP_ASIDE) -> list[Path]:
    """Delete all but the `keep` newest partials set aside; return those deleted. Each
    stop leaves one, and the server's slot still holds what they hold unless it was lost,
    so only the last few can matter."""
    aside = spool / AGENT_DIRECTORY / "aside"
    if not aside.is_dir():
        return []
    files = sorted(aside.iterdir(), key=lambda path: path.stat().st_mtime, reverse=True)
    for path in files[keep:]:
        path.unlink()
        log.info("deleted %s: an older partial segment set aside", path)
    return files[keep:]
