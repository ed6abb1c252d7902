"""`backup-agent list [local|s3|all]`: every backup we can see, newest first."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from backup_agent.catalog import Catalog
from backup_agent.model.backup import BackupRef, Where
from backup_agent.model.settings import Settings


@dataclass(frozen=True)
class ListResult:
    where: Where
    backups: list[BackupRef]
    warnings: list[str] = field(default_factory=list)

    def failure(self) -> None:
        return None

    def to_dict(self) -> dict[str, Any]:
        return {"where": self.where.value,
                "backups": [backup.to_dict() for backup in self.backups]}


def run_list(settings: Settings, where: Where) -> ListResult:
    """Return the backups in the chosen places, newest first (local before S3 on a tie)."""
    listing = Catalog(settings).listing(where)
    return ListResult(where=where, backups=listing.backups, warnings=listing.warnings)
