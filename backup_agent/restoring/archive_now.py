"""`--to-time latest`, or a T in the last minutes: make the archive reach now first.

The server's current WAL segment holds the newest commits and is not in S3 until it is
complete; the agent closes it (`pg_switch_wal()`) and waits until `wal stream` has stored
it. `restore --to-time` needs the server (it restores into it); `restore-cluster` does this
only when the server whose archive it restores still answers, and otherwise restores to the
archive's end as it is (a hole before that end still stops it).
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta

from backup_agent.model.errors import BackupAgentError, ConfigurationError, RestoreError
from backup_agent.model.settings import Settings
from backup_agent.model.targets import RecoveryTarget
from backup_agent.postgres.diagnosis import describe_server
from backup_agent.postgres.replication import WalServer
from backup_agent.storage.s3 import S3Store
from backup_agent.wal.names import WAL_ROOT, WalFile, WalKind, wal_key

log = logging.getLogger(__name__)

# A T this close to now may lie after the archive's last segment.
RECENT = timedelta(minutes=5)
ARCHIVE_WAIT_MINIMUM_SECONDS = 60.0
# Clocks of two machines disagree a little; a T further ahead than this is a mistake.
CLOCK_SKEW = timedelta(seconds=5)


def archive_now(settings: Settings, target: RecoveryTarget, now: datetime, *,
                required: bool) -> str | None:
    """For `latest` or a recent T, close the server's current WAL segment and wait until the
    stream has stored it. When it did not arrive: (`required`) raise RestoreError, before
    anything changed; otherwise return a warning (restore-cluster goes on to the archive's
    end as it is, and the window check refuses a T past it). Raise ConfigurationError for a
    T in the future, a BackupAgentError when (`required`) the server cannot be asked."""
    if target.moment is not None:
        if target.moment > now + CLOCK_SKEW:
            raise ConfigurationError(f"--to-time {target.describe()} is in the future (it is "
                                     f"{now.isoformat(timespec='seconds')} here): nothing was "
                                     "restored")
        if target.moment < now - RECENT:
            return None
    store = S3Store(settings.s3)
    try:
        wal_server = WalServer(settings.postgres)
        try:
            identifier, name = wal_server.archive_point()
        finally:
            wal_server.close()
    except BackupAgentError as error:
        if required:
            raise
        log.info("the server at %s does not answer (%s): restoring to the end of the archive "
                 "as it is", describe_server(settings.postgres), error)
        return None
    if not store.keys_after(f"{store.prefix}{WAL_ROOT}{identifier}/", "", limit=1):
        if required:
            raise RestoreError(f"the server at {describe_server(settings.postgres)} (system "
                               f"identifier {identifier}) has no WAL in s3://{store.bucket}/"
                               f"{store.prefix}{WAL_ROOT}: `wal stream` has never archived "
                               "it; nothing was restored")
        log.info("the server at %s is not the archive's (system identifier %s): restoring to "
                 "the end of the archive as it is", describe_server(settings.postgres),
                 identifier)
        return None
    late = _wait_for(store, settings, identifier, name)
    if late and required:
        raise RestoreError(f"{late}; nothing was restored")
    return late


def _wait_for(store: S3Store, settings: Settings, identifier: str, name: str) -> str | None:
    key = store.prefix + wal_key(identifier, WalFile(timeline=int(name[:8], 16), name=name,
                                                     kind=WalKind.SEGMENT))
    limit = max(ARCHIVE_WAIT_MINIMUM_SECONDS, 3 * settings.wal.max_delay.total_seconds())
    deadline = time.monotonic() + limit
    log.info("closed WAL segment %s; waiting for the stream to store it", name)
    while store.head(key) is None:
        if time.monotonic() > deadline:
            return (f"WAL file {name}, which holds what the server committed until now, did "
                    f"not reach s3://{store.bucket}/{key} within {limit:.0f} s (is `backup-agent "
                    "wal stream` running? `backup-agent status`)")
        time.sleep(0.5)
    return None
