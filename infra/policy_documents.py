"""IAM and bucket policy documents as plain data.

Pure functions, so that the test suite attaches exactly these documents to a user in
moto's IAM-enforcing server and proves the agent lives with them: it can back up, list and
restore, and it cannot delete. The bucket policy's Denies (create-only, no SSE-C, no other
storage class) hold for every principal, the writer's key and an administrator alike.
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
                              "s3:GetLifecycleConfiguration", "s3:GetBucketVersioning",
                              "s3:GetBucketPolicy"]
# The only storage class the writer may ask for: anything else (GLACIER, DEEP_ARCHIVE) cannot
# be restored from without a retrieval first, and is billed for 90-180 days at least.
STORAGE_CLASS = "STANDARD"
GITHUB_OIDC_HOST = "token.actions.githubusercontent.com"
GITHUB_OIDC_AUDIENCE = "sts.amazonaws.com"


def bucket_arn(bucket_name: str) -> str:
    return f"arn:aws:s3:::{bucket_name}"


def writer_policy(bucket_name: str, prefix: str) -> PolicyDocument:
    """Return the backup writer's policy: its objects under `prefix`, nothing else.

    `<prefix>*` is every kind of object the agent keeps there, on purpose one rule for all:
    dumps and their sidecars (`YYYY/MM/`), WAL segments and timeline histories (`wal/`),
    base backups (`base/`) and doctor's probes. The bucket policy's Denies cover the same
    pattern, so each is create-only; nothing here deletes any of them.
    """
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


def create_only_statement(arn: str, prefix: str) -> dict[str, Any]:
    """Deny writing over an object under `prefix`: a write must carry If-None-Match: *.

    Every object under it, whatever its kind (dumps, `wal/`, `base/`: see writer_policy).

    AWS's documented pattern (userguide/conditional-writes-enforce.html): `s3:if-none-match`
    is absent (Null) on a write without the header, and `s3:ObjectCreationOperation` is false
    for CreateMultipartUpload, UploadPart and UploadPartCopy, which take no conditional
    header, so only PutObject and CompleteMultipartUpload are held to it. It also stops every
    CopyObject onto the prefix (403 without the header, 501 with it): no copy of a backup
    onto itself in another storage class or under another key.
    """
    return {
        "Sid": "DenyOverwritingBackups",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:PutObject",
        "Resource": [f"{arn}/{prefix}*"],
        "Condition": {"Null": {"s3:if-none-match": "true"},
                      "Bool": {"s3:ObjectCreationOperation": "true"}},
    }


def no_customer_keys_statement(arn: str) -> dict[str, Any]:
    """Deny uploads encrypted with a customer-provided key (SSE-C): only its holder reads them.

    The encryption configuration blocks SSE-C too; this Deny also holds where that newer
    setting is not yet honoured, and says so in the policy a reviewer reads.
    """
    return {
        "Sid": "DenyCustomerProvidedKeys",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:PutObject",
        "Resource": [f"{arn}/*"],
        "Condition": {"Null": {"s3:x-amz-server-side-encryption-customer-algorithm": "false"}},
    }


def standard_storage_only_statement(arn: str, prefix: str) -> dict[str, Any]:
    """Deny a write under `prefix` that asks for another storage class than STANDARD.

    The agent never sends the header; a request without it stores STANDARD and is not
    affected (the Null test), nor is the lifecycle, which is no request.
    """
    return {
        "Sid": "DenyOtherStorageClasses",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:PutObject",
        "Resource": [f"{arn}/{prefix}*"],
        "Condition": {"Null": {"s3:x-amz-storage-class": "false"},
                      "StringNotEquals": {"s3:x-amz-storage-class": STORAGE_CLASS}},
    }


def backup_bucket_policy(arn: str, prefix: str) -> PolicyDocument:
    """Return the backup bucket's policy: TLS only; under `prefix`, add but never replace."""
    return {"Version": "2012-10-17", "Statement": [
        tls_only_statement(arn),
        create_only_statement(arn, prefix),
        no_customer_keys_statement(arn),
        standard_storage_only_statement(arn, prefix),
    ]}


def github_actions_trust_policy(provider_arn: str, subject: str) -> PolicyDocument:
    """Let GitHub Actions jobs whose OIDC token names `subject` assume the role, and no other.

    `subject` is `repo:<owner>/<repo>:environment:<name>`: only a job that runs in that
    environment (whose protection rules decide which branches may use it) gets one.
    """
    return {
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "GithubActionsProductionEnvironment",
            "Effect": "Allow",
            "Principal": {"Federated": provider_arn},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"StringEquals": {f"{GITHUB_OIDC_HOST}:aud": GITHUB_OIDC_AUDIENCE,
                                           f"{GITHUB_OIDC_HOST}:sub": subject}},
        }],
    }


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
