"""The baseline every bucket of this stack shares: protected, owner-only, private, encrypted."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws


@dataclass(frozen=True)
class PrivateBucket:
    """The bucket and the settings that keep it private, for callers to depend on."""

    bucket: aws.s3.Bucket
    ownership: aws.s3.BucketOwnershipControls
    public_access_block: aws.s3.BucketPublicAccessBlock
    encryption: aws.s3.BucketServerSideEncryptionConfiguration


def private_bucket(name: str, bucket_name: str, parent: pulumi.Resource) -> PrivateBucket:
    """Create the bucket `bucket_name` and its private baseline as children of `parent`.

    A function, not a component: the resources keep `parent` as their parent and `name` as
    the stem of their names, so their URNs (and existing stacks) stay as they were.
    Every one is protected: `pulumi destroy`, or a resource dropped from the program, must
    never take the bucket or quietly switch off what keeps it private (no force_destroy).
    Object Lock, if wanted, is the caller's BucketObjectLockConfiguration: S3 turns it on for
    an existing versioned bucket, so the bucket's create-time flag stays unset.
    """
    child = pulumi.ResourceOptions(parent=parent, protect=True)
    bucket = aws.s3.Bucket(name, bucket=bucket_name, opts=child)
    return PrivateBucket(
        bucket=bucket,
        ownership=aws.s3.BucketOwnershipControls(
            f"{name}-ownership", bucket=bucket.id,
            rule={"object_ownership": "BucketOwnerEnforced"}, opts=child),
        public_access_block=aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access-block", bucket=bucket.id,
            block_public_acls=True, ignore_public_acls=True,
            block_public_policy=True, restrict_public_buckets=True, opts=child),
        # SSE-S3 by default, and no upload may bring its own key (SSE-C): an object only
        # the uploader's key can decrypt is a backup nobody else can restore.
        encryption=aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption", bucket=bucket.id,
            rules=[{"apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"},
                    "blocked_encryption_types": ["SSE-C"]}],
            opts=child))
