"""The backup bucket: private, encrypted, TLS-only, versioned, and self-cleaning."""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws
from policy_documents import tls_only_policy
from private_bucket import private_bucket
from stack_settings import StackSettings


class BackupBucket(pulumi.ComponentResource):
    """The S3 bucket that holds the backups, with everything that keeps it safe."""

    def __init__(self, name: str, settings: StackSettings,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dorami:backups:BackupBucket", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        private = private_bucket(name, settings.bucket_name, self,
                                 object_lock=settings.object_lock)
        self.bucket = private.bucket
        self.ownership = private.ownership
        self.public_access_block = private.public_access_block
        self.encryption = private.encryption
        self.versioning = aws.s3.BucketVersioning(
            f"{name}-versioning", bucket=self.bucket.id,
            versioning_configuration={"status": "Enabled"}, opts=child)
        # The policy would be refused while the public-access block is being changed.
        self.policy = aws.s3.BucketPolicy(
            f"{name}-tls-only", bucket=self.bucket.id,
            policy=self.bucket.arn.apply(lambda arn: json.dumps(tls_only_policy(arn))),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.public_access_block]))
        self.lifecycle = aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle", bucket=self.bucket.id,
            rules=lifecycle_rules(settings),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.versioning]))
        self.object_lock: aws.s3.BucketObjectLockConfiguration | None = None
        if settings.object_lock:
            # GOVERNANCE, not COMPLIANCE: an administrator can still lift it deliberately.
            self.object_lock = aws.s3.BucketObjectLockConfiguration(
                f"{name}-object-lock", bucket=self.bucket.id,
                rule={"default_retention": {"mode": "GOVERNANCE",
                                            "days": settings.retention_days}},
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.versioning]))
        self.register_outputs({"bucket_name": self.bucket.bucket, "bucket_arn": self.bucket.arn})


def lifecycle_rules(
        settings: StackSettings) -> list[aws.s3.BucketLifecycleConfigurationRuleArgsDict]:
    """Return the lifecycle rules for the backup prefix.

    S3 does not allow `days` and `expired_object_delete_marker` in one expiration, so the
    delete-marker clean-up is a rule of its own.
    """
    prefix_filter: aws.s3.BucketLifecycleConfigurationRuleFilterArgsDict = {
        "prefix": settings.backup_prefix}
    return [
        {
            "id": "ExpireOldBackups",
            "status": "Enabled",
            "filter": prefix_filter,
            "expiration": {"days": settings.retention_days},
            "noncurrent_version_expiration": {
                "noncurrent_days": settings.noncurrent_retention_days},
            "abort_incomplete_multipart_upload": {
                "days_after_initiation": settings.abort_multipart_days},
        },
        {
            "id": "RemoveExpiredDeleteMarkers",
            "status": "Enabled",
            "filter": prefix_filter,
            "expiration": {"expired_object_delete_marker": True},
        },
    ]
