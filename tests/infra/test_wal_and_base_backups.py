"""WAL and base backups under the backup prefix (issue 22), as the program declares them.

The agent keeps `<prefix>wal/<system identifier>/<timeline>/<segment or history>` and
`<prefix>base/<system identifier>/<stamp>/...` beside the dumps (`<prefix>YYYY/MM/...`), each
written create-only. These tests read the program's policies and lifecycle under mocks (the
lifecycle as S3 applies overlapping rules); the writer's behaviour on those keys is proven on
moto in test_writer_policy_on_moto.py.
"""

from __future__ import annotations

from datetime import UTC, datetime
from fnmatch import fnmatchcase
from typing import Any

import pytest

from backup_agent.model.naming import (
    backup_name,
    checksum_name,
    globals_name,
    manifest_name,
    s3_key,
    signature_name,
)
from backup_agent.storage.s3_bucket import BucketPolicy, LifecycleRule
from tests.infra.harness import PROJECT, ProgramRun, run_program
from tests.infra.test_bucket_defences import statements as bucket_statements
from tests.infra.test_program import writer_statements

BUCKET = "dorami-db-backups-prod"
SYSTEM = "7412345678901234567"
NEW_KEYS = (f"wal/{SYSTEM}/00000001/000000010000000A000000FF",
            f"wal/{SYSTEM}/00000002/00000002.history",
            f"base/{SYSTEM}/20260314_020000/base.tar",
            f"base/{SYSTEM}/20260314_020000/backup.json",
            f"base/{SYSTEM}/20260314_020000/backup.json.sig")


@pytest.fixture(scope="module")
def default_run() -> ProgramRun:
    return run_program()


def covers(statement: dict[str, Any], key: str) -> bool:
    """True when `statement`'s Resource patterns (IAM's `*` wildcards) name the object `key`."""
    return any(fnmatchcase(f"arn:aws:s3:::{BUCKET}/{key}", pattern)
               for pattern in statement["Resource"])


def allowed_object_actions(run: ProgramRun, key: str) -> set[str]:
    return {action for statement in writer_statements(run)
            if statement["Effect"] == "Allow" and covers(statement, key)
            for action in statement["Action"]}


@pytest.mark.parametrize("key", NEW_KEYS)
def test_the_writer_may_create_and_read_wal_and_base_backups_and_never_delete(
        default_run: ProgramRun, key: str) -> None:
    assert allowed_object_actions(default_run, f"backups/{key}") == {
        "s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload"}
    listing = next(statement for statement in writer_statements(default_run)
                   if statement["Sid"] == "ListBackups")
    directory = f"backups/{key.rsplit('/', 1)[0]}/"
    assert any(fnmatchcase(directory, pattern)
               for pattern in listing["Condition"]["StringLike"]["s3:prefix"])


@pytest.mark.parametrize("key", NEW_KEYS)
def test_wal_and_base_backups_are_create_only_and_standard_storage(
        default_run: ProgramRun, key: str) -> None:
    denies = bucket_statements(default_run)
    for sid in ("DenyOverwritingBackups", "DenyOtherStorageClasses"):
        assert covers(denies[sid], f"backups/{key}"), sid
    # ...and `backup-agent doctor`, reading the same policy, finds the create-only rule.
    policy = BucketPolicy(statements=tuple(denies.values()))
    assert policy.create_only_rule(BUCKET, f"backups/{key}") == "DenyOverwritingBackups"


def test_the_rules_for_wal_and_base_backups_follow_the_configured_prefix() -> None:
    run = run_program({f"{PROJECT}:backupPrefix": "db/"})
    denies = bucket_statements(run)
    for key in NEW_KEYS:
        assert allowed_object_actions(run, f"db/{key}") == {
            "s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload"}
        assert allowed_object_actions(run, f"backups/{key}") == set()
        assert covers(denies["DenyOverwritingBackups"], f"db/{key}")


# The lifecycle. S3 honours the shortest of overlapping expirations, so what counts for a key
# is the earliest of every rule whose prefix it starts with.
LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
DUMP_STEM = backup_name(datetime(2026, 3, 14, 2, 0, tzinfo=UTC), encrypted=True)
DUMP_NAMES = (DUMP_STEM, checksum_name(DUMP_STEM), manifest_name(DUMP_STEM),
              signature_name(DUMP_STEM), globals_name(DUMP_STEM))


