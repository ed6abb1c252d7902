"""`backup-agent verify --wal [--deep]`: can the WAL archive restore every time it should?

Three levels, each reported: content (every object's signed metadata; --deep downloads,
decrypts and re-hashes each segment), names (every timeline's path has every segment from
its oldest base backup on; each gap named with its segments and the time it costs), and,
with --deep, parse (pg_waldump over the chain, pg_verifybackup over each base backup).
Reads only (list + get): no database server, no write. Exit 8 when anything is found.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from backup_agent.keys.age_identities import first_identities
from backup_agent.keys.trust import NO_KEY, vouch_for, with_own_key
from backup_agent.model.errors import BackupAgentError, ConfigurationError, VerificationError
from backup_agent.model.settings import NO_BUCKET, Settings
from backup_agent.model.wal_report import ClusterReport, Finding, Level, LevelReport, plain

if TYPE_CHECKING:

    from backup_agent.storage.s3 import S3Store
    from backup_agent.wal.archive import ClusterArchive
    from backup_agent.wal.objects import Vouch

NO_TRUSTED_KEY = (f"{NO_KEY}: the archive's signatures cannot be checked, so nothing in it is "
                  "proven; set TRUSTED_SIGNING_KEYS to the server's public key")


@dataclass
class WalVerifyResult:
    deep: bool
    clusters: list[ClusterReport]
    findings: list[Finding]
    levels: list[LevelReport]
    duration_seconds: float
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        document: dict[str, Any] = plain({
            "wal": {"deep": self.deep, "levels": self.levels, "clusters": self.clusters,
                    "findings": self.findings},
            "duration_seconds": self.duration_seconds})
        return document

    def failure(self) -> BackupAgentError | None:
        if not self.findings:
            return None
        return VerificationError(f"the WAL archive has {len(self.findings)} problem(s): see "
                                 "above; take a new base backup after a gap, and find out who "
                                 "wrote or removed what", details=self.to_dict())


def run_verify_wal(settings: Settings, *, deep: bool = False) -> WalVerifyResult:
    """Verify every cluster's WAL archive and base backups under S3_PREFIX."""
    from backup_agent.storage.s3 import S3Store
    from backup_agent.wal.archive import list_archive
    from backup_agent.wal.survey import opening_findings

    started = time.monotonic()
    if not settings.s3.configured:
        raise ConfigurationError(f"{NO_BUCKET}: the WAL archive is in S3; set S3_BUCKET")
    settings = with_own_key(settings)
    store = S3Store(settings.s3)
    vouch = vouch_for(settings.trusted_signing_keys)
    clusters = list_archive(store)
    findings = opening_findings(store, clusters, vouch, NO_TRUSTED_KEY)
    levels = {level: LevelReport(level=level, checked=level is not Level.PARSE or deep)
              for level in Level}
    reports = []
    for cluster in clusters.values():
        cluster_findings, report = _verify_cluster(settings, store, cluster, vouch, deep,
                                                   levels)
        findings += cluster_findings
        reports.append(report)
    order = list(Level)
    findings.sort(key=lambda item: (order.index(item.level), item.first_segment or ""))
    if deep:
        levels[Level.CONTENT].note = "downloaded, decrypted and re-hashed every segment"
    else:
        levels[Level.PARSE].note = "not run: --deep parses the WAL and checks base backups"
    return WalVerifyResult(deep=deep, clusters=reports, findings=findings,
                           levels=list(levels.values()),
                           duration_seconds=round(time.monotonic() - started, 3))


def _verify_cluster(settings: Settings, store: S3Store, cluster: ClusterArchive,
                    vouch: Vouch | None, deep: bool,
                    levels: dict[Level, LevelReport]) -> tuple[list[Finding], ClusterReport]:
    from backup_agent.wal.gaps import check_names
    from backup_agent.wal.survey import survey_cluster

    survey = survey_cluster(store, cluster, vouch)
    inventory, findings = survey.inventory, survey.content
    names, windows, checks = survey.names, survey.windows, survey.checks
    levels[Level.CONTENT].objects += inventory.objects_checked
    if deep:
        from backup_agent.wal.deep import (
            fetch_segments,
            parse_chain,
            verify_base_backups,
        )

        identities = first_identities(settings)
        with tempfile.TemporaryDirectory(prefix="backup-agent-verify-wal-") as workspace:
            directory = Path(workspace) / "pg_wal"
            directory.mkdir()
            findings += fetch_segments(store, cluster, inventory, checks, directory,
                                       vouch=vouch, identities=identities)
            parsed, last_commits = parse_chain(settings.postgres, directory, checks, inventory,
                                               cluster)
            findings += parsed
            findings += verify_base_backups(store, settings.postgres, inventory, identities,
                                            Path(workspace))
        levels[Level.PARSE].objects += len(inventory.descriptors) + len(inventory.segments())
        # Segments that failed --deep are gaps now; times from the commits read.
        names, windows, checks = check_names(cluster, inventory, last_commits)
    levels[Level.NAMES].objects += len(inventory.segments())
    report = ClusterReport(system_identifier=cluster.system_identifier,
                           timelines=[check.timeline for check in checks],
                           segments=len(inventory.segments()), base_backups=windows)
    return findings + names, report
