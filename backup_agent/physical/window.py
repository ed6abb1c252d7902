"""The moments a base backup and an archive can be recovered to, learnt before replay.

The earliest is the base backup's end: a moment before its last commit cannot be reached
(PostgreSQL would stop before the backup is consistent, or, worse, with no commit to stop
at, hand back the backup with commits after T in it). The latest is the archive's last
commit or abort: replay must see a transaction after T to know it has reached T.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from backup_agent.model.targets import Window
from backup_agent.physical.base_source import BaseSource
from backup_agent.physical.inspect import last_commit_before, last_commit_in


def restorable_window(bin_directory: Path | None, base: BaseSource, *, base_wal: Path,
                      base_segments: tuple[str, str], tail_wal: Path,
                      tail_segments: list[str]) -> Window:
    """Return the window; `base_segments` (first, last) hold the backup's WAL range in
    `base_wal`, `tail_segments` the archive's last segments (oldest first) in `tail_wal`."""
    earliest = base.end_time
    if earliest is None:
        last = last_commit_before(bin_directory, base_wal, *base_segments, base.end_lsn)
        earliest = _latest_of(base.start_time, last)
    latest = last_commit_in(bin_directory, tail_wal, tail_segments) if tail_segments else None
    return Window(earliest=earliest, latest=latest)


def _latest_of(*moments: datetime | None) -> datetime | None:
    known = [moment for moment in moments if moment is not None]
    return max(known) if known else None
