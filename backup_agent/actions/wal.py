"""`backup-agent wal stream`: compose the WAL archive (store, encoder, signer) and run it.

The stream itself (receiver, uploads, forced switches, the spool cap) is `wal/stream.py`;
this action decides what it is given: the S3 store (required: a WAL archive only on this
disk is no archive), ENCRYPT_TO and SIGNING_KEY_FILE, as backups use them, and how to take
the base backup that follows a lost slot (base-backup's core, `wal/base_backup.py`).
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from backup_agent.model.errors import ConfigurationError
from backup_agent.model.naming import AGENT_NAME
from backup_agent.model.settings import NO_BUCKET, Settings
from backup_agent.wal.objects import Sign
from backup_agent.wal.uploader import Encoder

UNSIGNED = ("SIGNING_KEY_FILE is not set: WAL is archived unsigned, and a restore that "
            "requires signatures will refuse it (set SIGNING_KEY_FILE as for backups)")


@dataclass
class StreamResult:
    state: dict[str, Any]
    warnings: list[str] = field(default_factory=list)

    def failure(self) -> None:
        return None

    def to_dict(self) -> dict[str, Any]:
        return {"wal": self.state}


def encoder_factory(settings: Settings, sign: Sign | None) -> Callable[[str], Encoder]:
    """Return how to build this server's Encoder once the system identifier is known."""
    extra = {"hostname": socket.gethostname(), "tool": AGENT_NAME}
    return lambda system_identifier: Encoder(system_identifier=system_identifier,
                                             recipients=settings.encrypt_to, sign=sign,
                                             extra_metadata=extra)


def run_wal_stream(settings: Settings, *, on_alarm: Callable[[str], None] | None = None,
                   warn: Callable[[str], None] | None = None,
                   should_stop: Callable[[], bool] = lambda: False) -> StreamResult:
    """Receive and archive WAL until stopped (SIGTERM); raise on a final error."""
    if not settings.s3.configured:
        raise ConfigurationError(f"{NO_BUCKET}: the WAL archive lives in S3; set S3_BUCKET "
                                 "and AWS credentials")
    from backup_agent.keys.signing import statement_signer
    from backup_agent.storage.lock import directory_lock
    from backup_agent.storage.s3 import S3Store
    from backup_agent.wal.base_backup import take_base_backup
    from backup_agent.wal.spool import agent_directory, check_spool
    from backup_agent.wal.stream import Stream

    check_spool(settings.wal.spool_directory)
    sign = statement_signer(settings.signing_key_file)  # a bad key fails now
    warnings = [] if settings.signing_key_file is not None else [UNSIGNED]
    for warning in warnings:
        if warn is not None:
            warn(warning)
    store = S3Store(settings.s3)
    if not store.has_credentials():  # else every upload would fail, alarming for ever
        raise ConfigurationError(f"S3_BUCKET={settings.s3.bucket} but no AWS credentials were "
                                 "found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")

    def rebase() -> str:
        descriptor, _key = take_base_backup(settings, store, sign)
        return str(descriptor["end_time"])

    stream = Stream(store, settings.postgres, settings.wal, encoder_factory(settings, sign),
                    on_alarm=on_alarm, rebase=rebase)
    # One stream per spool: a second one would set the first's live .partial aside before
    # it found the slot in use, and the first would then fail writing into the spool.
    with directory_lock(agent_directory(settings.wal.spool_directory), purpose="wal stream"):
        state = stream.run(should_stop)
    return StreamResult(state=state.to_dict(), warnings=warnings)
