"""Recover the whole cluster as of a moment into an empty directory: the core `restore-cluster`
and `restore --to-time` share.

The base backup is the newest in S3 that ended before T (`base/<system identifier>/…`, its
signed descriptor proven, its tar proven before extraction: wal/base_backups.py), or a
pg_basebackup output on this machine. WAL comes from the archive in S3
(`wal/<system identifier>/…`), fetched and proven ahead of replay. T is checked against the
restorable window before replay; replay is checked by SQL after (physical/recovery.py). The
directory ends up holding a cluster that starts as a primary on a new timeline; on any
failure it is emptied again.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from backup_agent.keys.age_identities import configured_identities
from backup_agent.keys.signing import signer
from backup_agent.keys.trust import NO_KEY
from backup_agent.model.errors import ConfigurationError, SourceNotFoundError, VerificationError
from backup_agent.model.settings import Settings
from backup_agent.model.targets import RecoveryTarget
from backup_agent.physical.base_source import BaseSource, local_base_backup
from backup_agent.physical.inspect import control_facts, refuse_incompatible
from backup_agent.physical.recovery import Reached, Recovery, recover
from backup_agent.physical.window import restorable_window
from backup_agent.storage.s3 import S3Store
from backup_agent.wal.base_backups import (
    S3BaseBackup,
    base_backups,
    system_identifiers,
    usable_before,
)
from backup_agent.wal.fetch import Prefetcher
from backup_agent.wal.history import WalArchive, follow, last_segment
from backup_agent.wal.names import BASE_ROOT
from backup_agent.wal.prove import fetch_proven
from backup_agent.wal.timelines import TimelinePlan

log = logging.getLogger(__name__)

# How many of the archive's last segments are read to find its last commit.
TAIL_SEGMENTS = 3
BASE_WAL_WAIT_SECONDS = 600.0


@dataclass(frozen=True)
class RecoveredCluster:
    """What a recovery built: where it started, the window it checked, where it stopped."""

    base_backup: str  # the base backup's description
    window: str
    reached: Reached
    trusted: bool  # base backup and WAL proven with trusted signatures
    warnings: list[str] = field(default_factory=list)


def require_trusted_keys(settings: Settings, *, allow_unsigned: bool) -> None:
    """Refuse (exit 8, as a dump restore does) before anything is asked of the server or
    S3 when no key could prove the archive."""
    if not allow_unsigned and not settings.trusted_signing_keys:
        raise VerificationError(f"{NO_KEY}: set TRUSTED_SIGNING_KEYS to the public key of "
                                "the server that archives WAL, or pass --allow-unsigned; "
                                "nothing was restored")


def _archive(settings: Settings, system_identifier: str, *, allow_unsigned: bool) -> WalArchive:
    trusted = settings.trusted_signing_keys
    require_trusted_keys(settings, allow_unsigned=allow_unsigned)
    identities = configured_identities(settings)
    return WalArchive(store=S3Store(settings.s3), system_identifier=system_identifier,
                      vouch=None if allow_unsigned else
                      (lambda document, statement: signer(document, statement, trusted)),
                      identities=identities[0] if identities else ())


def _tail(archive: WalArchive, plan: TimelinePlan, directory: Path) -> list[str]:
    """Fetch (proven) the archive's last segments into `directory`; return their names."""
    last = last_segment(archive, plan)
    if last is None:
        return []
    number = plan.number_of(last[1])
    assert number is not None
    names = [plan.name_of(n) for n in range(max(0, number - TAIL_SEGMENTS + 1), number + 1)]
    for name in names:
        fetch_proven(archive.store, archive.key(int(name[:8], 16), name), directory / name,
                     vouch=archive.vouch, identities=archive.identities)
    return names


def _s3_bases(settings: Settings, target: RecoveryTarget, system_identifier: str | None, *,
              allow_unsigned: bool) -> list[S3BaseBackup]:
    """The base backups in S3 that ended before the target, newest first, descriptors
    proven."""
    store = S3Store(settings.s3)
    where = f"s3://{store.bucket}/{store.prefix}{BASE_ROOT}"
    named = system_identifiers(store)
    if system_identifier is not None:
        proven = _proven_bases(settings, store, system_identifier, allow_unsigned)
    else:
        # A key planted with the writer's AWS key names a cluster too: with several, only
        # those with a proven base backup count (each proven once).
        proven_by = {cluster: _proven_bases(settings, store, cluster, allow_unsigned)
                     for cluster in named}
        clusters = [cluster for cluster in named if proven_by[cluster]] if len(named) > 1 \
            else named
        if named and not clusters:
            raise _none_trusted(f"{where} holds base backups of {', '.join(named)}")
        if len(clusters) != 1:
            raise ConfigurationError(
                f"{where} holds base backups of {len(clusters)} clusters "
                f"({', '.join(clusters) or 'none'}): " + (
                    "pass --system-identifier ID" if clusters else
                    "take one with `backup-agent base-backup`, or pass --base-backup DIR"))
        system_identifier = clusters[0]
        proven = proven_by[system_identifier]
    if not proven and system_identifier in named:
        raise _none_trusted(f"{where}{system_identifier}/ holds base backups")
    return usable_before(proven, target.moment, where)


def check_base_backups(settings: Settings, target: RecoveryTarget, *,
                       system_identifier: str | None = None,
                       allow_unsigned: bool = False) -> None:
    """Refuse up front (before the live server is asked to close its segment) what the
    recovery would refuse first: no proven base backup (another server's key), or none
    that ended before T."""
    _s3_bases(settings, target, system_identifier, allow_unsigned=allow_unsigned)


