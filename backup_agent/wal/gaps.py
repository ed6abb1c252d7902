"""`verify --wal`'s names level: is every segment there, on every timeline's path?

For each timeline, the path its history file gives (`archive.timeline_path`) must have
every segment from the oldest base backup on it to the newest segment of the timeline.
Each gap becomes a finding with the time it makes unrestorable: from the last moment
before it the archive can reach (the upload time of the segment before it, or with --deep
its last commit) to the end of the first later base backup whose own WAL is whole (its
descriptor's end time), or until now. Each base backup gets the window it restores to.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from backup_agent.model.wal_report import BaseBackupWindow, Finding, Level, Precision, Window
from backup_agent.physical.descriptor import Descriptor
from backup_agent.wal.archive import (
    ClusterArchive,
    SegmentRange,
    Stretch,
    missing_ranges,
    newest_segment,
    reader_timeline,
    required_files,
    timeline_path,
)
from backup_agent.wal.audit import Inventory
from backup_agent.wal.names import parse_lsn, segment_number


@dataclass
class PathCheck:
    """One timeline's path, the segments it needs, and which of them are missing."""

    timeline: int
    path: list[Stretch]
    required: list[str]
    gaps: list[SegmentRange]
    bases: list[tuple[str, Descriptor]]


def _on_path(path: list[Stretch], descriptor: Descriptor) -> bool:
    start = parse_lsn(descriptor.start_lsn)
    return any(stretch.timeline == descriptor.start_timeline and stretch.holds(start)
               for stretch in path)


def _end_segment(descriptor: Descriptor, segment_bytes: int) -> int:
    """The last segment the backup needs: the one holding the byte before its end LSN."""
    return max(parse_lsn(descriptor.end_lsn) - 1, 0) // segment_bytes


