"""Which timeline each segment of a recovery comes from (PostgreSQL's rule)."""

from __future__ import annotations

import pytest

from backup_agent.model.errors import VerificationError
from backup_agent.wal.names import parse_lsn
from backup_agent.wal.timelines import parse_history, plan_for

SIXTEEN_MIB = 16 * 1024 * 1024
HISTORY_3 = ("1\t0/5000060\tno recovery target specified\n\n"
             "# a comment\n2\t0/9000000\tbefore 2026-12-02 21:00:00+00\n")


def test_a_segment_comes_from_the_newest_timeline_begun_by_then() -> None:
    plan = plan_for(3, parse_history(3, HISTORY_3, what="h"), SIXTEEN_MIB)
    assert plan.timelines() == [1, 2, 3] and plan.target == 3
    assert [plan.name_of(number)[:8] for number in (4, 5, 8, 9, 10)] == [
        "00000001", "00000002", "00000002", "00000003", "00000003"]
    assert plan.number_of("000000020000000000000005") == 5
    assert plan.number_of("000000010000000000000005") is None  # replaced by timeline 2's
    assert plan.number_of("00000003000000010000000A") == 0x100 + 0xA
    assert plan.number_of("000000030000000000000100") is None  # not a segment of 16 MiB
    assert plan.covers(1, parse_lsn("0/3000028")) and not plan.covers(1, parse_lsn("0/6000000"))
    assert plan.covers(2, parse_lsn("0/6000000"))


def test_timeline_one_has_no_history() -> None:
    plan = plan_for(1, [], SIXTEEN_MIB)
    assert plan.name_of(3) == "000000010000000000000003"


@pytest.mark.parametrize("text", ["garbage\n", "2\t0/5000000\tx\n", "1\t0/9000000\tx\n"
                                  "1\t0/A000000\tx\n", "1\t0/9\tx\n2\t0/5\tx\n"])
def test_a_history_that_is_not_one_is_refused(text: str) -> None:
    with pytest.raises(VerificationError):
        parse_history(3 if text.count("\n") > 1 else 2, text, what="h")
