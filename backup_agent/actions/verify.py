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
from typing import TYPE_CHECKING, Any

from backup_agent.keys.age_identities import decryption_keys
from backup_agent.keys.trust import TrustedCatalog as Catalog
from backup_agent.keys.trust import (
    authenticity_warnings,
    is_trusted,
    untrusted_reason,
    with_own_key,
)
from backup_agent.model.backup import BackupRef
from backup_agent.model.database_names import SCRATCH, made_name
from backup_agent.model.errors import (
    BackupAgentError,
    ConfigurationError,
    DatabaseError,
    RestoreError,
    SourceNotFoundError,
    VerificationError,
)
from backup_agent.model.progress import NO_PROGRESS, Progress
from backup_agent.model.settings import Settings
from backup_agent.postgres.admin import DatabaseAdmin
from backup_agent.postgres.session import SqlSession
from backup_agent.restoring.build import Request, build, reachable
from backup_agent.restoring.proof import proven, spool_directory
from backup_agent.restoring.rebuild import Rebuild, globals_problem, proven_globals
from backup_agent.streams.statements import StatementCheck
from backup_agent.streams.verify import Verdict, checksum_stream, verify_stream

if TYPE_CHECKING:
    from pyrage.x25519 import Identity

log = logging.getLogger(__name__)
ROW_SECURITY = "would be affected by row-level security policy"  # the server's refusal


@dataclass
class RestoreTest:
    scratch_database: str
    passed: bool
    tables_checked: int
    mismatches: list[str] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)  # settings this server lacks
    catalog_compared: bool = False  # the backup's catalog fingerprint was compared too
    roles_created: list[str] = field(default_factory=list)  # for the test, then dropped


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
    backups: list[VerifiedBackup]
    duration_seconds: float
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"backups": [asdict(item) for item in self.backups],
                "duration_seconds": self.duration_seconds}

    def failure(self) -> BackupAgentError | None:
        failed = [item.name for item in self.backups if not item.ok]
        if not failed:
            return None
        return VerificationError(f"verification failed for {', '.join(failed)}: see above; "
                                 "use an earlier backup and investigate",
                                 details=self.to_dict())


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


def _restore_test(settings: Settings, backup: BackupRef, moment: datetime,
                  keys: list[Identity] | None, progress: Progress) -> tuple[Verdict, RestoreTest]:
    """Prove the backup, then build a scratch database from the proven bytes exactly as a
    restore would (restoring/build.py) and compare it with what the backup recorded.

    Roles the server lacks are created for the test (NOLOGIN) and dropped after it."""
    scratch = made_name(settings.postgres.database, SCRATCH, moment)
    reachable(settings.postgres)
    trusted = is_trusted(settings, backup)
    cluster = proven_globals(backup, keys)
    with proven(backup, identities=keys, spool_in=spool_directory(settings.backup_directory),
                progress=progress.task(backup.progress_label("verify"),
                                       backup.size).update) as proof:
        if not proof.verdict.good:  # nothing of it runs
            return proof.verdict, RestoreTest(scratch_database=scratch, passed=False,
                                              tables_checked=0, mismatches=[])
        with DatabaseAdmin(settings.postgres) as admin:
            # A backup without globals keeps the old way: no owners, no roles created.
            rebuild = Rebuild(admin, cluster, server_major=admin.server_major(),
                              no_owner=cluster is None, for_test=True, trusted=trusted)
            mismatches: list[str] = []
            notes: list[str] = []
            actual: dict[str, int] = {}
            compared = False
            try:
                request = Request(name=scratch, target=scratch, trusted=trusted,
                                  no_owner=rebuild.no_owner)
                built = build(settings.postgres, rebuild, proof, request, identities=keys,
                              progress=progress.task(f"restore-test {backup.name}",
                                                     backup.size).update)
                notes = built.notes
                actual, compared = _compare(settings, backup, scratch, rebuild, mismatches)
            except RestoreError as error:
                mismatches.append(str(error))
            finally:
                created = list(rebuild.created_roles)
                admin.drop(scratch)
                rebuild.undo()
    return proof.verdict, RestoreTest(scratch_database=scratch, passed=not mismatches,
                                      tables_checked=len(actual), mismatches=mismatches,
                                      left_out=notes + rebuild.notes,
                                      catalog_compared=not mismatches and compared,
                                      roles_created=created)


