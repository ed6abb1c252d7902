"""`backup-agent doctor`: check everything a backup needs, one line per check, with the fix.

The guide's troubleshooting table, as code: PostgreSQL reachable with these credentials,
pg_dump present and not older than the server (inside the container in docker mode), a
restore able to connect itself (as the restoring user, and as a role of its own with a
password: pg_hba.conf), the signing key present and private, the backup directory writable
with room for the next backup, S3 reachable, the bucket encrypted, private, with a
lifecycle rule, versioning and a policy that denies writing over a backup, and the key able
to create, read and list under the prefix (and S3 refusing to write over what it created).
With ENCRYPT_TO, that the private key is not configured here. Where point-in-time recovery
is in use, each of its pieces (wal/checks.py).
"""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from backup_agent.model.errors import (
    BackupAgentError,
    ConfigurationError,
    DoctorFailedError,
    LocalStorageError,
    ObjectExistsError,
)
from backup_agent.model.settings import NO_BUCKET, Settings
from backup_agent.postgres.clients import check_client_not_older
from backup_agent.postgres.session import ServerFacts, SqlSession
from backup_agent.restoring.login_probe import probe_restore_login
from backup_agent.storage import local
from backup_agent.storage.s3 import S3Store
from backup_agent.storage.s3_bucket import ENCRYPTED_AT_REST, BucketConfiguration

# Each run creates one new probe object here, create-only like a backup (so the bucket
# policy's create-only rule lets it through); the writer cannot delete, the lifecycle rule
# expires it with the backups.
PROBE_DIRECTORY = ".backup-agent-doctor/"
PROBE_BODY = b"backup-agent doctor probe\n"
PROBE_OVERWRITE = b"backup-agent doctor probe, written over\n"
HEADROOM = 1.5  # room wanted for the next backup, relative to the estimate


@dataclass
class Check:
    name: str
    passed: bool
    detail: str


@dataclass
class DoctorResult:
    checks: list[Check] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"checks": [asdict(check) for check in self.checks]}

    def failure(self) -> BackupAgentError | None:
        failed = [check.name for check in self.checks if not check.passed]
        if not failed:
            return None
        return DoctorFailedError(f"{len(failed)} check(s) failed: {', '.join(failed)}",
                                 details=self.to_dict())


def _run(result: DoctorResult, name: str, check: Callable[[], str]) -> bool:
    try:
        result.checks.append(Check(name, True, check()))
        return True
    except BackupAgentError as error:
        result.checks.append(Check(name, False, str(error)))
    except Exception as error:  # noqa: BLE001 - a doctor reports every failure as a line
        result.checks.append(Check(name, False, f"{type(error).__name__}: {error}"))
    return False


class BucketProblem(BackupAgentError):
    pass


def run_doctor(settings: Settings) -> DoctorResult:
    result = DoctorResult()
    facts: list[ServerFacts] = []
    database_size: list[int] = []

    def postgres() -> str:
        with SqlSession(settings.postgres, settings.postgres.database) as session:
            facts.append(session.server_facts())
            database_size.append(int(session.query(
                "SELECT pg_database_size(current_database());")[0]))
        return (f"PostgreSQL {facts[0].version}, database {settings.postgres.database} "
                f"({database_size[0] / 2**20:.0f} MiB) reachable as {settings.postgres.user}")

    reachable = _run(result, "postgres", postgres)
    if reachable:
        _run(result, "pg_dump", lambda: _pg_dump(settings, facts[0]))
        _run(result, "restore-login", lambda: probe_restore_login(settings.postgres))
        _check_pitr(settings, result)
    _run(result, "signing-key", lambda: _signing_key(settings))
    _run(result, "backup-dir", lambda: _backup_directory(
        settings, database_size[0] if database_size else 0))
    if settings.s3.configured:
        _check_s3(settings, result)
    else:
        result.checks.append(Check("s3", True, f"{NO_BUCKET}: backups stay local "
                                               "(every backup will end with a warning)"))
    if settings.encrypt_to:
        _run(result, "client-encryption", lambda: _client_side_encryption(settings))
    return result


def _check_pitr(settings: Settings, result: DoctorResult) -> None:
    """Each piece of point-in-time recovery when it is in use (wal/checks.py)."""
    from backup_agent.wal.checks import pitr_checks

    try:
        checks = pitr_checks(settings, datetime.now(UTC))
    except Exception as error:  # noqa: BLE001 - a doctor reports every failure as a line
        result.checks.append(Check("pitr", False, str(error)))
        return
    for name, check in checks:
        _run(result, name, check)


def _pg_dump(settings: Settings, server: ServerFacts) -> str:
    version = check_client_not_older(settings.postgres, "pg_dump", server)
    where = (f" (inside container {settings.postgres.container})"
             if settings.postgres.container else "")
    if int(version.split(".")[0]) > server.major:
        # The common set-up: a newer client on the host than the server in its container.
        return (f"pg_dump {version}{where} is newer than the PostgreSQL {server.version} "
                f"server: its dumps restore into this server (a restore leaves out the "
                "session settings the server lacks, such as transaction_timeout, and says "
                "so) and into any newer one")
    return f"pg_dump {version}{where} is not older than the server"


def _signing_key(settings: Settings) -> str:
    """Unsigned backups are refused by restore and verify; the key must be private."""
    from backup_agent.keys.signing import load_signing_key, public_key_text

    path = settings.signing_key_file
    if path is None:
        raise ConfigurationError(
            "SIGNING_KEY_FILE is not set: backups are unsigned and restore and verify refuse "
            "them without --allow-unsigned; create a key with `backup-agent keygen --signing "
            "FILE` (the server install makes one: signing-key.pem in its prefix)")
    key = load_signing_key(path)
    if path.stat().st_mode & 0o077:
        raise ConfigurationError(f"SIGNING_KEY_FILE {path} can be read by other users: "
                                 f"chmod 600 {path}")
    return (f"backups are signed with {path}; its public key {public_key_text(key)} belongs "
            "in TRUSTED_SIGNING_KEYS (and the BACKUP_TRUSTED_SIGNING_KEYS secret)")


