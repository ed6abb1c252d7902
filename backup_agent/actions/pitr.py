"""`backup-agent restore-cluster --to-time T --pgdata DIR`: the whole cluster as of T.

DIR must exist, be empty and belong to the user the server will run as; the recovery itself
(base backup and WAL proven, the window checked, replay checked by SQL, promoted, shut down
cleanly) is restoring/cluster.py's, shared with `restore --to-time`.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from backup_agent.keys.trust import with_own_key
from backup_agent.model.errors import BackupAgentError, ConfigurationError
from backup_agent.model.settings import Settings
from backup_agent.model.targets import parse_target
from backup_agent.physical.server import owner_of
from backup_agent.restoring.archive_now import archive_now
from backup_agent.restoring.cluster import (
    check_base_backups,
    recover_cluster,
    require_trusted_keys,
)


@dataclass
class ClusterRestoreResult:
    pgdata: str
    to_time: str
    base_backup: str
    window: str
    last_commit: str | None  # the last transaction replayed
    lsn: str
    timeline: str
    trusted: bool  # base backup and WAL proven with trusted signatures
    duration_seconds: float
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def failure(self) -> BackupAgentError | None:
        return None


def _empty_directory(pgdata: Path) -> Path:
    pgdata = pgdata.absolute()  # the server runs with / as its working directory
    if not pgdata.is_dir():
        raise ConfigurationError(f"--pgdata {pgdata} does not exist: create it empty, owned "
                                 "by the user the server will run as, mode 0700")
    if any(pgdata.iterdir()):
        raise ConfigurationError(f"--pgdata {pgdata} is not empty: a cluster restore never "
                                 "writes over files; give it an empty directory")
    return pgdata


def run_restore_cluster(settings: Settings, *, to_time: str, pgdata: Path,
                        base_backup: Path | None = None, system_identifier: str | None = None,
                        allow_unsigned: bool = False) -> ClusterRestoreResult:
    """Restore the whole cluster into empty `pgdata` as of `to_time`; raise a
    BackupAgentError on any failure (`pgdata` is emptied again)."""
    started = time.monotonic()
    target = parse_target(to_time)
    settings = with_own_key(settings)
    # Everything that can be refused is, before the live server is asked for anything.
    require_trusted_keys(settings, allow_unsigned=allow_unsigned)
    pgdata = _empty_directory(pgdata)
    owner = owner_of(pgdata)
    if base_backup is None:
        check_base_backups(settings, target, system_identifier=system_identifier,
                           allow_unsigned=allow_unsigned)
    late_wal = archive_now(settings, target, datetime.now(UTC), required=False)
    recovered = recover_cluster(settings, target, pgdata, owner,
                                base_backup=base_backup, system_identifier=system_identifier,
                                allow_unsigned=allow_unsigned)
    reached = recovered.reached
    return ClusterRestoreResult(
        pgdata=str(pgdata), to_time=target.describe(), base_backup=recovered.base_backup,
        window=recovered.window,
        last_commit=reached.last_commit.isoformat() if reached.last_commit else None,
        lsn=reached.lsn, timeline=reached.timeline, trusted=recovered.trusted,
        duration_seconds=round(time.monotonic() - started, 3),
        warnings=[*recovered.warnings, *([f"{late_wal}: the cluster was restored only as far as "
                                          "the archive reaches"] if late_wal else [])])
