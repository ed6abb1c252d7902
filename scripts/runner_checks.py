"""Runs ON THE RUNNER: backup summary, upload and freshness checks, the restore test's pick.

    python scripts/runner_checks.py summarize REPORT.json
    python scripts/runner_checks.py check-upload REPORT.json
    python scripts/runner_checks.py check-freshness --max-age-hours 26
    python scripts/runner_checks.py newest-backup
    python scripts/runner_checks.py summarize-restore-test REPORT.json
    python scripts/runner_checks.py newest-base-backup
    python scripts/runner_checks.py summarize-drill REPORT.json

The S3 checks use the bucket and keys from the environment (S3_BUCKET, AWS_*), that is the
runner's own view of the bucket, independent of what the server says. Exit 1 on failure,
with a GitHub `::error::` annotation (`newest-backup`: exit 8 when no trusted key signed
the newest backup); warnings become `::warning::` annotations.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from backup_agent.actions.backup import BackupResult
from backup_agent.cli.markdown import append_step_summary, backup_markdown, failure_markdown
from backup_agent.keys.trust import TrustedCatalog, is_trusted, vouch_for, with_own_key
from backup_agent.model.errors import SourceNotFoundError
from backup_agent.model.naming import checksum_name
from backup_agent.model.settings import resolve_settings
from backup_agent.storage.s3 import S3Store
from backup_agent.wal.base_backups import base_backups, system_identifiers

REFUSED = 8  # the agent's "verification failed" code: a backup it will not believe


def annotate(level: str, message: str) -> None:
    """Print a GitHub annotation; text from S3 or the server cannot start a line of its own."""
    escaped = message.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    print(f"::{level}::{escaped}", flush=True)


def load_report(path: Path) -> dict[str, Any]:
    """Return the agent's JSON result: the last JSON document in the file."""
    text = path.read_text()
    start = text.find("{")
    if start < 0:
        raise SystemExit(f"no JSON result in {path}")
    report: dict[str, Any] = json.loads(text[start:text.rfind("}") + 1])
    return report


def summarize(report: dict[str, Any]) -> int:
    if report.get("status") == "failure":
        append_step_summary(failure_markdown(str(report.get("command", "backup")),
                                             str(report.get("error")),
                                             int(report.get("exit_code", 1))))
        annotate("error", f"backup failed: {report.get('error')}")
        return 1
    append_step_summary(backup_markdown(BackupResult.from_dict(report)))
    for warning in report.get("warnings", []):
        annotate("warning", warning)
    return 0


def check_upload(report: dict[str, Any]) -> int:
    """Confirm, as the runner sees it, that the reported object is in S3 and intact."""
    location = report.get("s3")
    if not location:
        annotate("warning", "the backup was kept locally only: nothing to check in S3")
        return 0
    settings = resolve_settings({}, os.environ)
    store = S3Store(settings.s3, bucket=location["bucket"])
    head = store.head(location["key"])
    problems = []
    if head is None:
        problems.append("the object does not exist")
    else:
        if head["ContentLength"] != report["size_bytes"]:
            problems.append(f"size {head['ContentLength']} != reported {report['size_bytes']}")
        sidecar = store.read_small(checksum_name(location["key"]))
        if report["sha256"] not in sidecar.decode(errors="replace"):
            problems.append("its .sha256 sidecar does not hold the reported checksum")
    if problems:
        annotate("error", f"{location['uri']}: {'; '.join(problems)}")
        return 1
    print(f"confirmed {location['uri']}: {report['size_bytes']} bytes, sha256 {report['sha256']}")
    return 0


def check_freshness(max_age: timedelta, now: datetime) -> int:
    """Fail unless the newest complete backup in S3 is younger than `max_age`."""
    settings = resolve_settings({}, os.environ)
    catalog = TrustedCatalog(settings, now=now)
    try:
        # `latest`: names dated ahead and (with TRUSTED_SIGNING_KEYS) unsigned backups are
        # passed over, exactly as a restore would.
        newest = catalog.latest(from_s3=True)
    except SourceNotFoundError:
        newest = None
    for warning in catalog.warnings:
        annotate("warning", warning)
    if newest is None:
        annotate("error", f"no complete backup in s3://{settings.s3.bucket}/{settings.s3.prefix}")
        return 1
    age = newest.age(now)  # by its name or its LastModified, whichever is older
    hours = age.total_seconds() / 3600
    if age > max_age:
        annotate("error", f"the newest backup in S3, {newest.name}, is {hours:.1f} hours old "
                          f"(limit {max_age.total_seconds() / 3600:.0f}): backups have stopped")
        return 1
    print(f"newest backup in S3: {newest.name}, {hours:.1f} hours old")
    return 0


