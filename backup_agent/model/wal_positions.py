"""WAL positions (LSNs) and segment file names as PostgreSQL writes them: one home for the
archive (wal/names.py) and the recovery below it (physical/wal_files.py)."""

from __future__ import annotations


def parse_lsn(text: str) -> int:
    """Return the byte position of an LSN written as PostgreSQL does (`0/16B3748`)."""
    high, separator, low = text.strip().partition("/")
    if not separator:
        raise ValueError(f"{text!r} is not an LSN")
    return (int(high, 16) << 32) | int(low, 16)


def format_lsn(position: int) -> str:
    return f"{position >> 32:X}/{position & 0xFFFF_FFFF:X}"


def segment_name(timeline: int, segment_number: int, segment_bytes: int) -> str:
    """Return the file name of WAL segment `segment_number` (LSN // segment size)."""
    per_id = 0x1_0000_0000 // segment_bytes
    return f"{timeline:08X}{segment_number // per_id:08X}{segment_number % per_id:08X}"
