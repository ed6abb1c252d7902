"""The stack's configuration, read once from `pulumi.Config` into a frozen object."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

OBJECT_LOCK_MODES = ("GOVERNANCE", "COMPLIANCE")
# The GitHub environment whose jobs may assume the OIDC role (the workflows' `environment:`).
PRODUCTION_ENVIRONMENT = "production"
# IAM's limits for a role's maximum session duration (MaxSessionDuration), in seconds.
ROLE_SESSION_SECONDS_RANGE = (3600, 43200)
# Longer than the longest job's timeout (120 minutes): a backup's multipart upload completes
# after the dump, and the runner then confirms it with the same credentials.
DEFAULT_ROLE_SESSION_SECONDS = 7200
# WAL is kept this many days longer than base backups. Restoring the oldest kept base backup
# needs every WAL segment from its start on, and its start is older than the objects whose
# age expires it: those are written when it ends, up to one base-backup interval (a day)
# later, while the segments from its start were uploaded as they filled. Expiring both after
# the same days would delete those segments first. One interval, plus a day of slack for a
# base backup that runs late or long: 2. (S3 rounds every expiry up to the next midnight UTC,
# the same rounding for both, so it keeps the order.)
DEFAULT_WAL_RETENTION_MARGIN_DAYS = 2


@dataclass(frozen=True)
class StackSettings:
    bucket_name: str
    retention_days: int
    noncurrent_retention_days: int
    abort_multipart_days: int
    backup_prefix: str
    writer_user_name: str
    github_repository: str | None
    manage_github_secrets: bool
    access_logging: bool
    access_log_retention_days: int
    object_lock: bool
    object_lock_mode: str = "GOVERNANCE"
    object_lock_days: int = 30
    github_owner: str | None = None
    github_oidc: bool = False
    github_oidc_provider_arn: str | None = None
    github_role_name: str = "dorami-backup-github-actions"
    github_role_session_seconds: int = DEFAULT_ROLE_SESSION_SECONDS
    wal_retention_margin_days: int = DEFAULT_WAL_RETENTION_MARGIN_DAYS

    @property
    def wal_retention_days(self) -> int:
        """Days a WAL segment is kept: as long as the base backups, plus the margin."""
        return self.retention_days + self.wal_retention_margin_days

    @property
    def github_subject(self) -> str:
        """The OIDC `sub` claim of a job in the production environment of the repository."""
        return (f"repo:{self.github_owner}/{self.github_repository}:"
                f"environment:{PRODUCTION_ENVIRONMENT}")


def load_settings() -> StackSettings:
    """Return the stack settings; defaults match Pulumi.yaml's config section."""
    config = pulumi.Config()
    manage_github_secrets = config.get_bool("manageGithubSecrets")
    retention_days = config.get_int("retentionDays") or 30
    session_seconds = config.get_int("githubRoleSessionSeconds")
    wal_margin = config.get_int("walRetentionMarginDays")
    settings = StackSettings(
        bucket_name=config.require("bucketName"),
        retention_days=retention_days,
        noncurrent_retention_days=config.get_int("noncurrentRetentionDays") or 7,
        abort_multipart_days=config.get_int("abortMultipartDays") or 7,
        backup_prefix=config.get("backupPrefix") or "backups/",
        writer_user_name=config.get("writerUserName") or "dorami-backup-automation",
        github_repository=config.get("githubRepository"),
        manage_github_secrets=True if manage_github_secrets is None else manage_github_secrets,
        access_logging=bool(config.get_bool("accessLogging")),
        access_log_retention_days=config.get_int("accessLogRetentionDays") or 90,
        object_lock=bool(config.get_bool("objectLock")),
        object_lock_mode=(config.get("objectLockMode") or "GOVERNANCE").upper(),
        object_lock_days=config.get_int("objectLockDays") or retention_days,
        github_owner=pulumi.Config("github").get("owner"),
        github_oidc=bool(config.get_bool("githubOidc")),
        github_oidc_provider_arn=config.get("githubOidcProviderArn"),
        github_role_name=config.get("githubRoleName") or "dorami-backup-github-actions",
        github_role_session_seconds=DEFAULT_ROLE_SESSION_SECONDS if session_seconds is None
        else session_seconds,
        wal_retention_margin_days=DEFAULT_WAL_RETENTION_MARGIN_DAYS if wal_margin is None
        else wal_margin,
    )
    _check(settings)
    return settings


def _check(settings: StackSettings) -> None:
    """Refuse settings that cannot work; warn about those that cost more than they say."""
    if not settings.backup_prefix.endswith("/"):
        raise pulumi.RunError("backupPrefix must end with '/', e.g. 'backups/'")
    if settings.manage_github_secrets and not settings.github_repository:
        raise pulumi.RunError("set githubRepository (the repository name, without the owner), "
                              "or manageGithubSecrets: false")
    if settings.object_lock_mode not in OBJECT_LOCK_MODES:
        raise pulumi.RunError(f"objectLockMode must be GOVERNANCE or COMPLIANCE, not "
                              f"{settings.object_lock_mode!r}")
    if settings.wal_retention_margin_days < 1:
        raise pulumi.RunError("walRetentionMarginDays must be at least 1: WAL must outlive "
                              "the oldest base backup it serves")
    if settings.object_lock_days < 1:
        raise pulumi.RunError("objectLockDays must be at least 1")
    if settings.github_oidc and not (settings.github_repository and settings.github_owner):
        raise pulumi.RunError("githubOidc needs githubRepository and github:owner: the role "
                              "trusts repo:<owner>/<repository>:environment:production")
    shortest, longest = ROLE_SESSION_SECONDS_RANGE
    if not shortest <= settings.github_role_session_seconds <= longest:
        raise pulumi.RunError(f"githubRoleSessionSeconds must be {shortest} to {longest} (IAM's "
                              f"limits), not {settings.github_role_session_seconds}")
    kept = settings.retention_days + settings.noncurrent_retention_days
    if settings.object_lock and settings.object_lock_days > kept:
        pulumi.log.warn(
            f"objectLockDays ({settings.object_lock_days}) is longer than a backup lives "
            f"({settings.retention_days} + {settings.noncurrent_retention_days} days): the "
            "lifecycle cannot delete a locked version, so each backup is stored (and billed) "
            "until its lock ends")
