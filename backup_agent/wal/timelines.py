"""Which timeline each WAL segment of a recovery comes from, read from `.history` files.

A timeline history file (`00000003.history`) lists the timeline's ancestors, one per line:
`<parent timeline> <tab> <LSN where the child began> <tab> <reason>`. Replay of timeline 3
reads timeline 1's segments up to the first switch, then timeline 2's, then 3's. As
PostgreSQL does (XLogFileReadAnyTLI), a segment comes from the newest timeline that had
begun by that segment, so the segment holding a switch point is the child's copy.
"""

from __future__ import annotations

from dataclasses import dataclass

from backup_agent.model.errors import VerificationError
from backup_agent.wal.archive import parse_history as parse_entries
from backup_agent.wal.names import SEGMENT_PATTERN, segment_name


@dataclass(frozen=True)
class Span:
    """One timeline's stretch of a recovery's history."""

    timeline: int
    begin: int  # the LSN where this timeline starts (0: the first)
    end: int | None  # the LSN where the next one starts; None: the timeline replay follows


@dataclass(frozen=True)
class TimelinePlan:
    spans: tuple[Span, ...]  # oldest first; the last is the target timeline
    segment_bytes: int

    @property
    def target(self) -> int:
        return self.spans[-1].timeline

    def timelines(self) -> list[int]:
        return [span.timeline for span in self.spans]

    def timeline_of(self, segment_number: int) -> int:
        """Return the timeline segment `segment_number` is read from."""
        for span in reversed(self.spans):
            if span.begin // self.segment_bytes <= segment_number:
                return span.timeline
        return self.spans[0].timeline

    def name_of(self, segment_number: int) -> str:
        return segment_name(self.timeline_of(segment_number), segment_number,
                            self.segment_bytes)

    def number_of(self, name: str) -> int | None:
        """Return the segment number of `name` when replay along this plan reads that very
        file (right number on the right timeline); None otherwise."""
        match = SEGMENT_PATTERN.match(name)
        if match is None:
            return None
        per_id = 0x1_0000_0000 // self.segment_bytes
        number = int(match.group(2), 16) * per_id + int(match.group(3), 16)
        if int(match.group(3), 16) >= per_id or self.timeline_of(number) != int(match.group(1), 16):
            return None
        return number

    def covers(self, timeline: int, lsn: int) -> bool:
        """True when replay along this plan passes `lsn` on `timeline` (a base backup that
        started there can be recovered along it)."""
        return any(span.timeline == timeline and span.begin <= lsn
                   and (span.end is None or lsn < span.end) for span in self.spans)


def history_name(timeline: int) -> str:
    return f"{timeline:08X}.history"


def parse_history(timeline: int, text: str, *, what: str) -> list[tuple[int, int]]:
    """Return (parent timeline, switch LSN) of each line of `timeline`'s history file (the
    archive catalog's one parser); raise VerificationError when it is not one (it was
    proven, so a bug or a foreign file)."""
    try:
        entries = parse_entries(text)
    except ValueError as error:
        raise VerificationError(f"{what} is not a timeline history file ({error}): it cannot "
                                "be followed") from None
    if entries and entries[-1].parent >= timeline:
        raise VerificationError(f"{what} lists timelines out of order: it cannot be followed")
    return [(entry.parent, entry.switchpoint) for entry in entries]


def plan_for(timeline: int, history: list[tuple[int, int]], segment_bytes: int) -> TimelinePlan:
    """Return the plan of replay along `timeline`, given its parsed history file (empty for
    timeline 1, which has none)."""
    spans = []
    begin = 0
    for parent, switch in history:
        spans.append(Span(timeline=parent, begin=begin, end=switch))
        begin = switch
    spans.append(Span(timeline=timeline, begin=begin, end=None))
    return TimelinePlan(spans=tuple(spans), segment_bytes=segment_bytes)
