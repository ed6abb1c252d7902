"""The stack's configuration, read once from `pulumi.Config` into a frozen object."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi


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


def load_settings() -> StackSettings:
    """Return the stack settings; defaults match Pulumi.yaml's config section."""
    config = pulumi.Config()
    manage_github_secrets = config.get_bool("manageGithubSecrets")
    settings = StackSettings(
        bucket_name=config.require("bucketName"),
        retention_days=config.get_int("retentionDays") or 30,
        noncurrent_retention_days=config.get_int("noncurrentRetentionDays") or 7,
        abort_multipart_days=config.get_int("abortMultipartDays") or 7,
        backup_prefix=config.get("backupPrefix") or "backups/",
        writer_user_name=config.get("writerUserName") or "dorami-backup-automation",
        github_repository=config.get("githubRepository"),
        manage_github_secrets=True if manage_github_secrets is None else manage_github_secrets,
        access_logging=bool(config.get_bool("accessLogging")),
        access_log_retention_days=config.get_int("accessLogRetentionDays") or 90,
        object_lock=bool(config.get_bool("objectLock")),
    )
    if not settings.backup_prefix.endswith("/"):
        raise pulumi.RunError("backupPrefix must end with '/', e.g. 'backups/'")
    if settings.manage_github_secrets and not settings.github_repository:
        raise pulumi.RunError("set githubRepository (the repository name, without the owner), "
                              "or manageGithubSecrets: false")
    return settings
