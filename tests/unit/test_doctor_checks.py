"""doctor's create-only checks against a stand-in store: the policy it wants, the endpoint
it refuses."""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest

from backup_agent.actions import doctor
from backup_agent.model.errors import ObjectExistsError
from backup_agent.storage.s3_bucket import BucketConfiguration, bucket_configuration
from tests.infra.harness import INFRA

sys.path.insert(0, str(INFRA))
from policy_documents import backup_bucket_policy, create_only_statement, tls_only_policy


class StandInStore:
    """What doctor's checks use of S3Store, in memory; `honours_if_none_match` as S3 does."""

    bucket = "dorami-db-backups-prod"
    prefix = "backups/"

    def __init__(self, *, policy: dict[str, Any] | None = None,
                 honours_if_none_match: bool = True) -> None:
        self.policy = policy
        self.honours = honours_if_none_match
        self.objects: dict[str, bytes] = {}

    def url(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def put_bytes(self, key: str, body: bytes, *, action: str) -> None:
        if self.honours and key in self.objects and self.objects[key] != body:
            raise ObjectExistsError(f"refusing to {action}")
        self.objects[key] = body

    def read_small(self, key: str, *, action: str) -> bytes:
        return self.objects[key]

    def bucket_configuration(self) -> BucketConfiguration:
        def read(method: str, missing: set[str]) -> dict[str, Any] | None:
            assert method.startswith("get_")
            if method != "get_bucket_policy" or self.policy is None:
                return None
            return {"Policy": json.dumps(self.policy)}

        return bucket_configuration(read)


def check(function: Any, store: StandInStore) -> str:
    return str(function(store, store.bucket_configuration()))


def test_the_programs_policy_is_recognised() -> None:
    store = StandInStore(policy=backup_bucket_policy(f"arn:aws:s3:::{StandInStore.bucket}",
                                                     "backups/"))
    assert "DenyOverwritingBackups" in check(doctor._create_only, store)


@pytest.mark.parametrize("policy", [
    None,
    tls_only_policy("arn:aws:s3:::dorami-db-backups-prod"),  # the policy before this rule
    {"Statement": [create_only_statement("arn:aws:s3:::dorami-db-backups-prod", "other/")]},
    {"Statement": {**create_only_statement("arn:aws:s3:::dorami-db-backups-prod", "backups/"),
                   "Effect": "Allow"}},
], ids=["no-policy", "tls-only", "other-prefix", "not-a-deny"])
def test_a_policy_without_the_create_only_deny_fails_with_the_fix(
        policy: dict[str, Any] | None) -> None:
    with pytest.raises(doctor.BucketProblem, match="run pulumi up"):
        check(doctor._create_only, StandInStore(policy=policy))


def test_the_probe_creates_a_new_object_and_is_refused_writing_over_it() -> None:
    store = StandInStore()
    assert "refused to write over" in doctor._create_read_and_refuse(store)  # type: ignore[arg-type]
    [(key, body)] = store.objects.items()
    assert key.startswith("backups/.backup-agent-doctor/") and body == doctor.PROBE_BODY


def test_an_endpoint_that_ignores_if_none_match_fails_the_probe() -> None:
    with pytest.raises(doctor.BucketProblem, match="ignores it"):
        doctor._create_read_and_refuse(StandInStore(honours_if_none_match=False))  # type: ignore[arg-type]
