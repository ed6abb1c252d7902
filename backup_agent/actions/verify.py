"""`backup-agent verify [SOURCE] [--all] [--restore-test]`: prove backups, without changing any.

Default: one streaming pass checks the SHA-256 against the sidecar, the whole gzip stream
and pg_dump's closing line (a local file or an S3 object, never downloaded to disk).
`--restore-test` restores into a scratch database instead and compares every table's row
count with the manifest, which recorded them in the dump's own snapshot.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from pyrage.x25519 import Identity

from backup_agent.actions.list import list_s3
from backup_agent.errors import ConfigurationError
from backup_agent.local_store import scan
from backup_agent.naming import STAMP_FORMAT
from backup_agent.postgres.admin import DatabaseAdmin, derived_name
from backup_agent.postgres.session import SqlSession
from backup_agent.progress import NO_PROGRESS, Progress, Task
from backup_agent.restore_stream import feed_psql
from backup_agent.settings import Settings
from backup_agent.sources import BackupSource, decryption_keys, resolve_source
from backup_agent.verification import Verdict, checksum_stream, verify_stream

log = logging.getLogger(__name__)


@dataclass
class RestoreTest:
    scratch_database: str
    passed: bool
    tables_checked: int
    mismatches: list[str] = field(default_factory=list)


@dataclass
class VerifiedBackup:
    name: str
    location: str
    ok: bool
    checksum: str  # "ok", "mismatch", "missing"
    gzip_complete: bool | None  # None: not checked (encrypted, no --identity)
    dump_complete: bool | None
    size_bytes: int
    encrypted: bool = False
    problems: list[str] = field(default_factory=list)
    restore_test: RestoreTest | None = None


@dataclass
class VerifyResult:
    status: str  # "success" or "failure"
    backups: list[VerifiedBackup]
    duration_seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _checksum(verdict: Verdict) -> str:
    if verdict.expected_sha256 is None:
        return "missing"
    return "ok" if verdict.checksum_matches else "mismatch"


def compare_row_counts(expected: dict[str, int], actual: dict[str, int]) -> list[str]:
    """Return one line per table whose count (or existence) differs."""
    lines = []
    for table in sorted(set(expected) | set(actual)):
        if table not in actual:
            lines.append(f"{table}: missing after restore (manifest: {expected[table]} rows)")
        elif table not in expected:
            lines.append(f"{table}: not in the manifest ({actual[table]} rows restored)")
        elif expected[table] != actual[table]:
            lines.append(f"{table}: {actual[table]} rows restored, manifest says "
                         f"{expected[table]}")
    return lines


def _restore_test(settings: Settings, source: BackupSource, moment: datetime,
                  keys: list[Identity] | None, task: Task) -> tuple[Verdict, RestoreTest]:
    scratch = derived_name(settings.postgres.database,
                           f"_verify_{moment.astimezone(UTC).strftime(STAMP_FORMAT)}")
    with DatabaseAdmin(settings.postgres) as admin:
        admin.create_like(scratch, None, keep_owner=False)
        try:
            stream = source.open()
            try:
                fed = feed_psql(settings.postgres, scratch, stream,
                                expected_sha256=source.expected_sha256, no_owner=True,
                                identities=keys, progress=task.update)
            finally:
                stream.close()
            mismatches = []
            if not fed.psql_ok:
                mismatches.append(f"psql failed: {fed.psql_error}")
            expected = (source.manifest or {}).get("row_counts")
            if not isinstance(expected, dict):
                mismatches.append("no manifest with row counts to compare against")
                actual: dict[str, int] = {}
            else:
                with SqlSession(settings.postgres, scratch) as session:
                    session.query("SELECT 1;")  # the restored database accepts connections
                    actual = session.row_counts()
                mismatches += compare_row_counts(expected, actual)
        finally:
            admin.drop(scratch)
    return fed.verdict, RestoreTest(scratch_database=scratch, passed=not mismatches,
                                    tables_checked=len(actual), mismatches=mismatches)


def verify_one(settings: Settings, source: BackupSource, *, restore_test: bool,
               moment: datetime, progress: Progress = NO_PROGRESS) -> VerifiedBackup:
    test = None
    keys = decryption_keys(settings, source, required=restore_test)
    checksum_only = source.encrypted and keys is None
    task = progress.task(source.progress_label("restore-test" if restore_test else "verify"),
                         source.size)
    if restore_test:
        verdict, test = _restore_test(settings, source, moment, keys, task)
    else:
        stream = source.open()
        try:
            verdict = (checksum_stream(stream, expected_sha256=source.expected_sha256,
                                       progress=task.update)
                       if checksum_only else
                       verify_stream(stream, expected_sha256=source.expected_sha256,
                                     identities=keys, progress=task.update))
        finally:
            stream.close()
    if checksum_only:
        # Without the private key only the stored bytes can be proven: they hash to what
        # the backup run wrote after it had checked the dump complete.
        problems = verdict.checksum_problems()
        ok = not problems
    else:
        problems = verdict.problems() + (test.mismatches if test else [])
        ok = verdict.good and (test is None or test.passed)
    log.info("%s %s%s", source.location,
             ("checksum verified (encrypted: content not checked without --identity)"
              if checksum_only else "verified") if ok else "FAILED: ",
             "" if ok else "; ".join(problems))
    return VerifiedBackup(name=source.name, location=source.location, ok=ok,
                          checksum=_checksum(verdict),
                          gzip_complete=None if checksum_only else verdict.gzip_complete,
                          dump_complete=None if checksum_only else verdict.dump_complete,
                          size_bytes=verdict.compressed_bytes, encrypted=source.encrypted,
                          problems=problems, restore_test=test)


def _all_sources(settings: Settings, *, from_s3: bool) -> list[BackupSource]:
    if from_s3:
        return [resolve_source(settings, backup.location, from_s3=True)
                for backup in list_s3(settings)]
    return [resolve_source(settings, str(backup.path), from_s3=False)
            for backup in scan(settings.backup_directory)]


def run_verify(settings: Settings, given: str | None, *, from_s3: bool = False,
               all_backups: bool = False, restore_test: bool = False,
               progress: Progress = NO_PROGRESS) -> VerifyResult:
    """Verify one backup (default: latest) or all; the result says which failed."""
    started = time.monotonic()
    if all_backups and given:
        raise ConfigurationError("give either a SOURCE or --all, not both")
    sources = (_all_sources(settings, from_s3=from_s3) if all_backups
               else [resolve_source(settings, given or "latest", from_s3=from_s3)])
    moment = datetime.now(UTC)
    verified = [verify_one(settings, source, restore_test=restore_test, moment=moment,
                           progress=progress)
                for source in sources]
    return VerifyResult(status="success" if all(item.ok for item in verified) else "failure",
                        backups=verified, duration_seconds=round(time.monotonic() - started, 3))
