"""The bucket the writer's key cannot rewrite, as the program declares it (under mocks).

The conditions themselves are AWS's to evaluate; the tests against moto's server prove
the behaviour they rely on (a second If-None-Match write is refused; uploads into a bucket
with Object Lock default retention succeed).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.infra.harness import PROJECT, ProgramRun, run_program

ARN = "arn:aws:s3:::dorami-db-backups-prod"
OBJECT_LOCK = "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration"


@pytest.fixture(scope="module")
def default_run() -> ProgramRun:
    return run_program()


def statements(run: ProgramRun) -> dict[str, dict[str, Any]]:
    policy = json.loads(run.one("aws:s3/bucketPolicy:BucketPolicy").inputs["policy"])
    return {statement["Sid"]: statement for statement in policy["Statement"]}


def test_the_bucket_policy_denies_every_write_without_if_none_match(
        default_run: ProgramRun) -> None:
    assert statements(default_run)["DenyOverwritingBackups"] == {
        "Sid": "DenyOverwritingBackups", "Effect": "Deny", "Principal": "*",
        "Action": "s3:PutObject", "Resource": [f"{ARN}/backups/*"],
        # AWS's documented pair: the header is absent, on a request that creates an object
        # (PutObject, CompleteMultipartUpload; the multipart part uploads are exempt).
        "Condition": {"Null": {"s3:if-none-match": "true"},
                      "Bool": {"s3:ObjectCreationOperation": "true"}}}


def test_customer_provided_keys_are_blocked_twice(default_run: ProgramRun) -> None:
    assert statements(default_run)["DenyCustomerProvidedKeys"] == {
        "Sid": "DenyCustomerProvidedKeys", "Effect": "Deny", "Principal": "*",
        "Action": "s3:PutObject", "Resource": [f"{ARN}/*"],
        "Condition": {"Null": {"s3:x-amz-server-side-encryption-customer-algorithm": "false"}}}
    encryption = default_run.one("aws:s3/bucketServerSideEncryptionConfiguration:"
                                 "BucketServerSideEncryptionConfiguration")
    assert [rule["blockedEncryptionTypes"] for rule in encryption.inputs["rules"]] == [["SSE-C"]]


def test_no_write_may_ask_for_another_storage_class(default_run: ProgramRun) -> None:
    assert statements(default_run)["DenyOtherStorageClasses"] == {
        "Sid": "DenyOtherStorageClasses", "Effect": "Deny", "Principal": "*",
        "Action": "s3:PutObject", "Resource": [f"{ARN}/backups/*"],
        "Condition": {"Null": {"s3:x-amz-storage-class": "false"},
                      "StringNotEquals": {"s3:x-amz-storage-class": "STANDARD"}}}


def test_the_rules_follow_the_configured_prefix() -> None:
    run = run_program({f"{PROJECT}:backupPrefix": "db/"})
    found = statements(run)
    assert found["DenyOverwritingBackups"]["Resource"] == [f"{ARN}/db/*"]
    assert found["DenyOtherStorageClasses"]["Resource"] == [f"{ARN}/db/*"]


def test_every_resource_of_the_backup_bucket_is_protected() -> None:
    run = run_program({f"{PROJECT}:objectLock": "true"})
    bucket_resources = [resource.name for resource in run.resources
                        if resource.type.startswith("aws:s3/")]
    assert sorted(bucket_resources) == sorted(
        f"backups{suffix}" for suffix in ("", "-ownership", "-public-access-block",
                                          "-encryption", "-versioning", "-tls-only",
                                          "-lifecycle", "-object-lock"))
    assert {name: run.protected[name] for name in bucket_resources} == \
        dict.fromkeys(bucket_resources, True)


def test_without_object_lock_there_is_no_lock_and_no_create_time_flag(
        default_run: ProgramRun) -> None:
    assert default_run.of_type(OBJECT_LOCK) == []
    assert "objectLockEnabled" not in default_run.one("aws:s3/bucket:Bucket").inputs


def test_object_lock_is_turned_on_for_the_existing_bucket_in_governance_mode() -> None:
    run = run_program({f"{PROJECT}:objectLock": "true", f"{PROJECT}:retentionDays": "35"})
    # Only the configuration resource: S3 enables Object Lock on an existing versioned
    # bucket through it, so the Bucket keeps no create-time flag (and is never replaced).
    assert "objectLockEnabled" not in run.one("aws:s3/bucket:Bucket").inputs
    lock = run.one(OBJECT_LOCK).inputs
    assert lock == {"bucket": "dorami-db-backups-prod", "objectLockEnabled": "Enabled",
                    "rule": {"defaultRetention": {"mode": "GOVERNANCE", "days": 35.0}}}


def test_object_lock_can_be_compliance_mode_with_its_own_days() -> None:
    run = run_program({f"{PROJECT}:objectLock": "true", f"{PROJECT}:objectLockMode": "COMPLIANCE",
                       f"{PROJECT}:objectLockDays": "14"})
    assert run.one(OBJECT_LOCK).inputs["rule"] == {
        "defaultRetention": {"mode": "COMPLIANCE", "days": 14.0}}


@pytest.mark.parametrize(("setting", "value", "message"), [
    ("objectLockMode", "FOREVER", "objectLockMode must be GOVERNANCE or COMPLIANCE"),
    ("objectLockDays", "-1", "objectLockDays must be at least 1"),
])
def test_impossible_object_lock_settings_are_clear_errors(setting: str, value: str,
                                                          message: str) -> None:
    with pytest.raises(Exception, match=message):
        run_program({f"{PROJECT}:objectLock": "true", f"{PROJECT}:{setting}": value})


def test_a_lock_longer_than_a_backup_lives_is_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    import pulumi

    warned: list[str] = []
    monkeypatch.setattr(pulumi.log, "warn", lambda message, *args, **kwargs: warned.append(
        message))
    run_program({f"{PROJECT}:objectLock": "true", f"{PROJECT}:objectLockDays": "38"})
    assert len(warned) == 1 and "until its lock ends" in warned[0]
    warned.clear()
    run_program({f"{PROJECT}:objectLock": "true", f"{PROJECT}:objectLockDays": "37"})
    assert warned == []
