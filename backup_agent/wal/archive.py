"""The archive's catalog: what a cluster's WAL and base backups are, and which WAL is missing.

Shared knowledge of `verify --wal` and restore to a point in time: list a cluster's objects
(only keys `names` parses), read `.history` files, and walk one timeline's history to say
which segment file recovery reads for each segment number, so that gaps are found on the
path recovery follows. A timeline's history file lists every ancestor with the LSN where
it was left; segments an older timeline wrote after it was left belong to another history
and are never gaps of this one (nor, if absent, of it: WAL-G #1390 reported those).

Recovery reads segment `n` of a path from the newest timeline whose first segment is at or
before `n` (PostgreSQL's XLogFileReadAnyTLI): the segment holding a switch point is read
from the new timeline, which copied the old one's bytes up to it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from backup_agent.wal.names import (
    BASE_ROOT,
    WAL_ROOT,
    WalFile,
    WalKind,
    parse_base_key,
    parse_lsn,
    parse_wal_key,
    segment_name,
    segment_number,
)

if TYPE_CHECKING:
    from backup_agent.storage.s3 import S3Store

DEFAULT_SEGMENT_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class WalObject:
    """One listed WAL file of the archive."""

    key: str  # relative to S3_PREFIX
    file: WalFile
    stored_size: int
    last_modified: datetime


@dataclass
class BaseBackupObjects:
    """One base backup's listed files (`descriptor.json` present: complete)."""

    stamp: str
    keys: dict[str, str] = field(default_factory=dict)  # file name -> key
    last_modified: dict[str, datetime] = field(default_factory=dict)

    @property
    def descriptor_key(self) -> str | None:
        return self.keys.get("descriptor.json")


@dataclass
class ClusterArchive:
    """What the bucket holds for one system identifier."""

    system_identifier: str
    wal: dict[str, WalObject] = field(default_factory=dict)  # file name -> object
    base_backups: dict[str, BaseBackupObjects] = field(default_factory=dict)  # by stamp

    def segments(self, timeline: int) -> list[WalObject]:
        return sorted((item for item in self.wal.values() if item.file.timeline == timeline
                       and item.file.kind is WalKind.SEGMENT), key=lambda item: item.file.name)

    def timelines(self) -> list[int]:
        return sorted({item.file.timeline for item in self.wal.values()})

    def history(self, timeline: int) -> WalObject | None:
        return self.wal.get(f"{timeline:08X}.history")


def list_archive(store: S3Store) -> dict[str, ClusterArchive]:
    """Return every cluster's WAL files and base backups under S3_PREFIX, by system
    identifier. S3Store.list pages (1,000 keys a page); keys `names` does not parse are not
    the archive's and are left out."""
    clusters: dict[str, ClusterArchive] = {}
    for listed in store.list(store.prefix + WAL_ROOT):
        parsed = parse_wal_key(listed.key.removeprefix(store.prefix))
        if parsed is not None:
            system_identifier, wal = parsed
            cluster = clusters.setdefault(system_identifier, ClusterArchive(system_identifier))
            cluster.wal[wal.name] = WalObject(key=listed.key.removeprefix(store.prefix),
                                              file=wal, stored_size=listed.size,
                                              last_modified=listed.last_modified)
    for listed in store.list(store.prefix + BASE_ROOT):
        relative = listed.key.removeprefix(store.prefix)
        base = parse_base_key(relative)
        if base is not None:
            system_identifier, stamp, name = base
            cluster = clusters.setdefault(system_identifier, ClusterArchive(system_identifier))
            entry = cluster.base_backups.setdefault(stamp, BaseBackupObjects(stamp))
            entry.keys[name] = relative
            entry.last_modified[name] = listed.last_modified
    return clusters


@dataclass(frozen=True)
class HistoryEntry:
    """One line of a timeline history file: `parent` was left at `switchpoint`."""

    parent: int
    switchpoint: int  # LSN as a byte position
    reason: str


