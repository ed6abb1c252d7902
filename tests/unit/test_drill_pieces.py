"""The drill's pure pieces: where replay to a moment stops, and the moments it picks."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from backup_agent.model.drill import Transaction, expected_stop, pick_moments

START = datetime(2026, 12, 3, 2, 0, tzinfo=UTC)


def _at(seconds: float, xid: int, *, committed: bool = True) -> Transaction:
    return Transaction(lsn=xid * 100, moment=START + timedelta(seconds=seconds), xid=xid,
                       committed=committed)


def test_replay_stops_before_the_first_record_in_wal_order_after_the_moment() -> None:
    # 12's time is earlier than 11's (taken before its insert): it is never reached.
    records = [_at(1, 10), _at(3, 11), _at(2.5, 12), _at(4, 13, committed=False), _at(5, 14)]
    stop = expected_stop(records, START + timedelta(seconds=2.7))
    assert stop.last == records[0] and stop.next == records[1]
    assert stop.committed_before == (10,) and stop.committed_after == (11, 12, 14)
    aborted_last = expected_stop(records, START + timedelta(seconds=4.5))
    assert aborted_last.last == records[3] and aborted_last.committed_before == (10, 11, 12)


def test_before_the_first_and_after_the_last_record() -> None:
    records = [_at(1, 10), _at(2, 11)]
    assert expected_stop(records, START).last is None
    assert expected_stop(records, START + timedelta(seconds=9)).next is None


def test_moments_are_one_in_each_slice_of_the_window() -> None:
    moments = pick_moments(START, START + timedelta(seconds=30), 3, random.Random(7))  # noqa: S311
    assert [int((moment - START).total_seconds()) // 10 for moment in moments] == [0, 1, 2]
