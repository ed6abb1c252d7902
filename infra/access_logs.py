"""Optional S3 server access logging into a separate, private log bucket."""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws
from policy_documents import access_log_bucket_policy
from private_bucket import private_bucket
from stack_settings import StackSettings

LOG_PREFIX = "access-logs/"


class AccessLogs(pulumi.ComponentResource):
    """A log bucket that only S3's log delivery writes to, and the logging that feeds it."""

    def __init__(self, name: str, settings: StackSettings, source: aws.s3.Bucket,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dorami:backups:AccessLogs", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        private = private_bucket(name, f"{settings.bucket_name}-access-logs", self)
        self.bucket = private.bucket
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle", bucket=self.bucket.id,
            rules=[{"id": "ExpireAccessLogs", "status": "Enabled",
                    "filter": {"prefix": LOG_PREFIX},
                    "expiration": {"days": settings.access_log_retention_days}}],
            opts=child)
        policy = aws.s3.BucketPolicy(
            f"{name}-policy", bucket=self.bucket.id,
            policy=pulumi.Output.all(self.bucket.arn, source.arn).apply(
                lambda arns: json.dumps(access_log_bucket_policy(*arns))),
            opts=pulumi.ResourceOptions(parent=self,
                                        depends_on=[private.public_access_block,
                                                    private.ownership]))
        aws.s3.BucketLogging(
            f"{name}-logging", bucket=source.id, target_bucket=self.bucket.id,
            target_prefix=LOG_PREFIX,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[policy]))
        self.register_outputs({"log_bucket_name": self.bucket.bucket})
