"""WAL positions and file names as PostgreSQL writes them, for the physical layer.

(`wal/names.py` has the archive's side of the same rules; this layer sits below it.)
"""

from __future__ import annotations

import re
from pathlib import Path

SEGMENT_NAME = re.compile(r"^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})$")


def parse_lsn(text: str) -> int:
    """Return the byte position of an LSN written as PostgreSQL does (`0/16B3748`)."""
    high, separator, low = text.strip().partition("/")
    if not separator:
        raise ValueError(f"{text!r} is not an LSN")
    return (int(high, 16) << 32) | int(low, 16)


def format_lsn(position: int) -> str:
    return f"{position >> 32:X}/{position & 0xFFFF_FFFF:X}"


def segment_number(lsn: int, segment_bytes: int) -> int:
    return lsn // segment_bytes


def segment_file(timeline: int, number: int, segment_bytes: int) -> str:
    per_id = 0x1_0000_0000 // segment_bytes
    return f"{timeline:08X}{number // per_id:08X}{number % per_id:08X}"


def later_segment(directory: Path, name: str) -> str | None:
    """Return a segment in `directory` on `name`'s timeline or a newer one that comes after
    `name`, if there is one (then a missing `name` is a hole, not the end)."""
    match = SEGMENT_NAME.match(name)
    if match is None:
        return None
    later = sorted(path.name for path in directory.iterdir()
                   if (other := SEGMENT_NAME.match(path.name)) is not None
                   and other.group(1) >= match.group(1)
                   and other.group(2, 3) > match.group(2, 3))
    return later[0] if later else None
