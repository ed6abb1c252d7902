"""WAL and base backups under the backup prefix (issue 22), as the program declares them.

The agent keeps `<prefix>wal/<system identifier>/<timeline>/<segment or history>` and
`<prefix>base/<system identifier>/<stamp>/...` beside the dumps (`<prefix>YYYY/MM/...`), each
written create-only. These tests read the program's documents under mocks; the writer's
behaviour on those keys is proven on moto in test_writer_policy_on_moto.py.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any

import pytest

from backup_agent.storage.s3_bucket import BucketPolicy
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

