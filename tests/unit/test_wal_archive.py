"""The archive's catalog: history files, timeline paths, and gaps on the path recovery takes."""

from __future__ import annotations

import pytest

from backup_agent.wal.archive import (
    HistoryEntry,
    SegmentRange,
    Stretch,
    missing_ranges,
    parse_history,
    reader_timeline,
    required_files,
    timeline_path,
)

SIZE = 16 * 1024 * 1024
HISTORY_3 = ("1\t0/5000060\tno recovery target specified\n\n"
             "2\t0/8A00028\tbefore 2026-11-26 14:02:11+00\n")


def name(timeline: int, number: int) -> str:
    return f"{timeline:08X}00000000{number:08X}"


def test_a_history_file_is_read_as_postgresql_writes_it() -> None:
    assert parse_history(HISTORY_3) == [
        HistoryEntry(1, 0x5000060, "no recovery target specified"),
        HistoryEntry(2, 0x8A00028, "before 2026-11-26 14:02:11+00")]
    assert parse_history("# comment\n") == []


@pytest.mark.parametrize("text", ["1\tnot-an-lsn\tx\n", "x\t0/1\n",
                                  "2\t0/5\tx\n1\t0/6\tx\n"])
def test_a_malformed_history_file_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_history(text)


def test_the_path_to_a_timeline_follows_its_switch_points() -> None:
    assert timeline_path(3, parse_history(HISTORY_3)) == [
        Stretch(1, 0, 0x5000060), Stretch(2, 0x5000060, 0x8A00028), Stretch(3, 0x8A00028, None)]
    assert timeline_path(1, []) == [Stretch(1, 0, None)]


def test_the_segment_holding_a_switch_point_is_read_from_the_new_timeline() -> None:
    path = timeline_path(2, [HistoryEntry(1, 0x5000060, "")])
    assert [reader_timeline(path, number, SIZE) for number in (3, 4, 5, 6)] == [1, 1, 2, 2]
    assert required_files(path, 3, 6, SIZE) == [name(1, 3), name(1, 4), name(2, 5), name(2, 6)]


def test_an_older_timeline_going_on_after_its_switch_point_is_no_gap_of_the_newer() -> None:
    # Timeline 1 went on after 2 left it (WAL-G #1390): its segments 5..7 are on 1's path,
    # 2's path needs 2's own from 5 on, and neither lacks anything.
    present = {name(1, n) for n in range(3, 8)} | {name(2, n) for n in range(5, 9)}
    two = timeline_path(2, [HistoryEntry(1, 0x5000060, "")])
    one = timeline_path(1, [])
    assert missing_ranges(required_files(two, 3, 8, SIZE), present, SIZE) == []
    assert missing_ranges(required_files(one, 3, 7, SIZE), present, SIZE) == []


def test_gaps_are_ranges_of_one_timeline() -> None:
    path = timeline_path(2, [HistoryEntry(1, 0x5000060, "")])
    present = {name(1, 3), name(2, 7)}
    assert missing_ranges(required_files(path, 3, 7, SIZE), present, SIZE) == [
        SegmentRange(1, name(1, 4), name(1, 4)), SegmentRange(2, name(2, 5), name(2, 6))]
    assert SegmentRange(2, name(2, 5), name(2, 6)).text == f"{name(2, 5)}..{name(2, 6)}"


def test_deep_reads_a_stretch_shared_by_two_paths_once() -> None:
    from backup_agent.wal.deep import stretches
    from backup_agent.wal.gaps import PathCheck

    one = timeline_path(1, [])
    two = timeline_path(2, [HistoryEntry(1, 0x5000060, "")])
    present = {name(1, n) for n in range(3, 8)} | {name(2, n) for n in range(5, 9)}
    checks = [PathCheck(1, one, required_files(one, 3, 7, SIZE), [], []),
              PathCheck(2, two, required_files(two, 3, 8, SIZE), [], [])]
    assert stretches(checks, present - {name(1, 6)}, SIZE) == [(1, 3, 5), (1, 7, 7), (2, 5, 8)]
