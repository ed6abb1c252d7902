"""`verify --wal --deep`: download, decrypt and re-hash every segment, then parse the chain.

Each segment the paths need is fetched proven (`prove.fetch_proven`: signature, age,
gzip, size, SHA-256) into a private directory; pg_waldump then reads each stretch of
contiguous segments of one timeline (a flipped byte fails a record's CRC), restarting
after a bad segment so that one error does not hide the next. pg_verifybackup checks each
base backup's files, extracted from its proven tar, against the manifest inside it.
"""

from __future__ import annotations

import tarfile
import tempfile
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from backup_agent.model.drill import Transaction
from backup_agent.model.errors import BackupAgentError
from backup_agent.model.settings import PostgresSettings
from backup_agent.model.wal_report import Finding, Level
from backup_agent.postgres.waldump import dump_wal, verify_backup
from backup_agent.wal.archive import ClusterArchive
from backup_agent.wal.audit import Inventory
from backup_agent.wal.codec import decode_stream
from backup_agent.wal.gaps import PathCheck
from backup_agent.wal.names import format_lsn, segment_name, segment_number
from backup_agent.wal.objects import Facts, Vouch
from backup_agent.wal.prove import fetch_proven

if TYPE_CHECKING:
    from pyrage.x25519 import Identity

    from backup_agent.storage.s3 import S3Store


def fetch_segments(store: S3Store, cluster: ClusterArchive, inventory: Inventory,
                   checks: Sequence[PathCheck], directory: Path, *, vouch: Vouch | None,
                   identities: Sequence[Identity]) -> list[Finding]:
    """Fetch every present segment the paths need into `directory`; a segment that does not
    prove is a finding and leaves the inventory."""
    findings = []
    wanted = sorted({name for check in checks for name in check.required} & inventory.segments())
    for name in wanted:
        item = cluster.wal[name]
        try:
            fetch_proven(store, item.key, directory / name, vouch=vouch, identities=identities)
        except BackupAgentError as error:
            findings.append(Finding(level=Level.CONTENT, kind="content", key=item.key,
                                    timeline=item.file.timeline, first_segment=name,
                                    last_segment=name, message=str(error)))
            del inventory.facts[name]
    return findings


def stretches(checks: Sequence[PathCheck], present: set[str],
              size: int) -> list[tuple[int, int, int]]:
    """Return (timeline, first segment, last segment) of each run of present consecutive
    segments of one timeline on the paths, each once."""
    runs: set[tuple[int, int, int]] = set()
    for check in checks:
        current: list[int] | None = None
        for name in check.required:
            timeline, number = int(name[:8], 16), segment_number(name, size)
            if name in present and current and current[0] == timeline \
                    and current[2] == number - 1:
                current[2] = number
                continue
            if current:
                runs.add((current[0], current[1], current[2]))
            current = [timeline, number, number] if name in present else None
        if current:
            runs.add((current[0], current[1], current[2]))
    # Timeline 1 up to a switch point is on both paths: a run inside another is read once.
    return sorted(run for run in runs if not any(
        other != run and other[0] == run[0] and other[1] <= run[1] and run[2] <= other[2]
        for other in runs))


def parse_chain(settings: PostgresSettings, directory: Path, checks: Sequence[PathCheck],
                inventory: Inventory, cluster: ClusterArchive, *,
                transactions: list[Transaction] | None = None,
                ) -> tuple[list[Finding], dict[str, datetime]]:
    """Run pg_waldump over every stretch; return its findings (the bad segment leaves the
    inventory) and the last commit time read in each segment. Every commit and abort read
    goes into `transactions` when given."""
    size, findings, last_commits = inventory.segment_bytes, [], {}
    for timeline, first, last in stretches(checks, inventory.segments(), size):
        start = first
        while start <= last:
            dump = dump_wal(settings, directory, timeline, format_lsn(start * size),
                            format_lsn((last + 1) * size))
            for lsn, moment in dump.commits:
                last_commits[segment_name(timeline, lsn // size, size)] = moment
            if transactions is not None:
                transactions += dump.transactions
            if dump.error is None:
                break
            bad = dump.error_lsn // size if dump.error_lsn is not None else start
            name = segment_name(timeline, max(bad, start), size)
            findings.append(Finding(level=Level.PARSE, kind="waldump", timeline=timeline,
                                    first_segment=name, last_segment=name,
                                    key=cluster.wal[name].key if name in cluster.wal else None,
                                    message=f"pg_waldump: {dump.error}"))
            inventory.facts.pop(name, None)
            start = max(bad, start) + 1
    return findings, last_commits


def verify_base_backups(store: S3Store, settings: PostgresSettings, inventory: Inventory,
                        identities: Sequence[Identity], workspace: Path) -> list[Finding]:
    """Download each base backup's tar proven against its descriptor, extract it, and run
    pg_verifybackup over it; a finding for each that fails."""
    findings = []
    for stamp, descriptor in sorted(inventory.descriptors.items()):
        facts = Facts(sha256=descriptor.tar.sha256, size=descriptor.tar.size,
                      encoding=descriptor.tar.encoding)
        with tempfile.TemporaryDirectory(dir=workspace) as scratch:
            tar_path, extracted = Path(scratch) / "base.tar", Path(scratch) / "data"
            try:
                source = store.opener(store.prefix + descriptor.tar.key,
                                      descriptor.tar.stored_size)()
                try:
                    with tar_path.open("wb") as target:
                        decode_stream(source, target, facts, identities=identities,
                                      what=store.url(store.prefix + descriptor.tar.key))
                finally:
                    source.close()
                with tarfile.open(tar_path) as archive:
                    archive.extractall(extracted, filter="tar")
                tar_path.unlink()
                problem = verify_backup(settings, extracted)
            except (BackupAgentError, tarfile.TarError, OSError) as error:
                problem = str(error)
            if problem is not None:
                findings.append(Finding(level=Level.PARSE, kind="verifybackup",
                                        key=descriptor.tar.key,
                                        message=f"base backup {stamp}: {problem}"))
    return findings
