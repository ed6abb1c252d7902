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


def private_bucket(name: str, bucket_name: str, parent: pulumi.Resource,
                   object_lock: bool = False) -> PrivateBucket:
    """Create the bucket `bucket_name` and its private baseline as children of `parent`.

    A function, not a component: the resources keep `parent` as their parent and `name` as
    the stem of their names, so their URNs (and existing stacks) stay as they were.
    """
    child = pulumi.ResourceOptions(parent=parent)
    # protect: `pulumi destroy` must never take the bucket with it; no force_destroy.
    bucket = aws.s3.Bucket(
        name, bucket=bucket_name,
        # Left unset rather than False, so stacks created without it see no diff.
        object_lock_enabled=True if object_lock else None,
        opts=pulumi.ResourceOptions(parent=parent, protect=True))
    return PrivateBucket(
        bucket=bucket,
        ownership=aws.s3.BucketOwnershipControls(
            f"{name}-ownership", bucket=bucket.id,
            rule={"object_ownership": "BucketOwnerEnforced"}, opts=child),
        public_access_block=aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access-block", bucket=bucket.id,
            block_public_acls=True, ignore_public_acls=True,
            block_public_policy=True, restrict_public_buckets=True, opts=child),
        encryption=aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption", bucket=bucket.id,
            rules=[{"apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"}}],
            opts=child))