def expiring_rules(run: ProgramRun) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = run.one(LIFECYCLE).inputs["rules"]
    return [rule for rule in rules
            if rule["status"] == "Enabled" and "days" in rule["expiration"]]


def expires_after(run: ProgramRun, key: str) -> float | None:
    """Return the days after which S3 expires `key`'s current version, or None: never."""
    days = [rule["expiration"]["days"] for rule in expiring_rules(run)
            if key.startswith(rule["filter"]["prefix"])]
    return min(days, default=None)


def test_dumps_and_base_backups_expire_after_the_retention_and_wal_two_days_later(
        default_run: ProgramRun) -> None:
    for name in DUMP_NAMES:
        assert expires_after(default_run, s3_key("backups/", name)) == 30.0, name
    for key in NEW_KEYS:
        expected = 32.0 if key.startswith("wal/") else 30.0
        assert expires_after(default_run, f"backups/{key}") == expected, key
    # Whatever else is under the prefix expires too, as late as WAL: doctor's probes, a dump
    # the guide's scripts left at the top, whatever a later version adds.
    for key in (".backup-agent-doctor/20260314T020000Z-0a1b2c3d", "db_backup_x.sql.gz"):
        assert expires_after(default_run, f"backups/{key}") == 32.0, key
    assert expires_after(default_run, "elsewhere/wal/x") is None


@pytest.mark.parametrize(("retention", "margin"), [(30, 2), (14, 5), (7, 1)])
def test_no_rule_that_reaches_wal_expires_it_before_the_margin(retention: int,
                                                               margin: int) -> None:
    run = run_program({f"{PROJECT}:retentionDays": str(retention),
                       f"{PROJECT}:walRetentionMarginDays": str(margin),
                       f"{PROJECT}:backupPrefix": "db/"})
    wal_key = f"db/{NEW_KEYS[0]}"
    reaching = [rule for rule in expiring_rules(run)
                if wal_key.startswith(rule["filter"]["prefix"])]
    assert [rule["id"] for rule in reaching] == ["ExpireOldWal", "ExpireEverythingAtTheLatest"]
    assert {rule["expiration"]["days"] for rule in reaching} == {retention + margin}
    for key in NEW_KEYS[2:]:
        assert expires_after(run, f"db/{key}") == retention
    assert expires_after(run, s3_key("db/", DUMP_STEM)) == retention


def test_the_dump_rule_reaches_the_agents_dump_keys_and_nothing_else(
        default_run: ProgramRun) -> None:
    dumps = next(rule for rule in expiring_rules(default_run) if rule["id"] == "ExpireOldDumps")
    prefix = dumps["filter"]["prefix"]
    for year in (2000, 2026, 2099):
        key = s3_key("backups/", backup_name(datetime(year, 1, 1, tzinfo=UTC)))
        assert key.startswith(prefix), key
    for key in (*NEW_KEYS, ".backup-agent-doctor/probe"):
        assert not f"backups/{key}".startswith(prefix), key


def test_doctor_finds_a_rule_that_expires_the_whole_prefix(default_run: ProgramRun) -> None:
    rules = [LifecycleRule(name=rule["id"], prefix=rule["filter"]["prefix"], enabled=True,
                           expiration_days=int(rule["expiration"]["days"]))
             for rule in expiring_rules(default_run)]
    found = [rule for rule in rules if rule.expires("backups/")]
    assert [(rule.name, rule.expiration_days) for rule in found] == [
        ("ExpireEverythingAtTheLatest", 32)]


def test_the_wal_margin_is_a_setting_of_at_least_one_day() -> None:
    run = run_program({f"{PROJECT}:walRetentionMarginDays": "1"})
    assert expires_after(run, f"backups/{NEW_KEYS[0]}") == 31.0
    with pytest.raises(Exception, match="walRetentionMarginDays must be at least 1"):
        run_program({f"{PROJECT}:walRetentionMarginDays": "0"})
