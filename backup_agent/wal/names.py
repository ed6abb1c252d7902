"""Where each archived file lives in the bucket: key naming for WAL and base backups.

Keys are relative to S3_PREFIX (as backups' are), and name the cluster by its system
identifier, so that two clusters can share one bucket and prefix:

    wal/<system identifier>/<timeline>/<segment file name>     a WAL segment
    wal/<system identifier>/<timeline>/<TTTTTTTT>.history     a timeline history file
    base/<system identifier>/<stamp>/<file>                   one base backup's files

`<timeline>` is the timeline as PostgreSQL writes it in file names: 8 upper-case hex digits
(`00000001`), so keys sort in WAL order. A history file lives under the timeline it starts.
`<stamp>` is the base backup's start in UTC, `YYYYMMDDTHHMMSSZ`. Key names never carry the
encoding: the object's metadata says how it is stored (see `objects`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from backup_agent.model.wal_positions import format_lsn as format_lsn
from backup_agent.model.wal_positions import parse_lsn as parse_lsn
from backup_agent.model.wal_positions import segment_name as segment_name

WAL_ROOT = "wal/"
BASE_ROOT = "base/"
SEGMENT_PATTERN = re.compile(r"^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})$")
HISTORY_PATTERN = re.compile(r"^([0-9A-F]{8})\.history$")
# pg_control_system().system_identifier: an unsigned 64-bit number, in decimal.
SYSTEM_IDENTIFIER_PATTERN = re.compile(r"^[1-9][0-9]{0,19}$")
STAMP_FORMAT = "%Y%m%dT%H%M%SZ"
STAMP_PATTERN = re.compile(r"^[0-9]{8}T[0-9]{6}Z$")


class WalKind(StrEnum):
    SEGMENT = "segment"
    HISTORY = "history"


@dataclass(frozen=True, order=True)
class WalFile:
    """One file of the WAL archive, as pg_receivewal names it in the spool."""

    timeline: int
    name: str
    kind: WalKind

    @property
    def timeline_text(self) -> str:
        return f"{self.timeline:08X}"


def parse_wal_name(name: str) -> WalFile | None:
    """Return the WAL file `name` is (a segment or a .history file), or None if neither.

    Timeline 0 does not exist; `.partial` and anything else is not an archived file."""
    if match := SEGMENT_PATTERN.match(name):
        timeline, kind = int(match.group(1), 16), WalKind.SEGMENT
    elif match := HISTORY_PATTERN.match(name):
        timeline, kind = int(match.group(1), 16), WalKind.HISTORY
    else:
        return None
    return WalFile(timeline=timeline, name=name, kind=kind) if timeline else None


def check_system_identifier(system_identifier: str) -> str:
    """Return `system_identifier` if it is one; raise ValueError otherwise (it ends up in
    keys: nothing but digits may)."""
    if not SYSTEM_IDENTIFIER_PATTERN.match(system_identifier):
        raise ValueError(f"{system_identifier!r} is not a PostgreSQL system identifier")
    return system_identifier


def wal_key(system_identifier: str, wal: WalFile) -> str:
    """Return the key (relative to S3_PREFIX) of a WAL file of this cluster."""
    return (f"{WAL_ROOT}{check_system_identifier(system_identifier)}/{wal.timeline_text}/"
            f"{wal.name}")


def timeline_prefix(system_identifier: str, timeline: int) -> str:
    """Return the key prefix holding one timeline's segments and its history file."""
    return f"{WAL_ROOT}{check_system_identifier(system_identifier)}/{timeline:08X}/"


def parse_wal_key(key: str) -> tuple[str, WalFile] | None:
    """Return the system identifier and WAL file a relative key names, or None when it is
    not exactly a key `wal_key` makes (the timeline folder must agree with the name)."""
    parts = key.split("/")
    if len(parts) != 4 or f"{parts[0]}/" != WAL_ROOT \
            or not SYSTEM_IDENTIFIER_PATTERN.match(parts[1]):
        return None
    wal = parse_wal_name(parts[3])
    if wal is None or parts[2] != wal.timeline_text:
        return None
    return parts[1], wal


def base_stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(STAMP_FORMAT)


def base_key(system_identifier: str, stamp: str, file_name: str) -> str:
    """Return the key (relative to S3_PREFIX) of one file of a base backup."""
    if not STAMP_PATTERN.match(stamp) or "/" in file_name or not file_name:
        raise ValueError(f"not a base backup stamp and file name: {stamp!r}, {file_name!r}")
    return f"{BASE_ROOT}{check_system_identifier(system_identifier)}/{stamp}/{file_name}"


def parse_base_key(key: str) -> tuple[str, str, str] | None:
    """Return (system identifier, stamp, file name) of a base backup key, or None."""
    parts = key.split("/")
    if len(parts) != 4 or f"{parts[0]}/" != BASE_ROOT \
            or not SYSTEM_IDENTIFIER_PATTERN.match(parts[1]) \
            or not STAMP_PATTERN.match(parts[2]) or not parts[3]:
        return None
    return parts[1], parts[2], parts[3]


def segment_number(name: str, segment_bytes: int) -> int:
    """Return the number of the segment called `name` (its first byte // segment size)."""
    per_id = 0x1_0000_0000 // segment_bytes
    return int(name[8:16], 16) * per_id + int(name[16:24], 16)
