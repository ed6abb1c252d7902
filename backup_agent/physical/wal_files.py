"""WAL positions and file names as PostgreSQL writes them, for the physical layer.

(LSNs and segment names themselves: model/wal_positions.py, shared with wal/names.py.)
"""

from __future__ import annotations

import re
from pathlib import Path

from backup_agent.model.wal_positions import format_lsn as format_lsn
from backup_agent.model.wal_positions import parse_lsn as parse_lsn

SEGMENT_NAME = re.compile(r"^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})$")


def segment_number(lsn: int, segment_bytes: int) -> int:
    return lsn // segment_bytes


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
