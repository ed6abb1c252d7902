"""What a drill proves about one moment, as data: where replay must stop, and what it found.

Pure functions over the transaction records pg_waldump read from the archive (in WAL order).
Recovery to T (`recovery_target_inclusive = on`) stops before the first commit or abort
record, in WAL order, whose time is after T; the record before it is the last one replayed,
and its time is what `pg_last_xact_replay_timestamp()` reports. Commit times are taken before
a record is inserted, so under concurrency they are not quite in WAL order: the stop is the
first later record in WAL order, not the newest time at or before T.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime

# How many commits on each side of the stop the marker asks the restored server about.
MARKER_COMMITS = 500


@dataclass(frozen=True)
class Transaction:
    """One commit or abort record, as pg_waldump printed it."""

    lsn: int
    moment: datetime
    xid: int
    committed: bool  # COMMIT (or COMMIT_PREPARED); else an ABORT


@dataclass(frozen=True)
class Stop:
    """Where replay to a moment must stop: after `last`, before `next`."""

    last: Transaction | None  # the last record replayed (None: none after the base backup)
    next: Transaction | None  # the first record not replayed (None: the archive's end)
    committed_before: tuple[int, ...]  # xids committed up to the stop (the last few)
    committed_after: tuple[int, ...]  # xids committed after it (the first few)


def expected_stop(transactions: list[Transaction], moment: datetime) -> Stop:
    """Return where replay to `moment` stops in `transactions` (WAL order)."""
    index = next((position for position, item in enumerate(transactions)
                  if item.moment > moment), len(transactions))
    before = [item.xid for item in transactions[:index] if item.committed and item.xid]
    after = [item.xid for item in transactions[index:] if item.committed and item.xid]
    return Stop(last=transactions[index - 1] if index else None,
                next=transactions[index] if index < len(transactions) else None,
                committed_before=tuple(before[-MARKER_COMMITS:]),
                committed_after=tuple(after[:MARKER_COMMITS]))


def pick_moments(earliest: datetime, latest: datetime, count: int,
                 chooser: random.Random) -> list[datetime]:
    """Return `count` moments in [earliest, latest), oldest first, each in its own equal
    slice of the window (so three are never all in one corner of it)."""
    span = (latest - earliest) / count
    return [earliest + span * (number + chooser.random()) for number in range(count)]


@dataclass
class TargetReport:
    """One drilled moment: where the recovery stopped, and each proof of it."""

    target: datetime
    base_backup: str
    expected_last: datetime | None  # from pg_waldump
    reached_last: datetime | None  # pg_last_xact_replay_timestamp(), as the recovery saw it
    logged_stop: str | None  # the server's "recovery stopping before …" line
    exact: bool
    amcheck: str  # passed / failed: … / unavailable: …
    marker: str  # "committed 500/500 up to T, 0/37 after"
    duration_seconds: float
    problem: str | None = None  # why the target failed, one line

    @property
    def passed(self) -> bool:
        return self.problem is None

    @property
    def line(self) -> str:
        def text(moment: datetime | None) -> str:
            return moment.isoformat() if moment else "none"

        verdict = "exact" if self.exact else "NOT exact"
        return (f"target {self.target.isoformat()}: last commit {text(self.reached_last)} "
                f"(pg_waldump: {text(self.expected_last)}) {verdict}; amcheck {self.amcheck}; "
                f"{self.marker}; {self.duration_seconds:.1f}s"
                + (f"; FAILED: {self.problem}" if self.problem else ""))
