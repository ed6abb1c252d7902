"""The bucket's own configuration as typed answers (for doctor): S3's JSON is read here only.

`S3Store.bucket_configuration()` asks S3 once per part; each answer is turned into plain data
here. A part S3 would not show (access denied, say) keeps its error, raised when that part
is read, so one refusal fails only the check that needs that part.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any, Generic, TypeVar, cast

T = TypeVar("T")
# Read one bucket-configuration answer: (the client method, the error codes meaning "not
# set") -> S3's answer, or None when it is not set.
Read = Callable[[str, set[str]], Mapping[str, Any] | None]
# SSE-S3 (what the agent asks for), SSE-KMS, DSSE-KMS: each encrypts at rest.
ENCRYPTED_AT_REST = ("AES256", "aws:kms", "aws:kms:dsse")
PUBLIC_ACCESS_FLAGS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy",
                       "RestrictPublicBuckets")
WRITE_ACTIONS = {"s3:PutObject", "s3:*", "*"}


@dataclass(frozen=True)
class Part(Generic[T]):
    """One part of the configuration, or the error reading it raised."""

    value: T | None = None
    error: Exception | None = None

    def get(self) -> T:
        """Return the answer; raise the error S3 gave instead of it."""
        if self.error is not None:
            raise self.error
        return cast(T, self.value)


@dataclass(frozen=True)
class LifecycleRule:
    name: str
    prefix: str
    enabled: bool
    expiration_days: int | None

    def expires(self, prefix: str) -> bool:
        """True when this rule is on and expires what is under `prefix`."""
        return self.enabled and bool(self.expiration_days) and prefix.startswith(self.prefix)


@dataclass(frozen=True)
class BucketPolicy:
    statements: tuple[Any, ...]  # as written: whatever is not a statement matches nothing

    def create_only_rule(self, bucket: str, key: str) -> str | None:
        """Return the name of the statement that denies writing `key` without If-None-Match
        (so a leaked writer key cannot replace what is there), or None if none does."""
        for statement in self.statements:
            if _denies_writing_over(statement, f"arn:aws:s3:::{bucket}/{key}"):
                return str(statement.get("Sid", "unnamed statement"))
        return None


@dataclass(frozen=True)
class BucketConfiguration:
    encryption: Part[frozenset[str]]  # the default encryption's algorithms (empty: none)
    public_access_off: Part[tuple[str, ...]]  # the public-access-block flags that are off
    lifecycle: Part[tuple[LifecycleRule, ...]]
    policy: Part[BucketPolicy]
    versioning_enabled: Part[bool]


def bucket_configuration(read: Read) -> BucketConfiguration:
    """Ask S3 (through `read`) for each part; keep what went wrong beside the part."""
    return BucketConfiguration(
        encryption=_part(lambda: _encryption(read(
            "get_bucket_encryption", {"ServerSideEncryptionConfigurationNotFoundError"}))),
        public_access_off=_part(lambda: _public_access_off(read(
            "get_public_access_block", {"NoSuchPublicAccessBlockConfiguration"}))),
        lifecycle=_part(lambda: _lifecycle(read(
            "get_bucket_lifecycle_configuration", {"NoSuchLifecycleConfiguration"}))),
        policy=_part(lambda: _policy(read("get_bucket_policy", {"NoSuchBucketPolicy"}))),
        versioning_enabled=_part(lambda: (read("get_bucket_versioning", set()) or {})
                                 .get("Status") == "Enabled"))


def _part(answer: Callable[[], T]) -> Part[T]:
    try:
        return Part(value=answer())
    except Exception as error:  # noqa: BLE001 - kept for the one check that reads this part
        return Part(error=error)


def _encryption(answer: Mapping[str, Any] | None) -> frozenset[str]:
    rules = (answer or {}).get("ServerSideEncryptionConfiguration", {}).get("Rules", [])
    return frozenset(str(rule.get("ApplyServerSideEncryptionByDefault", {}).get("SSEAlgorithm"))
                     for rule in rules)


def _public_access_off(answer: Mapping[str, Any] | None) -> tuple[str, ...]:
    flags = (answer or {}).get("PublicAccessBlockConfiguration", {})
    return tuple(name for name in PUBLIC_ACCESS_FLAGS if not flags.get(name))


def _lifecycle(answer: Mapping[str, Any] | None) -> tuple[LifecycleRule, ...]:
    return tuple(LifecycleRule(name=str(rule.get("ID", "?")),
                               prefix=rule.get("Filter", {}).get("Prefix", rule.get("Prefix", ""))
                               or "",
                               enabled=rule.get("Status") == "Enabled",
                               expiration_days=rule.get("Expiration", {}).get("Days"))
                 for rule in (answer or {}).get("Rules", []))


def _policy(answer: Mapping[str, Any] | None) -> BucketPolicy:
    document = json.loads(str((answer or {}).get("Policy") or "{}"))
    return BucketPolicy(statements=tuple(_as_list(document.get("Statement"))))


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value] if value else []


def _denies_writing_over(statement: Any, resource_arn: str) -> bool:
    """Is `statement` a Deny of PutObject without If-None-Match that covers the resource?"""
    if not isinstance(statement, dict) or statement.get("Effect") != "Deny":
        return False
    actions = {str(action) for action in _as_list(statement.get("Action"))}
    absent = statement.get("Condition", {}).get("Null", {}).get("s3:if-none-match")
    return bool(actions & WRITE_ACTIONS) and str(absent).lower() == "true" \
        and any(fnmatchcase(resource_arn, str(resource))
                for resource in _as_list(statement.get("Resource")))
