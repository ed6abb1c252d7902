"""`backup-agent base-backup`: one base backup to S3 (its chain is `wal/base_backup.py`).

The action checks what it needs (S3_BUCKET, the signing key) and hands the base backup to
the core `wal stream` also uses after a lost slot.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from backup_agent.model.errors import ConfigurationError
from backup_agent.model.settings import NO_BUCKET, Settings


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class BaseBackupResult:
    descriptor: dict[str, Any]
    descriptor_key: str
    bucket: str
    warnings: list[str] = field(default_factory=list)

    def failure(self) -> None:
        return None

    def to_dict(self) -> dict[str, Any]:
        return {"bucket": self.bucket, "descriptor_key": self.descriptor_key,
                **self.descriptor}


def run_base_backup(settings: Settings, *,
                    clock: Callable[[], datetime] = utc_now) -> BaseBackupResult:
    """Take one base backup into S3; return its descriptor. Raise a BackupAgentError."""
    from backup_agent.keys.signing import statement_signer
    from backup_agent.storage.s3 import S3Store
    from backup_agent.wal.base_backup import take_base_backup

    if not settings.s3.configured:
        raise ConfigurationError(f"{NO_BUCKET}: base backups go to S3 beside the WAL archive; "
                                 "set S3_BUCKET and AWS credentials")
    sign = statement_signer(settings.signing_key_file)  # a bad key fails before anything
    warnings = [] if sign else ["SIGNING_KEY_FILE is not set: the base backup is unsigned"]
    store = S3Store(settings.s3)
    descriptor, descriptor_key = take_base_backup(settings, store, sign, clock=clock)
    return BaseBackupResult(descriptor=descriptor, descriptor_key=descriptor_key,
                            bucket=store.bucket, warnings=warnings)
