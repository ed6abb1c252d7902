"""IAM and bucket policy documents as plain data.

Pure functions, so that the test suite attaches exactly these documents to a user in
moto's IAM-enforcing server and proves the agent lives with them: it can back up, list and
restore, and it cannot delete.
"""

from __future__ import annotations

from typing import Any

PolicyDocument = dict[str, Any]

# What the agent does with S3, action by action: upload (PutObject, which also covers the
# multipart calls), confirm and restore (GetObject, which also covers HeadObject), list
# under the prefix (ListBucket), and clean up after a failed multipart upload
# (AbortMultipartUpload). Nothing deletes, nothing touches object versions.
WRITER_OBJECT_ACTIONS = ["s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload"]
WRITER_BUCKET_ACTIONS = ["s3:ListBucket"]
# `backup-agent doctor` reads the bucket's safety settings; reading them changes nothing.
WRITER_BUCKET_READ_ACTIONS = ["s3:GetEncryptionConfiguration", "s3:GetBucketPublicAccessBlock",
                              "s3:GetLifecycleConfiguration", "s3:GetBucketVersioning"]


def bucket_arn(bucket_name: str) -> str:
    return f"arn:aws:s3:::{bucket_name}"


def writer_policy(bucket_name: str, prefix: str) -> PolicyDocument:
    """Return the backup writer's policy: its objects under `prefix`, nothing else."""
    arn = bucket_arn(bucket_name)
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ReadAndWriteBackups",
                "Effect": "Allow",
                "Action": WRITER_OBJECT_ACTIONS,
                "Resource": [f"{arn}/{prefix}*"],
            },
            {
                "Sid": "ListBackups",
                "Effect": "Allow",
                "Action": WRITER_BUCKET_ACTIONS,
                "Resource": [arn],
                "Condition": {"StringLike": {"s3:prefix": [prefix, f"{prefix}*"]}},
            },
            {
                "Sid": "ReadBucketSafetySettings",
                "Effect": "Allow",
                "Action": WRITER_BUCKET_READ_ACTIONS,
                "Resource": [arn],
            },
        ],
    }


def tls_only_statement(arn: str) -> dict[str, Any]:
    """Deny every request to the bucket and its objects that does not use TLS."""
    return {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [arn, f"{arn}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def tls_only_policy(arn: str) -> PolicyDocument:
    return {"Version": "2012-10-17", "Statement": [tls_only_statement(arn)]}


def access_log_bucket_policy(log_bucket_arn: str, source_bucket_arn: str) -> PolicyDocument:
    """Let S3's log delivery write access logs of the source bucket, over TLS only."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            tls_only_statement(log_bucket_arn),
            {
                "Sid": "AllowS3ServerAccessLogs",
                "Effect": "Allow",
                "Principal": {"Service": "logging.s3.amazonaws.com"},
                "Action": "s3:PutObject",
                "Resource": [f"{log_bucket_arn}/*"],
                "Condition": {"ArnLike": {"aws:SourceArn": source_bucket_arn}},
            },
        ],
    }