def _none_trusted(what: str) -> VerificationError:
    return VerificationError(f"{what}, but none is signed by a trusted key: check "
                             "TRUSTED_SIGNING_KEYS (the public key of the server that took "
                             "them); nothing was restored")


def _proven_bases(settings: Settings, store: S3Store, system_identifier: str,
                  allow_unsigned: bool) -> list[S3BaseBackup]:
    archive = _archive(settings, system_identifier, allow_unsigned=allow_unsigned)
    return base_backups(store, system_identifier, vouch=archive.vouch,
                        identities=archive.identities)


def recover_cluster(settings: Settings, target: RecoveryTarget, pgdata: Path,
                    owner: tuple[int, int], *, base_backup: Path | None = None,
                    system_identifier: str | None = None,
                    allow_unsigned: bool = False) -> RecoveredCluster:
    """Recover into empty `pgdata` (run as `owner`) as of `target` from a base backup (the
    newest in S3 that ended before it, or `base_backup`, a local pg_basebackup output) and the
    WAL archive; raise a BackupAgentError on any failure (`pgdata` is emptied again)."""
    if base_backup is not None:
        return _recover_from(settings, target, pgdata, owner, local_base_backup(base_backup),
                             ["the base backup is a local directory: nothing proves it is "
                              "your server's (base backups from S3 are signed)"],
                             allow_unsigned=allow_unsigned)
    bases = _s3_bases(settings, target, system_identifier, allow_unsigned=allow_unsigned)
    skipped: list[str] = []
    while True:
        base = bases.pop(0)
        try:
            return _recover_from(settings, target, pgdata, owner, base, skipped,
                                 allow_unsigned=allow_unsigned)
        except BaseWalMissingError as error:
            # Taken while the stream was down, or its WAL not uploaded yet: for `latest`, an
            # older base backup that ended before the archive does reaches as far. (For a T,
            # the older one's replay would need the same missing WAL; after a hole, too.)
            bases = [older for older in bases if older.end_lsn < error.archive_end]
            if not target.latest or error.hole or not bases:
                raise
            skipped.append(f"{base.describe()} was passed over: {error}; recovered from "
                           "an older one")
            log.info("%s", skipped[-1])


class BaseWalMissingError(SourceNotFoundError):
    """The archive lacks WAL the base backup itself needs to be consistent."""

    def __init__(self, message: str, *, archive_end: int, hole: bool) -> None:
        super().__init__(message)
        self.archive_end = archive_end  # the LSN where the archive's WAL stops
        self.hole = hole  # WAL exists after the missing segment: nothing older helps


def _recover_from(settings: Settings, target: RecoveryTarget, pgdata: Path,
                  owner: tuple[int, int], base: BaseSource, warnings: list[str], *,
                  allow_unsigned: bool) -> RecoveredCluster:
    binaries = settings.postgres.bin_directory
    scratch = Path(tempfile.mkdtemp(prefix="backup-agent-pitr-"))
    try:
        base.extract_into(pgdata, owner)
        facts = control_facts(binaries, pgdata)
        refuse_incompatible(binaries, pgdata, facts, system_identifier=(
            base.descriptor.system_identifier if isinstance(base, S3BaseBackup) else None))
        archive = _archive(settings, facts.system_identifier, allow_unsigned=allow_unsigned)
        wal_directory, tail_directory = scratch / "wal", scratch / "tail"
        for directory in (wal_directory, tail_directory):
            directory.mkdir(mode=0o700)
        shutil.chown(scratch, owner[0], owner[1])
        shutil.chown(wal_directory, owner[0], owner[1])
        plan = follow(archive, start_timeline=base.start_timeline, start_lsn=base.start_lsn,
                      segment_bytes=facts.segment_bytes, directory=wal_directory, owner=owner)
        tail = _tail(archive, plan, tail_directory)
        first = base.start_lsn // facts.segment_bytes
        last = base.end_lsn // facts.segment_bytes
        with Prefetcher(archive, plan, wal_directory, first, owner=owner) as prefetcher:
            for number in range(first, last + 1):
                try:
                    prefetcher.wait_for(number, timeout=BASE_WAL_WAIT_SECONDS)
                except SourceNotFoundError as error:
                    gap = prefetcher.gap
                    raise BaseWalMissingError(
                        f"{error} (the base backup's own WAL)", hole=gap is None or gap.hole,
                        archive_end=(gap.segment if gap else number) * facts.segment_bytes,
                    ) from None
            window = restorable_window(
                binaries, base, base_wal=wal_directory,
                base_segments=(plan.name_of(first), plan.name_of(last)),
                tail_wal=tail_directory, tail_segments=tail)
            window.check(target)
            reached = recover(Recovery(data_directory=pgdata, wal_directory=wal_directory,
                                       target=target, timeline=plan.target,
                                       bin_directory=binaries, owner=owner), prefetcher)
    except BaseException:
        empty(pgdata)
        raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return RecoveredCluster(base_backup=base.describe(), window=window.describe(),
                            reached=reached, trusted=base.trusted and archive.vouch is not None,
                            warnings=list(warnings))


def empty(directory: Path) -> None:
    """Remove everything inside `directory` (never following a link out of it)."""
    for entry in directory.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