def parse_history(text: str) -> list[HistoryEntry]:
    """Return the entries of a `.history` file (lines `parentTLI<TAB>switchpoint<TAB>reason`;
    blank lines and `#` comments skipped, as PostgreSQL does); raise ValueError if a line is
    not one, or timelines or switch points do not increase."""
    entries: list[HistoryEntry] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.split("\t", 2) if "\t" in line else line.split(None, 2)
        try:
            entry = HistoryEntry(parent=int(fields[0]), switchpoint=parse_lsn(fields[1]),
                                 reason=fields[2].strip() if len(fields) > 2 else "")
        except (ValueError, IndexError):
            raise ValueError(f"line {number} is not `timeline<TAB>LSN<TAB>reason`: "
                             f"{line[:80]!r}") from None
        if entries and (entry.parent <= entries[-1].parent
                        or entry.switchpoint < entries[-1].switchpoint):
            raise ValueError(f"line {number}: timelines and switch points must increase")
        entries.append(entry)
    return entries


@dataclass(frozen=True)
class Stretch:
    """The part of a timeline on a path: from `begin` (inclusive) to `end` (exclusive;
    None: it is the path's last timeline and goes on)."""

    timeline: int
    begin: int
    end: int | None

    def holds(self, lsn: int) -> bool:
        return self.begin <= lsn and (self.end is None or lsn < self.end)


def timeline_path(timeline: int, history: Sequence[HistoryEntry]) -> list[Stretch]:
    """Return the stretches recovery follows to reach `timeline`, oldest first, from its
    history file's entries (none for timeline 1)."""
    stretches, begin = [], 0
    for entry in history:
        if entry.parent >= timeline:
            raise ValueError(f"the history of timeline {timeline} names timeline "
                             f"{entry.parent} as an ancestor")
        stretches.append(Stretch(entry.parent, begin, entry.switchpoint))
        begin = entry.switchpoint
    return [*stretches, Stretch(timeline, begin, None)]


def reader_timeline(path: Sequence[Stretch], segment: int, segment_bytes: int) -> int:
    """Return the timeline whose file recovery reads for segment number `segment` on `path`:
    the newest whose first segment is at or before it."""
    for stretch in reversed(path):
        if stretch.begin // segment_bytes <= segment:
            return stretch.timeline
    return path[0].timeline


def required_files(path: Sequence[Stretch], first: int, last: int,
                   segment_bytes: int) -> list[str]:
    """Return the segment file names recovery reads from segment `first` to `last` on `path`."""
    return [segment_name(reader_timeline(path, number, segment_bytes), number, segment_bytes)
            for number in range(first, last + 1)]


@dataclass(frozen=True)
class SegmentRange:
    """Consecutive segments of one timeline, by file name (first and last included)."""

    timeline: int
    first: str
    last: str

    @property
    def text(self) -> str:
        return self.first if self.first == self.last else f"{self.first}..{self.last}"


def missing_ranges(required: Iterable[str], present: set[str],
                   segment_bytes: int) -> list[SegmentRange]:
    """Return the required files not `present`, as ranges of consecutive segments of one
    timeline (a gap spanning a switch point is two ranges)."""
    ranges: list[SegmentRange] = []
    previous: tuple[int, int] | None = None
    for name in required:
        if name in present:
            previous = None
            continue
        timeline, number = int(name[:8], 16), segment_number(name, segment_bytes)
        if previous == (timeline, number - 1) and ranges:
            ranges[-1] = SegmentRange(timeline, ranges[-1].first, name)
        else:
            ranges.append(SegmentRange(timeline, name, name))
        previous = (timeline, number)
    return ranges


def newest_segment(segments: Iterable[str], segment_bytes: int) -> int | None:
    """Return the highest segment number among file names (None when there are none)."""
    numbers = [segment_number(name, segment_bytes) for name in segments]
    return max(numbers) if numbers else None
