"""The archive as a recovery reads it: which timeline to follow, and where the WAL ends.

Like PostgreSQL's `recovery_target_timeline = latest`, the newest timeline is found by
asking for the next history file until one is missing (`findNewestTimeLine`), and its
history (proven, as every object) says which segments come from which timeline. The
history files are put where the server's restore_command finds them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from backup_agent.model.errors import ConfigurationError
from backup_agent.wal.names import (
    WalFile,
    WalKind,
    format_lsn,
    parse_wal_key,
    timeline_prefix,
    wal_key,
)
from backup_agent.wal.objects import Vouch
from backup_agent.wal.prove import is_proven, read_proven
from backup_agent.wal.timelines import TimelinePlan, history_name, parse_history, plan_for

if TYPE_CHECKING:
    from pyrage.x25519 import Identity

    from backup_agent.storage.s3 import S3Store

log = logging.getLogger(__name__)

# Timelines are numbered from 1 and each restore that promotes adds one: a cluster with
# more than this many is not one we have seen; the bound keeps the probe finite.
MOST_TIMELINES = 10_000


@dataclass(frozen=True)
class WalArchive:
    """One cluster's WAL in the bucket, and what proves it."""

    store: S3Store
    system_identifier: str
    vouch: Vouch | None  # None: unsigned objects accepted (--allow-unsigned)
    identities: Sequence[Identity] = ()

    def key(self, timeline: int, name: str) -> str:
        kind = WalKind.HISTORY if name.endswith(".history") else WalKind.SEGMENT
        return wal_key(self.system_identifier, WalFile(timeline=timeline, name=name, kind=kind))

    def has(self, timeline: int, name: str) -> bool:
        return self.store.head(self.store.prefix + self.key(timeline, name)) is not None

    def proven(self, timeline: int, name: str) -> bool:
        """True when the archive holds this file signed for its key (planted ones, unsigned
        or moved, count as absent; a warning names them)."""
        key = self.key(timeline, name)
        if is_proven(self.store, key, self.vouch):
            return True
        if self.has(timeline, name):
            log.warning("%s is in the archive but not proven (unsigned, moved or changed): "
                        "it is ignored", self.store.url(self.store.prefix + key))
        return False


def follow(archive: WalArchive, *, start_timeline: int, start_lsn: int, segment_bytes: int,
           directory: Path, owner: tuple[int, int] | None = None) -> TimelinePlan:
    """Return the plan of replay from a base backup that started at `start_lsn` on
    `start_timeline` to the newest timeline descending from it; write the history files
    it reads into `directory`. Raise ConfigurationError when the newest timeline does not
    pass through the base backup's start."""
    newest = start_timeline
    while newest < MOST_TIMELINES and archive.proven(newest + 1, history_name(newest + 1)):
        newest += 1
    history: list[tuple[int, int]] = []
    if newest > 1:
        name = history_name(newest)
        text = read_proven(archive.store, archive.key(newest, name), vouch=archive.vouch,
                           identities=archive.identities)
        history = parse_history(newest, text.decode("ascii", "replace"),
                                what=archive.store.url(archive.key(newest, name)))
        path = directory / name
        path.write_bytes(text)
        if owner is not None:
            os.chown(path, *owner)
    plan = plan_for(newest, history, segment_bytes)
    if not plan.covers(start_timeline, start_lsn):
        raise ConfigurationError(
            f"the archive's newest timeline {newest} does not pass through the base "
            f"backup's start ({format_lsn(start_lsn)} on timeline {start_timeline}): it "
            "branched off earlier; use a base backup taken on that timeline")
    return plan


def last_segment(archive: WalArchive, plan: TimelinePlan) -> tuple[int, str] | None:
    """Return the newest segment the archive holds along `plan` (timeline, name), or None."""
    for timeline in reversed(plan.timelines()):
        prefix = archive.store.prefix + timeline_prefix(archive.system_identifier, timeline)
        names = sorted(parsed[1].name for item in archive.store.list(prefix)
                       if (parsed := parse_wal_key(item.key[len(archive.store.prefix):]))
                       and parsed[1].kind == WalKind.SEGMENT)
        for name in reversed(names):
            if plan.number_of(name) is not None and archive.proven(timeline, name):
                return timeline, name
    return None
