"""The backup bucket: private, encrypted, TLS-only, versioned, create-only, self-cleaning."""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws
from backup_lifecycle import lifecycle_rules
from policy_documents import backup_bucket_policy
from private_bucket import private_bucket
from stack_settings import StackSettings


class BackupBucket(pulumi.ComponentResource):
    """The S3 bucket that holds the backups, with everything that keeps it safe."""

    def __init__(self, name: str, settings: StackSettings,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dorami:backups:BackupBucket", name, None, opts)
        # Every resource is protected, not only the bucket: dropping, say, the versioning
        # resource from the program would otherwise suspend versioning on the next `up`.

        def keep(*after: pulumi.Resource) -> pulumi.ResourceOptions:
            return pulumi.ResourceOptions(parent=self, protect=True, depends_on=list(after))

        private = private_bucket(name, settings.bucket_name, self)
        self.bucket = private.bucket
        self.ownership = private.ownership
        self.public_access_block = private.public_access_block
        self.encryption = private.encryption
        self.versioning = aws.s3.BucketVersioning(
            f"{name}-versioning", bucket=self.bucket.id,
            versioning_configuration={"status": "Enabled"}, opts=keep())
        # The policy would be refused while the public-access block is being changed.
        # (The resource name predates the create-only rules; renaming it would replace it.)
        self.policy = aws.s3.BucketPolicy(
            f"{name}-tls-only", bucket=self.bucket.id,
            policy=self.bucket.arn.apply(lambda arn: json.dumps(
                backup_bucket_policy(arn, settings.backup_prefix))),
            opts=keep(self.public_access_block))
        self.lifecycle = aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle", bucket=self.bucket.id,
            rules=lifecycle_rules(settings), opts=keep(self.versioning))
        self.object_lock: aws.s3.BucketObjectLockConfiguration | None = None
        if settings.object_lock:
            # On the existing bucket: S3 enables Object Lock on a versioned bucket through
            # this configuration alone (and it cannot be switched off again). New versions
            # under it get the default retention; GOVERNANCE lets an administrator with
            # s3:BypassGovernanceRetention lift it deliberately, COMPLIANCE lets nobody.
            self.object_lock = aws.s3.BucketObjectLockConfiguration(
                f"{name}-object-lock", bucket=self.bucket.id, object_lock_enabled="Enabled",
                rule={"default_retention": {"mode": settings.object_lock_mode,
                                            "days": settings.object_lock_days}},
                opts=keep(self.versioning))
        self.register_outputs({"bucket_name": self.bucket.bucket, "bucket_arn": self.bucket.arn})
