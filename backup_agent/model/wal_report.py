"""What `verify --wal` found: findings, each with its segments and the time it costs.

Pure data, shared by the checks (wal/), the action and the renderer. Times are UTC; each
window says how it was measured, because the archive knows some times exactly (a base
backup's descriptor, a commit record read by pg_waldump) and others only roughly (when a
segment reached S3, up to WAL_MAX_DELAY after its last record was written).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class Level(StrEnum):
    NAMES = "names"  # which objects exist: contiguous segments, history files
    CONTENT = "content"  # each object's signature, size and SHA-256
    PARSE = "parse"  # pg_waldump over the chain, pg_verifybackup over each base backup


class Precision(StrEnum):
    DESCRIPTOR = "base backup descriptor (exact)"
    COMMIT = "commit timestamps read by pg_waldump (exact)"
    UPLOAD = "S3 upload times of the segments around it (within WAL_MAX_DELAY of the WAL)"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Window:
    """A span of time; `start` None: since the archive's beginning; `end` None: until now
    (no later base backup makes it restorable again)."""

    start: datetime | None
    end: datetime | None
    start_precision: Precision = Precision.UNKNOWN
    end_precision: Precision = Precision.UNKNOWN

    @property
    def text(self) -> str:
        start = stamp(self.start) if self.start else "the archive's beginning"
        end = stamp(self.end) if self.end else "now (no later base backup)"
        return f"between {start} and {end} UTC"


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


@dataclass
class Finding:
    """One problem: a gap, a missing history file, a bad object, a parse error."""

    level: Level
    kind: str  # gap, history, signature, metadata, content, waldump, verifybackup, key
    message: str
    timeline: int | None = None
    first_segment: str | None = None
    last_segment: str | None = None
    window: Window | None = None  # the time no restore can reach because of it
    key: str | None = None  # the object, relative to S3_PREFIX

    @property
    def line(self) -> str:
        parts = [f"[{self.level}] {self.message}"]
        if self.first_segment:
            segments = (self.first_segment if self.first_segment == self.last_segment
                        else f"{self.first_segment}..{self.last_segment}")
            parts.append(f"segments {segments}")
        if self.window:
            parts.append(f"no restore possible {self.window.text} (start: "
                         f"{self.window.start_precision}; end: {self.window.end_precision})")
        return "; ".join(parts)


@dataclass
class BaseBackupWindow:
    """Which times one base backup restores to, on the path of one timeline."""

    stamp: str
    timeline: int  # the path (its newest timeline)
    start_lsn: str
    end_lsn: str
    restorable: bool
    window: Window | None  # from its end to the last contiguous WAL
    problem: str | None = None


@dataclass
class LevelReport:
    level: Level
    checked: bool
    objects: int = 0
    note: str = ""


@dataclass
class ClusterReport:
    system_identifier: str
    timelines: list[int] = field(default_factory=list)
    segments: int = 0
    base_backups: list[BaseBackupWindow] = field(default_factory=list)


def plain(value: Any) -> Any:
    """JSON-ready: dataclasses as dicts, datetimes as ISO 8601, a finding with its line."""
    if isinstance(value, Finding):
        return {**plain(asdict(value)), "line": value.line}
    if hasattr(value, "__dataclass_fields__"):
        return plain(asdict(value))
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value
