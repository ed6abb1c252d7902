"""`backup-agent drill [--targets N]`: prove the point-in-time archive by restoring from it.

First the audit: `verify --wal`'s content and names levels over the whole archive, then the
newest base backup's window read in full (every segment downloaded proven and parsed by
pg_waldump). Any finding fails the drill before a target runs, even where no target would
land. Then N random moments in that window (one in each Nth of it), each recovered from S3
into a directory of its own and proven exact, opened, checked (restoring/drill.py). Exit 0
only when the audit is clean and every target is exact; 8 otherwise, with the reason.
"""

from __future__ import annotations

import random
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from backup_agent.keys.age_identities import first_identities
from backup_agent.keys.trust import NO_KEY, vouch_for, with_own_key
from backup_agent.model.drill import TargetReport, expected_stop, pick_moments
from backup_agent.model.errors import (
    BackupAgentError,
    ConfigurationError,
    SourceNotFoundError,
    VerificationError,
)
from backup_agent.model.settings import NO_BUCKET, Settings
from backup_agent.model.wal_report import Finding, Level, plain
from backup_agent.physical.amcheck import UNAVAILABLE
from backup_agent.physical.server import owner_named
from backup_agent.restoring.drill import drill_target
from backup_agent.storage.s3 import S3Store
from backup_agent.wal.archive import ClusterArchive, list_archive
from backup_agent.wal.survey import Survey, opening_findings, survey_cluster
from backup_agent.wal.window_wal import read_window

NO_TRUSTED_KEY = (f"{NO_KEY}: nothing in the archive can be proven, so nothing can be drilled; "
                  "set TRUSTED_SIGNING_KEYS to the server's public key")


@dataclass
class DrillResult:
    system_identifier: str | None
    base_backup: str | None  # the drilled base backup's stamp
    window: dict[str, str] | None  # the moments drilled from: start, end
    segments_read: int
    findings: list[Finding]
    targets: list[TargetReport]
    duration_seconds: float
    warnings: list[str] = field(default_factory=list)

    @property
    def exact(self) -> int:
        return sum(1 for target in self.targets if target.passed)

    def to_dict(self) -> dict[str, Any]:
        document: dict[str, Any] = plain({
            "drill": {"system_identifier": self.system_identifier,
                      "base_backup": self.base_backup, "window": self.window,
                      "segments_read": self.segments_read, "findings": self.findings,
                      "targets": [{**plain(target), "line": target.line}
                                  for target in self.targets],
                      "exact": self.exact},
            "duration_seconds": self.duration_seconds})
        return document

    def failure(self) -> BackupAgentError | None:
        if self.findings:
            return VerificationError(
                f"drill failed before any restore: the archive has {len(self.findings)} "
                f"problem(s), first: {self.findings[0].line}", details=self.to_dict())
        if not self.targets:  # nothing drilled proves nothing: never a success
            return VerificationError("drill restored no moment: the bucket holds no WAL "
                                     "archive to drill (is `wal stream` running, into this "
                                     "S3_BUCKET and S3_PREFIX?)", details=self.to_dict())
        failed = [target for target in self.targets if not target.passed]
        if failed:
            return VerificationError(
                f"drill failed: {len(failed)} of {len(self.targets)} target(s) not proven, "
                f"first: {failed[0].target.isoformat()}: {failed[0].problem}",
                details=self.to_dict())
        return None


def _cluster(clusters: dict[str, ClusterArchive], system_identifier: str | None,
             ) -> ClusterArchive | None:
    held = ", ".join(sorted(clusters)) or "none"
    if system_identifier is not None and system_identifier not in clusters:
        raise SourceNotFoundError(f"the bucket holds no WAL archive of cluster "
                                  f"{system_identifier} (it holds: {held}): check "
                                  "--system-identifier (a rebuilt server has a new one)")
    if system_identifier is not None:
        return clusters[system_identifier]
    if len(clusters) > 1:
        raise ConfigurationError(f"the bucket holds the WAL of {len(clusters)} clusters "
                                 f"({held}): pass --system-identifier ID")
    return next(iter(clusters.values()), None)