def path_checks(cluster: ClusterArchive, inventory: Inventory) -> tuple[list[PathCheck],
                                                                         list[Finding]]:
    """Return each timeline's path check, and a finding for a timeline whose history file
    is missing (its path is then only its own segments: where it left its parent is
    unknown, so recovery cannot follow it)."""
    size, present = inventory.segment_bytes, inventory.segments()
    checks, findings = [], []
    for timeline in sorted({int(name[:8], 16) for name in present} | set(inventory.histories)):
        own = sorted(name for name in present if int(name[:8], 16) == timeline)
        if timeline > 1 and timeline not in inventory.histories:
            path = [Stretch(timeline, segment_number(own[0], size) * size, None)]
            findings.append(Finding(
                level=Level.NAMES, kind="history", timeline=timeline, first_segment=own[0],
                last_segment=own[-1], window=_upload_window(cluster, own[0], own[-1]),
                message=f"timeline {timeline} has no {timeline:08X}.history: where it left its "
                        "parent timeline is unknown, so recovery cannot follow it onto it"))
        else:
            path = timeline_path(timeline, inventory.histories.get(timeline, []))
        newest = newest_segment(own, size)
        if newest is None:
            continue
        bases = sorted((stamp, descriptor) for stamp, descriptor in inventory.descriptors.items()
                       if _on_path(path, descriptor))
        if bases:
            first = min(parse_lsn(descriptor.start_lsn) // size for _, descriptor in bases)
        else:  # nothing to restore from: check what is there, from its oldest on the path
            first = min((segment_number(name, size) for name in present
                         if reader_timeline(path, segment_number(name, size), size)
                         == int(name[:8], 16)), default=newest)
        required = required_files(path, first, newest, size)
        checks.append(PathCheck(timeline, path, required, missing_ranges(required, present, size),
                                bases))
    return checks, findings


def _upload_window(cluster: ClusterArchive, first: str, last: str) -> Window:
    return Window(cluster.wal[first].last_modified, cluster.wal[last].last_modified,
                  Precision.UPLOAD, Precision.UPLOAD)


def check_names(cluster: ClusterArchive, inventory: Inventory,
                last_commits: Mapping[str, datetime] | None = None,
                ) -> tuple[list[Finding], list[BaseBackupWindow], list[PathCheck]]:
    """Return the gaps (each once, whichever paths share it), each base backup's window on
    each path, and the path checks. `last_commits` (file name -> its last commit time,
    from pg_waldump) makes the windows' starts exact."""
    checks, findings = path_checks(cluster, inventory)
    size, present = inventory.segment_bytes, inventory.segments()
    seen: set[tuple[int, str, str]] = set()
    windows: list[BaseBackupWindow] = []
    for check in checks:
        for gap in check.gaps:
            if (gap.timeline, gap.first, gap.last) in seen:
                continue
            seen.add((gap.timeline, gap.first, gap.last))
            findings.append(Finding(
                level=Level.NAMES, kind="gap", timeline=gap.timeline, first_segment=gap.first,
                last_segment=gap.last, window=_gap_window(cluster, check, gap, size, present,
                                                          last_commits or {}),
                message=f"WAL missing on timeline {gap.timeline}"
                        + (f" (on the path to timeline {check.timeline})"
                           if check.timeline != gap.timeline else "")))
        if not check.bases and check.path[0].timeline == 1:
            findings.append(Finding(level=Level.NAMES, kind="base", timeline=check.timeline,
                                    message=f"no complete base backup on the path to timeline "
                                            f"{check.timeline}: nothing on it can be restored"))
        windows += [_base_window(cluster, check, stamp, descriptor, size, present,
                                 last_commits or {}) for stamp, descriptor in check.bases]
    return findings, windows, checks


def _moment(cluster: ClusterArchive, name: str,
            last_commits: Mapping[str, datetime]) -> tuple[datetime, Precision]:
    if name in last_commits:
        return last_commits[name], Precision.COMMIT
    return cluster.wal[name].last_modified, Precision.UPLOAD


def _gap_window(cluster: ClusterArchive, check: PathCheck, gap: SegmentRange, size: int,
                present: set[str], last_commits: Mapping[str, datetime]) -> Window:
    index = check.required.index(gap.first)
    start, start_precision = None, Precision.UNKNOWN
    if index > 0 and check.required[index - 1] in present:
        start, start_precision = _moment(cluster, check.required[index - 1], last_commits)
    else:
        inside = [descriptor for _, descriptor in check.bases
                  if parse_lsn(descriptor.start_lsn) // size >= segment_number(gap.first, size)]
        if inside:
            start = min(datetime.fromisoformat(item.start_time) for item in inside)
            start_precision = Precision.DESCRIPTOR
    after = segment_number(gap.last, size)
    for _, descriptor in check.bases:
        begin = parse_lsn(descriptor.start_lsn) // size
        if begin > after and _whole(check, begin, _end_segment(descriptor, size), size,
                                    present):
            return Window(start, datetime.fromisoformat(descriptor.end_time),
                          start_precision, Precision.DESCRIPTOR)
    return Window(start, None, start_precision, Precision.UNKNOWN)


def _whole(check: PathCheck, first: int, last: int, size: int, present: set[str]) -> bool:
    base = segment_number(check.required[0], size)
    return all(name in present for name in check.required[first - base:last - base + 1])


def _base_window(cluster: ClusterArchive, check: PathCheck, stamp: str, descriptor: Descriptor,
                 size: int, present: set[str],
                 last_commits: Mapping[str, datetime]) -> BaseBackupWindow:
    base = segment_number(check.required[0], size)
    begin, end = parse_lsn(descriptor.start_lsn) // size, _end_segment(descriptor, size)
    reachable = []
    for name in check.required[begin - base:]:
        if name not in present:
            break
        reachable.append(name)
    report = BaseBackupWindow(stamp=stamp, timeline=check.timeline,
                              start_lsn=descriptor.start_lsn, end_lsn=descriptor.end_lsn,
                              restorable=len(reachable) > end - begin, window=None)
    if not report.restorable:
        index = begin - base + len(reachable)
        report.problem = (f"its WAL from {descriptor.start_lsn} to {descriptor.end_lsn} is not "
                          "all there: " + (f"{check.required[index]} is missing"
                                           if index < len(check.required)
                                           else "the archive does not reach its end yet"))
        return report
    until, precision = _moment(cluster, reachable[-1], last_commits)
    report.window = Window(datetime.fromisoformat(descriptor.end_time), until,
                           Precision.DESCRIPTOR, precision)
    return report
