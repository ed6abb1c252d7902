"""The least-privilege IAM user the server's agent uses, and its access key."""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws
from policy_documents import writer_policy
from stack_settings import StackSettings


class BackupWriter(pulumi.ComponentResource):
    """An IAM user that can put, get and list backups under the prefix, and never delete."""

    def __init__(self, name: str, settings: StackSettings, bucket: aws.s3.Bucket,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dorami:backups:BackupWriter", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.user = aws.iam.User(name, name=settings.writer_user_name, opts=child)
        self.policy = aws.iam.UserPolicy(
            f"{name}-policy", user=self.user.name, name="backup-writer",
            policy=bucket.bucket.apply(lambda bucket_name: json.dumps(
                writer_policy(bucket_name, settings.backup_prefix))),
            opts=child)
        self.access_key = aws.iam.AccessKey(f"{name}-key", user=self.user.name, opts=child)
        self.secret_access_key: pulumi.Output[str] = pulumi.Output.secret(
            self.access_key.secret)
        self.register_outputs({"user_name": self.user.name,
                               "access_key_id": self.access_key.id})