def _newest_base(survey: Survey) -> tuple[Any, Any] | None:
    """The newest timeline's path and the newest base backup on it, or None."""
    checks = [check for check in survey.checks if check.bases]
    if not checks:
        return None
    check = max(checks, key=lambda item: item.timeline)
    return check, check.bases[-1][1]


def run_drill(settings: Settings, *, targets: int = 3, run_as: str | None = None,
              system_identifier: str | None = None, seed: int | None = None) -> DrillResult:
    """Audit the archive, then restore to `targets` random moments and prove each."""
    started = time.monotonic()
    if targets < 1:
        raise ConfigurationError(f"--targets {targets}: drill at least one moment")
    if not settings.s3.configured:
        raise ConfigurationError(f"{NO_BUCKET}: the WAL archive is in S3; set S3_BUCKET")
    settings = with_own_key(settings)
    owner = owner_named(run_as)
    store = S3Store(settings.s3)
    vouch = vouch_for(settings.trusted_signing_keys)
    clusters = list_archive(store)
    findings = opening_findings(store, clusters, vouch, NO_TRUSTED_KEY)
    cluster = _cluster(clusters, system_identifier)
    result = DrillResult(system_identifier=cluster.system_identifier if cluster else None,
                         base_backup=None, window=None, segments_read=0, findings=findings,
                         targets=[], duration_seconds=0.0)
    if cluster is not None and vouch is not None:
        with tempfile.TemporaryDirectory(prefix="backup-agent-drill-") as workspace:
            _drill(settings, store, cluster, vouch, result, owner, Path(workspace),
                   targets, random.Random(seed))  # noqa: S311 - moments, not secrets
    result.duration_seconds = round(time.monotonic() - started, 3)
    unavailable = [target.amcheck for target in result.targets
                   if target.amcheck.startswith(UNAVAILABLE)]
    if unavailable:
        result.warnings.append(f"pg_amcheck did not run: {unavailable[0]}")
    return result


def _drill(settings: Settings, store: S3Store, cluster: ClusterArchive, vouch: Any,
           result: DrillResult, owner: tuple[int, int], workspace: Path, count: int,
           chooser: random.Random) -> None:
    survey = survey_cluster(store, cluster, vouch)
    result.findings += survey.content + survey.names
    newest = _newest_base(survey)
    if newest is None:
        result.findings.append(Finding(level=Level.NAMES, kind="base", message=(
            f"no complete base backup of cluster {cluster.system_identifier} on its newest "
            "timeline: nothing to drill; take one with `backup-agent base-backup`")))
        return
    check, descriptor = newest
    result.base_backup = descriptor.tar.key.rsplit("/", 2)[-2]
    workspace.chmod(0o711)  # each target's server user passes through to its own directory
    wal_directory = workspace / "wal"
    wal_directory.mkdir(mode=0o700)
    window = read_window(store, settings.postgres, survey, check, descriptor, wal_directory,
                         vouch=vouch, identities=first_identities(settings))
    result.segments_read = window.segments
    result.findings += window.findings
    earliest = datetime.fromisoformat(descriptor.end_time) + timedelta(microseconds=1)
    latest = max((item.moment for item in window.transactions), default=None)
    if latest is None or latest <= earliest:
        result.findings.append(Finding(level=Level.NAMES, kind="window", message=(
            f"no transaction after base backup {result.base_backup} ended: there is no moment "
            "to drill yet in the archive: is `wal stream` running (`backup-agent status`)? "
            "On a quiet database, wait for the next write and WAL_MAX_DELAY")))
    if result.findings:
        return
    assert latest is not None
    result.window = {"start": earliest.isoformat(), "end": latest.isoformat()}
    for moment in pick_moments(earliest, latest, count, chooser):
        result.targets.append(drill_target(
            settings, moment, expected_stop(window.transactions, moment), owner=owner,
            system_identifier=cluster.system_identifier, workspace=workspace))
