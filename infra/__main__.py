"""Pulumi program: the backup bucket, its least-privilege writer, and their GitHub environment.

Replaces the guide's one-time manual AWS set-up. Each concern is a component in its own
module; this file only wires them together and exports what the operator needs.
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws
from access_logs import AccessLogs
from backup_bucket import BackupBucket
from backup_writer import BackupWriter
from github_environment import (
    ACCESS_KEY_ID_SECRET,
    BUCKET_SECRET,
    SECRET_ACCESS_KEY_SECRET,
    GithubEnvironment,
)
from github_oidc import GithubOidcRole
from stack_settings import load_settings

settings = load_settings()
backups = BackupBucket("backups", settings)
writer = BackupWriter("writer", settings, backups.bucket)
if settings.access_logging:
    AccessLogs("access-logs", settings, backups.bucket)
environment = None
if settings.manage_github_secrets:
    assert settings.github_repository is not None
    environment = GithubEnvironment("github", settings.github_repository, {
        BUCKET_SECRET: backups.bucket.bucket,
        ACCESS_KEY_ID_SECRET: writer.access_key.id,
        SECRET_ACCESS_KEY_SECRET: writer.secret_access_key,
    })
oidc = None
if settings.github_oidc:
    oidc = GithubOidcRole("github-actions", settings, backups.bucket, environment=environment)

outputs: dict[str, pulumi.Input[str]] = {
    "bucketName": backups.bucket.bucket,
    "bucketArn": backups.bucket.arn,
    "region": aws.config.region or "",
    "writerUserName": writer.user.name,
    "accessKeyId": writer.access_key.id,
    "secretAccessKey": writer.secret_access_key,
}
if oidc is not None:
    outputs["githubRoleArn"] = oidc.role.arn
for output_name, value in outputs.items():
    pulumi.export(output_name, value)