def _client_side_encryption(settings: Settings) -> str:
    """Encryption only protects if the key that opens the backups is not beside them."""
    from backup_agent.keys.age_identities import configured_identities  # pyrage, only when asked
    from backup_agent.streams.age import public_keys

    configured = configured_identities(settings)
    if configured is not None:
        keys, _origin = configured
        if set(public_keys(keys)) & set(settings.encrypt_to):
            raise BackupAgentError(
                "the private key for ENCRYPT_TO is configured on this server (AGE_IDENTITY_FILE"
                " or AGE_IDENTITY): whoever takes the server can decrypt every backup; keep "
                "it off the server and pass --identity only when restoring")
    return (f"backups are encrypted to {', '.join(settings.encrypt_to)}; the private key is "
            "not configured here")


def _backup_directory(settings: Settings, database_bytes: int) -> str:
    directory = settings.backup_directory
    local.check_writable_directory(directory)
    backups = [backup for backup in local.scan(directory) if backup.made_by_agent]
    estimate = backups[0].size if backups else database_bytes // 4
    free = shutil.disk_usage(directory).free
    if free < estimate * HEADROOM:
        raise LocalStorageError(
            f"{directory} has {free / 2**20:.0f} MiB free, the next backup needs about "
            f"{estimate * HEADROOM / 2**20:.0f} MiB: free space or lower KEEP_LOCAL")
    return (f"{directory} is writable; {free / 2**30:.1f} GiB free for a backup of about "
            f"{estimate / 2**20:.0f} MiB")


def _check_s3(settings: Settings, result: DoctorResult) -> None:
    store = S3Store(settings.s3)
    if not store.has_credentials():
        result.checks.append(Check("s3", False, "no AWS credentials found: set "
                                                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"))
        return

    def reachable() -> str:
        store.probe_listing()
        return f"s3://{store.bucket}/{store.prefix} reachable and listable"

    if not _run(result, "s3", reachable):
        return
    bucket = store.bucket_configuration()
    for name, check in (("bucket-encryption", _encryption), ("bucket-public-access", _private),
                        ("bucket-lifecycle", _lifecycle), ("bucket-versioning", _versioning),
                        ("bucket-create-only", _create_only)):
        _run(result, name, lambda check=check: check(store, bucket))  # type: ignore[misc]
    _run(result, "s3-permissions", lambda: _create_read_and_refuse(store))


def _create_read_and_refuse(store: S3Store) -> str:
    """Create a new probe object as a backup is created, read it, then try to write over it."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    key = f"{store.prefix}{PROBE_DIRECTORY}{stamp}-{secrets.token_hex(4)}"
    store.put_bytes(key, PROBE_BODY, action="write a probe object")
    if store.read_small(key, action="read the probe object") != PROBE_BODY:
        raise BucketProblem("the probe object read back differs from what was written")
    try:
        store.put_bytes(key, PROBE_OVERWRITE, action="write over the probe object")
    except ObjectExistsError:
        return (f"the key can create, read and list under {store.prefix}, and S3 refused to "
                "write over what it created (If-None-Match)")
    raise BucketProblem(f"{store.url(key)} was written over although the write said "
                        "If-None-Match: this S3 endpoint ignores it, so nothing stops a "
                        "backup being replaced; use an endpoint that supports conditional "
                        "writes")


def _encryption(store: S3Store, bucket: BucketConfiguration) -> str:
    algorithms = bucket.encryption.get()
    if not algorithms & set(ENCRYPTED_AT_REST):
        raise BucketProblem(f"s3://{store.bucket} has no default encryption: run pulumi up")
    return f"default encryption {', '.join(sorted(algorithms))}"


def _private(store: S3Store, bucket: BucketConfiguration) -> str:
    off = bucket.public_access_off.get()
    if off:
        raise BucketProblem(f"s3://{store.bucket} public-access block is off for "
                            f"{', '.join(off)}: run pulumi up")
    return "all four public-access-block flags on"


def _lifecycle(store: S3Store, bucket: BucketConfiguration) -> str:
    for rule in bucket.lifecycle.get():
        if rule.expires(store.prefix):
            return (f"lifecycle rule {rule.name}: {store.prefix} expires after "
                    f"{rule.expiration_days} days")
    raise BucketProblem(f"s3://{store.bucket} has no enabled lifecycle rule expiring "
                        f"{store.prefix}: backups would pile up forever; run pulumi up")


def _create_only(store: S3Store, bucket: BucketConfiguration) -> str:
    rule = bucket.policy.get().create_only_rule(store.bucket,
                                                f"{store.prefix}{PROBE_DIRECTORY}")
    if rule is None:
        raise BucketProblem(f"s3://{store.bucket}'s policy does not deny writes without "
                            f"If-None-Match under {store.prefix}: a leaked writer key could "
                            "replace backups; run pulumi up")
    return f"the bucket policy denies writing over objects under {store.prefix} ({rule})"


def _versioning(store: S3Store, bucket: BucketConfiguration) -> str:
    if not bucket.versioning_enabled.get():
        raise BucketProblem(f"s3://{store.bucket} versioning is off: an overwrite would "
                            "destroy a backup; run pulumi up")
    return "versioning enabled"