def newest_backup(now: datetime) -> int:
    """Print `uri=`, `name=` and `postgres-major=` lines for the newest complete S3 backup.

    The same pick as `latest` (trusted signatures, no names dated ahead); the major version is
    the one of the server that made it, from its manifest, for the restore test's container.
    """
    settings = with_own_key(resolve_settings({}, os.environ))
    catalog = TrustedCatalog(settings, now=now)
    try:
        newest = catalog.latest(from_s3=True)
    except SourceNotFoundError as error:
        annotate("error", str(error))
        return 1
    for warning in catalog.warnings:
        annotate("warning", warning)
    if not is_trusted(settings, newest):
        # Its manifest names the container's image: only a signed one is believed, so a
        # planted backup cannot pick an old psql, or any image, for the runner.
        annotate("error", f"{newest.name} is not signed by a key of TRUSTED_SIGNING_KEYS "
                          "(the BACKUP_TRUSTED_SIGNING_KEYS secret): nothing is restored; set "
                          "the secret to the server's public key")
        return REFUSED
    version = str((newest.manifest or {}).get("server_version", ""))
    major = re.match(r"\d+", version)
    if major is None:
        annotate("error", f"{newest.name}: its manifest names no server version "
                          f"({version!r}): set RESTORE_TEST_POSTGRES_MAJOR")
        return 1
    print(f"uri={newest.location}\nname={newest.name}\npostgres-major={major.group()}")
    return 0


def newest_base_backup() -> int:
    """Print `system-identifier=` and `postgres-major=` of the newest base backup in S3 whose
    descriptor a trusted key signed: the drill's image is that major's (a planted descriptor
    cannot choose it). Exit 8 without a trusted key or a signed base backup."""
    settings = with_own_key(resolve_settings({}, os.environ))
    if not settings.trusted_signing_keys:
        annotate("error", "no trusted signing key (the BACKUP_TRUSTED_SIGNING_KEYS secret): no "
                          "base backup can be proven, nothing is drilled; set the secret to "
                          "the server's public key")
        return REFUSED
    store = S3Store(settings.s3)
    clusters = system_identifiers(store)
    if len(clusters) != 1:
        annotate("error", f"the bucket holds base backups of {len(clusters)} clusters "
                          f"({', '.join(clusters) or 'none'}): the drill needs exactly one")
        return 1
    backups = base_backups(store, clusters[0],
                           vouch=vouch_for(settings.trusted_signing_keys))
    if not backups:
        annotate("error", f"no base backup of cluster {clusters[0]} in S3 is signed by a key "
                          "of TRUSTED_SIGNING_KEYS: nothing is drilled")
        return REFUSED
    print(f"system-identifier={clusters[0]}\n"
          f"postgres-major={backups[-1].descriptor.major_version}")
    return 0


def summarize_drill(report: dict[str, Any]) -> int:
    """Annotate the drill's warnings and, when it failed, its one-line reason (the agent
    wrote the step summary itself)."""
    return verdict(report, "point-in-time drill")


def verdict(report: dict[str, Any], what: str) -> int:
    """Annotate a report's warnings, and its error when it failed (then return 1)."""
    for warning in report.get("warnings", []):
        annotate("warning", warning)
    if report.get("status") == "failure":
        annotate("error", f"{what} failed: {report.get('error')}")
        return 1
    return 0


def summarize_restore_test(report: dict[str, Any]) -> int:
    """Write the restore test's result to the step summary; annotate and fail if it failed."""
    lines = [f"### Weekly restore test (from S3, on the runner): {report.get('status')}", ""]
    for item in report.get("backups", []):
        test = item.get("restore_test") or {}
        problems = "; ".join(item.get("problems", []))
        lines.append(f"- `{item.get('name')}`: {'ok' if item.get('ok') else 'FAILED'}, "
                     f"{test.get('tables_checked', 0)} tables' row counts compared"
                     + (f"; {problems}" if problems else ""))
    if report.get("status") == "failure":
        lines.append(f"- error: {report.get('error')}")
    append_step_summary("\n".join(lines) + "\n")
    return verdict(report, "restore test")


def main(arguments: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("summarize", "check-upload", "summarize-restore-test", "summarize-drill"):
        commands.add_parser(name).add_argument("report", type=Path)
    freshness = commands.add_parser("check-freshness")
    freshness.add_argument("--max-age-hours", type=float, default=26)
    commands.add_parser("newest-backup")
    commands.add_parser("newest-base-backup")
    options = parser.parse_args(arguments)
    if options.command == "summarize":
        return summarize(load_report(options.report))
    if options.command == "check-upload":
        return check_upload(load_report(options.report))
    if options.command == "summarize-restore-test":
        return summarize_restore_test(load_report(options.report))
    if options.command == "newest-backup":
        return newest_backup(datetime.now(UTC))
    if options.command == "newest-base-backup":
        return newest_base_backup()
    if options.command == "summarize-drill":
        return summarize_drill(load_report(options.report))
    return check_freshness(timedelta(hours=options.max_age_hours), datetime.now(UTC))


if __name__ == "__main__":
    sys.exit(main())
