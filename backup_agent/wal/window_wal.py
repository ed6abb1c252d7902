"""The drill's own read of the window it restores into: every segment from the newest base
backup's start to the archive's end, downloaded proven and parsed, its transactions listed.

`verify --wal --deep` does this for the whole archive (wal/deep.py); the drill does it for
the one base backup it drills, so a flipped byte (signed or not) anywhere in that window
fails the drill even where no target lands, and the commit records read here are what each
target's stop is checked against.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from backup_agent.model.drill import Transaction
from backup_agent.model.settings import PostgresSettings
from backup_agent.model.wal_report import Finding
from backup_agent.physical.descriptor import Descriptor
from backup_agent.wal.deep import fetch_segments, parse_chain
from backup_agent.wal.gaps import PathCheck
from backup_agent.wal.names import parse_lsn, segment_number
from backup_agent.wal.survey import Survey

if TYPE_CHECKING:
    from pyrage.x25519 import Identity

    from backup_agent.storage.s3 import S3Store
    from backup_agent.wal.objects import Vouch


@dataclass
class WindowWal:
    """What the window's WAL holds: its transactions in WAL order, and what failed."""

    transactions: list[Transaction] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    segments: int = 0


def read_window(store: S3Store, postgres: PostgresSettings, survey: Survey, check: PathCheck,
                descriptor: Descriptor, directory: Path, *, vouch: Vouch | None,
                identities: Sequence[Identity]) -> WindowWal:
    """Fetch (proven) and pg_waldump the segments `check`'s path needs from `descriptor`'s
    start on into `directory`; the transactions replay would see, from its start LSN."""
    size = survey.inventory.segment_bytes
    start = parse_lsn(descriptor.start_lsn)
    first = segment_number(check.required[0], size)
    needed = check.required[start // size - first:]
    window = PathCheck(check.timeline, check.path, needed, [], [])
    result = WindowWal(segments=len(needed))
    result.findings += fetch_segments(store, survey.cluster, survey.inventory, [window],
                                      directory, vouch=vouch, identities=identities)
    read: list[Transaction] = []
    parsed, _last_commits = parse_chain(postgres, directory, [window], survey.inventory,
                                        survey.cluster, transactions=read)
    result.findings += parsed
    result.transactions = sorted((item for item in read if item.lsn >= start),
                                 key=lambda item: item.lsn)
    return result