def _compare(settings: Settings, backup: BackupRef, scratch: str, rebuild: Rebuild,
             mismatches: list[str]) -> tuple[dict[str, int], bool]:
    """Row counts against the manifest; the catalog against the backup's fingerprint."""
    expected = (backup.manifest or {}).get("row_counts")
    actual: dict[str, int] = {}
    if not isinstance(expected, dict):
        mismatches.append("no manifest with row counts to compare against")
    else:
        with SqlSession(settings.postgres, scratch) as session:
            session.query("SELECT 1;")  # the restored database accepts connections
            try:
                actual = session.row_counts(row_security_off=True)
            except DatabaseError as error:
                if ROW_SECURITY not in str(error):
                    raise
                mismatches.append(f"rows not counted: {str(error).splitlines()[0]} (its "
                                  f"policies apply to {settings.postgres.user}, the owner "
                                  "with --no-owner: restore-test as a superuser)")
                return actual, False
        mismatches += compare_row_counts(expected, actual)
    if rebuild.cluster is None or not rebuild.cluster.fingerprint:
        return actual, False
    from backup_agent.restoring.fingerprint import differences, observe

    fingerprint, properties, used = observe(settings.postgres, scratch, rebuild.server_major)
    mismatches += differences(rebuild.cluster, fingerprint, properties, used,
                              compare_owners=not rebuild.no_owner,
                              compare_role_settings=rebuild.trusted)
    return actual, True


def verify_one(settings: Settings, backup: BackupRef, *, restore_test: bool,
               moment: datetime, progress: Progress = NO_PROGRESS,
               allow_unsigned: bool = False) -> VerifiedBackup:
    untrusted = untrusted_reason(settings, backup, allow_unsigned=allow_unsigned)
    if untrusted is not None:  # not read at all: nothing of it is believed
        return VerifiedBackup(name=backup.name, location=backup.location, ok=False,
                              checksum="untrusted", gzip_complete=None, dump_complete=None,
                              size_bytes=backup.size, encrypted=backup.encrypted,
                              problems=[untrusted])
    test = None
    keys = decryption_keys(settings, backup, required=restore_test)
    checksum_only = backup.encrypted and keys is None
    problem = globals_problem(backup, keys, checksum_only=checksum_only)
    about_globals = [problem] if problem else []
    if restore_test and problem is None:
        verdict, test = _restore_test(settings, backup, moment, keys, progress)
    else:  # the dump is proven even when its globals file is not: say all that is wrong
        task = progress.task(backup.progress_label("verify"), backup.size)
        with backup.open() as stream:
            verdict = (checksum_stream(stream, expected_sha256=backup.expected_sha256,
                                       progress=task.update)
                       if checksum_only else
                       verify_stream(stream, expected_sha256=backup.expected_sha256,
                                     identities=keys, progress=task.update,
                                     check=StatementCheck()))
    if checksum_only:
        # Without the private key only the stored bytes can be proven: they hash to what
        # the backup run wrote after it had checked the dump complete.
        problems = verdict.checksum_problems() + about_globals
        ok = not problems
    else:
        problems = verdict.problems() + (test.mismatches if test else []) + about_globals
        ok = not problems and (test is None or test.passed)
    return VerifiedBackup(name=backup.name, location=backup.location, ok=ok,
                          checksum=verdict.checksum_state,
                          gzip_complete=None if checksum_only else verdict.gzip_complete,
                          dump_complete=None if checksum_only else verdict.dump_complete,
                          size_bytes=verdict.compressed_bytes, encrypted=backup.encrypted,
                          problems=problems, restore_test=test)


def run_verify(settings: Settings, given: str | None, *, from_s3: bool = False,
               all_backups: bool = False, restore_test: bool = False,
               allow_unsigned: bool = False, progress: Progress = NO_PROGRESS) -> VerifyResult:
    """Verify one backup (default: latest) or all; the result says which failed."""
    started = time.monotonic()
    if all_backups and given:
        raise ConfigurationError("give either a SOURCE or --all, not both")
    settings = with_own_key(settings)
    catalog = Catalog(settings, allow_unsigned=allow_unsigned)
    backups = (catalog.all(from_s3=from_s3) if all_backups
               else [catalog.resolve(given or "latest", from_s3=from_s3)])
    if not backups:
        raise SourceNotFoundError(f"no backups to verify ({'s3' if from_s3 else 'local'}): "
                                  "`backup-agent list` shows what there is")
    warnings = [*catalog.warnings, *authenticity_warnings(
        settings, backups, refuse=not all_backups, allow_unsigned=allow_unsigned)]
    moment = datetime.now(UTC)
    verified = [verify_one(settings, backup, restore_test=restore_test, moment=moment,
                           progress=progress, allow_unsigned=allow_unsigned)
                for backup in backups]
    warnings += sorted({note for item in verified if item.restore_test
                        for note in item.restore_test.left_out})
    return VerifyResult(backups=verified, duration_seconds=round(time.monotonic() - started, 3),
                        warnings=warnings)
