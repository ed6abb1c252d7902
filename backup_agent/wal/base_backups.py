"""The base backups in the bucket, as a cluster restore starts from them.

`backup-agent base-backup` stores `base/<system identifier>/<stamp>/base.tar` and, last, its
signed `descriptor.json` (physical/descriptor.py): a base backup without a descriptor is
incomplete and never listed here. A restore to T starts from the newest base backup that
ended before T. Its tar is downloaded into a private file and proven (decryption, gzip,
the plaintext SHA-256 and size the signed descriptor names) before a byte is extracted.
"""

from __future__ import annotations

import logging
import os
import tarfile
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from backup_agent.model.errors import SourceNotFoundError, VerificationError
from backup_agent.physical.base_source import extract_cluster_tar
from backup_agent.physical.descriptor import DESCRIPTOR_NAME, Descriptor, parse_descriptor
from backup_agent.wal.codec import decode_stream
from backup_agent.wal.names import BASE_ROOT, check_system_identifier, parse_base_key, parse_lsn
from backup_agent.wal.objects import Facts, Vouch
from backup_agent.wal.prove import read_proven

if TYPE_CHECKING:
    from pyrage.x25519 import Identity

    from backup_agent.storage.s3 import S3Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class S3BaseBackup:
    """One complete base backup in the bucket (its descriptor proven): a `BaseSource`."""

    store: S3Store
    descriptor: Descriptor
    descriptor_key: str  # relative to S3_PREFIX
    trusted: bool  # its descriptor carries a trusted signature
    identities: Sequence[Identity] = ()

    @property
    def start_lsn(self) -> int:
        return parse_lsn(self.descriptor.start_lsn)

    @property
    def start_timeline(self) -> int:
        return self.descriptor.start_timeline

    @property
    def end_lsn(self) -> int:
        return parse_lsn(self.descriptor.end_lsn)

    @property
    def start_time(self) -> datetime | None:
        return datetime.fromisoformat(self.descriptor.start_time)

    @property
    def end_time(self) -> datetime | None:
        # Written when pg_basebackup had finished: every commit in its range is older.
        return datetime.fromisoformat(self.descriptor.end_time)

    def describe(self) -> str:
        return f"the base backup {self.store.url(self.store.prefix + self.descriptor_key)}"

    def extract_into(self, directory: Path, owner: tuple[int, int]) -> None:
        """Download and prove the tar into a private file beside `directory`, then extract
        it there; nothing is extracted from a tar that did not prove."""
        tar = self.descriptor.tar
        facts = Facts(sha256=tar.sha256, size=tar.size, encoding=tar.encoding)
        what = self.store.url(self.store.prefix + tar.key)
        with tempfile.TemporaryFile(dir=directory.parent, prefix=".base-backup-") as spool:
            source = self.store.opener(self.store.prefix + tar.key, tar.stored_size)()
            try:
                decode_stream(source, spool, facts, identities=self.identities, what=what)
            finally:
                source.close()
            spool.seek(0)
            with tarfile.open(fileobj=spool, mode="r:") as archive:
                extract_cluster_tar(archive, directory, what=what)
        for root, directories, files in os.walk(directory):
            for name in [*directories, *files]:
                os.chown(Path(root) / name, *owner, follow_symlinks=False)


def system_identifiers(store: S3Store) -> list[str]:
    """The clusters that have base backups in the bucket."""
    found = {parsed[0] for item in store.list(store.prefix + BASE_ROOT)
             if (parsed := parse_base_key(item.key.removeprefix(store.prefix)))}
    return sorted(found)


def base_backups(store: S3Store, system_identifier: str, *, vouch: Vouch | None,
                 identities: Sequence[Identity] = ()) -> list[S3BaseBackup]:
    """Every complete base backup of the cluster, oldest first, each descriptor proven
    (signature, then content). One that fails its proof (planted with the writer's key,
    moved, or not a descriptor of this cluster) is passed over with a warning, as `latest`
    passes over an unsigned backup: planting one must not stop every restore."""
    prefix = f"{store.prefix}{BASE_ROOT}{check_system_identifier(system_identifier)}/"
    keys = sorted(item.key.removeprefix(store.prefix) for item in store.list(prefix)
                  if item.key.endswith(f"/{DESCRIPTOR_NAME}"))
    found = []
    for key in keys:
        if parse_base_key(key) is None:
            continue
        try:
            descriptor = _descriptor(store, key, system_identifier, vouch, identities)
        except VerificationError as error:
            log.warning("passed over the base backup %s: %s", store.url(store.prefix + key),
                        error)
            continue
        found.append(S3BaseBackup(store=store, descriptor=descriptor, descriptor_key=key,
                                  trusted=vouch is not None, identities=identities))
    return sorted(found, key=lambda backup: backup.descriptor.end_time)


def _descriptor(store: S3Store, key: str, system_identifier: str, vouch: Vouch | None,
                identities: Sequence[Identity]) -> Descriptor:
    try:
        descriptor = parse_descriptor(read_proven(store, key, vouch=vouch,
                                                  identities=identities))
    except (ValueError, TypeError) as error:
        raise VerificationError(f"{store.url(store.prefix + key)} is not a base backup "
                                f"descriptor ({error}): it was not written by "
                                "base-backup") from None
    if descriptor.system_identifier != system_identifier:
        raise VerificationError(f"{store.url(store.prefix + key)} describes cluster "
                                f"{descriptor.system_identifier}, not {system_identifier}"
                                ": refusing it")
    return descriptor


def usable_before(backups: Sequence[S3BaseBackup], moment: datetime | None,
                  where: str) -> list[S3BaseBackup]:
    """The base backups that ended before `moment` (None: all), newest first; raise
    SourceNotFoundError when there is none."""
    usable = [backup for backup in backups
              if moment is None or (backup.end_time is not None and backup.end_time < moment)]
    if not usable and backups:  # a base backup taken now would not reach back either
        raise SourceNotFoundError(f"no base backup in {where} ended before the target; the "
                                  f"oldest ended at {backups[0].descriptor.end_time}, so "
                                  "earlier times cannot be restored: choose a later time")
    if not usable:
        raise SourceNotFoundError(f"no base backup in {where}: take one with `backup-agent "
                                  "base-backup` (times after it become restorable)")
    return usable[::-1]
