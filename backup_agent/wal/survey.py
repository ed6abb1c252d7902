"""The archive's audit without downloading a segment: `verify --wal`'s content and names
levels for one cluster, shared by `verify --wal` and `drill`.

Content: every object's signed metadata (wal/audit.py); names: every timeline's path whole
from its oldest base backup on, each gap with the time it costs, each base backup's window
(wal/gaps.py). Objects that did not prove count as absent for the names level.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from backup_agent.model.wal_report import BaseBackupWindow, Finding, Level
from backup_agent.wal.archive import ClusterArchive
from backup_agent.wal.audit import Inventory, check_content
from backup_agent.wal.gaps import PathCheck, check_names

if TYPE_CHECKING:
    from backup_agent.storage.s3 import S3Store
    from backup_agent.wal.objects import Vouch


@dataclass
class Survey:
    """One cluster's archive as the content and names levels found it."""

    cluster: ClusterArchive
    inventory: Inventory
    content: list[Finding]
    names: list[Finding]
    windows: list[BaseBackupWindow]
    checks: list[PathCheck]


def survey_cluster(store: S3Store, cluster: ClusterArchive, vouch: Vouch | None) -> Survey:
    """Check every object's signature (one HEAD each), then the names on every path."""
    inventory, content = check_content(store, cluster, vouch)
    names, windows, checks = check_names(cluster, inventory)
    return Survey(cluster, inventory, content, names, windows, checks)


def opening_findings(store: S3Store, clusters: dict[str, ClusterArchive], vouch: Vouch | None,
                     no_key: str) -> list[Finding]:
    """What fails an audit before any object is read: no trusted key (`no_key` says which
    setting), no archive at all."""
    findings = [] if vouch else [Finding(level=Level.CONTENT, kind="key", message=no_key)]
    if not clusters:
        findings.append(Finding(level=Level.NAMES, kind="empty", message=(
            f"no WAL archive under {store.url(store.prefix)}wal/: nothing can be restored to a "
            "time (is `wal stream` running, with this S3_PREFIX?)")))
    return findings
