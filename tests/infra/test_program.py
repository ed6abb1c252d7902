"""The Pulumi program under mocks: every property the guide and the issue require."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from tests.infra.harness import PROJECT, ProgramRun, run_program

SECRET_SIGNATURE = "4dabf18193072939515e22adb298388d"  # how Pulumi marks a secret value
ENVIRONMENT = "github:index/repositoryEnvironment:RepositoryEnvironment"
DEPLOYMENT_POLICY = ("github:index/repositoryEnvironmentDeploymentPolicy:"
                     "RepositoryEnvironmentDeploymentPolicy")
ENVIRONMENT_SECRET = "github:index/actionsEnvironmentSecret:ActionsEnvironmentSecret"
REPOSITORY_SECRET = "github:index/actionsSecret:ActionsSecret"


def is_secret_input(value: Any) -> bool:
    return isinstance(value, dict) and SECRET_SIGNATURE in value


@pytest.fixture(scope="module")
def default_run() -> ProgramRun:
    return run_program()


def test_exactly_the_listed_resources_and_nothing_else(default_run: ProgramRun) -> None:
    assert Counter(resource.type for resource in default_run.resources) == Counter({
        "dorami:backups:BackupBucket": 1,
        "aws:s3/bucket:Bucket": 1,
        "aws:s3/bucketOwnershipControls:BucketOwnershipControls": 1,
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": 1,
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": 1,
        "aws:s3/bucketVersioning:BucketVersioning": 1,
        "aws:s3/bucketPolicy:BucketPolicy": 1,
        "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": 1,
        "dorami:backups:BackupWriter": 1,
        "aws:iam/user:User": 1,
        "aws:iam/userPolicy:UserPolicy": 1,
        "aws:iam/accessKey:AccessKey": 1,
        "dorami:backups:GithubEnvironment": 1,
        "github:index/repositoryEnvironment:RepositoryEnvironment": 1,
        "github:index/repositoryEnvironmentDeploymentPolicy:RepositoryEnvironmentDeploymentPolicy":
            1,
        "github:index/actionsEnvironmentSecret:ActionsEnvironmentSecret": 3,
    })


def test_bucket_is_named_by_config_and_never_force_destroyed(default_run: ProgramRun) -> None:
    bucket = default_run.one("aws:s3/bucket:Bucket")
    assert bucket.inputs["bucket"] == "dorami-db-backups-prod"
    assert not bucket.inputs.get("forceDestroy")
    assert not bucket.inputs.get("objectLockEnabled")


def test_both_buckets_and_their_private_baseline_are_protected() -> None:
    run = run_program({f"{PROJECT}:accessLogging": "true"})
    for stem in ("backups", "access-logs"):
        for suffix in ("", "-ownership", "-public-access-block", "-encryption"):
            assert run.protected[f"{stem}{suffix}"], f"{stem}{suffix}"
    # What only logging needs can go again with accessLogging: false.
    assert not run.protected["access-logs-logging"]


def test_encryption_is_sse_s3_aes256(default_run: ProgramRun) -> None:
    rules = default_run.one("aws:s3/bucketServerSideEncryptionConfiguration:"
                            "BucketServerSideEncryptionConfiguration").inputs["rules"]
    assert rules == [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"},
                      "blockedEncryptionTypes": ["SSE-C"]}]


def test_all_four_public_access_flags_and_owner_enforced(default_run: ProgramRun) -> None:
    block = default_run.one("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock").inputs
    assert {key: block[key] for key in ("blockPublicAcls", "ignorePublicAcls",
                                        "blockPublicPolicy", "restrictPublicBuckets")} == \
        dict.fromkeys(("blockPublicAcls", "ignorePublicAcls", "blockPublicPolicy",
                       "restrictPublicBuckets"), True)
    ownership = default_run.one("aws:s3/bucketOwnershipControls:BucketOwnershipControls")
    assert ownership.inputs["rule"] == {"objectOwnership": "BucketOwnerEnforced"}
    versioning = default_run.one("aws:s3/bucketVersioning:BucketVersioning")
    assert versioning.inputs["versioningConfiguration"] == {"status": "Enabled"}


def test_bucket_policy_denies_requests_without_tls(default_run: ProgramRun) -> None:
    policy = json.loads(default_run.one("aws:s3/bucketPolicy:BucketPolicy").inputs["policy"])
    assert policy["Statement"][0] == {
        "Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
        "Resource": ["arn:aws:s3:::dorami-db-backups-prod",
                     "arn:aws:s3:::dorami-db-backups-prod/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
    assert all(statement["Effect"] == "Deny" for statement in policy["Statement"])


def test_lifecycle_rules_and_their_numbers(default_run: ProgramRun) -> None:
    rules = default_run.one("aws:s3/bucketLifecycleConfiguration:"
                            "BucketLifecycleConfiguration").inputs["rules"]

    def expiring(rule_id: str, prefix: str, days: float) -> dict[str, Any]:
        return {"id": rule_id, "status": "Enabled", "filter": {"prefix": prefix},
                "expiration": {"days": days},
                "noncurrentVersionExpiration": {"noncurrentDays": 7.0},
                "abortIncompleteMultipartUpload": {"daysAfterInitiation": 7.0}}

    assert rules == [
        expiring("ExpireOldDumps", "backups/20", 30.0),
        expiring("ExpireOldBaseBackups", "backups/base/", 30.0),
        expiring("ExpireOldWal", "backups/wal/", 32.0),
        expiring("ExpireEverythingAtTheLatest", "backups/", 32.0),
        {"id": "RemoveExpiredDeleteMarkers", "status": "Enabled",
         "filter": {"prefix": "backups/"}, "expiration": {"expiredObjectDeleteMarker": True}},
    ]


def writer_statements(run: ProgramRun) -> list[dict[str, Any]]:
    document = json.loads(run.one("aws:iam/userPolicy:UserPolicy").inputs["policy"])
    statements: list[dict[str, Any]] = document["Statement"]
    return statements


def test_writer_policy_is_exactly_the_guides_actions_plus_abort(default_run: ProgramRun) -> None:
    user = default_run.one("aws:iam/user:User")
    assert user.inputs["name"] == "dorami-backup-automation"
    assert writer_statements(default_run) == [
        {"Sid": "ReadAndWriteBackups", "Effect": "Allow",
         "Action": ["s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload"],
         "Resource": ["arn:aws:s3:::dorami-db-backups-prod/backups/*"]},
        {"Sid": "ListBackups", "Effect": "Allow", "Action": ["s3:ListBucket"],
         "Resource": ["arn:aws:s3:::dorami-db-backups-prod"],
         "Condition": {"StringLike": {"s3:prefix": ["backups/", "backups/*"]}}},
        {"Sid": "ReadBucketSafetySettings", "Effect": "Allow",
         "Action": ["s3:GetEncryptionConfiguration", "s3:GetBucketPublicAccessBlock",
                    "s3:GetLifecycleConfiguration", "s3:GetBucketVersioning",
                    "s3:GetBucketPolicy"],
         "Resource": ["arn:aws:s3:::dorami-db-backups-prod"]},
    ]


def test_no_statement_allows_wildcards_deletes_or_versions(default_run: ProgramRun) -> None:
    for statement in writer_statements(default_run):
        assert statement["Effect"] == "Allow"
        for action in statement["Action"]:
            assert "*" not in action
            assert not action.lower().startswith("s3:delete")
            assert "objectversion" not in action.lower()  # history stays out of reach
            # Objects may be written; bucket configuration only ever read.
            assert action in ("s3:PutObject", "s3:AbortMultipartUpload") \
                or action.startswith(("s3:Get", "s3:List"))
        for resource in statement["Resource"]:
            assert resource != "*" and not resource.endswith(":::*")
            assert resource.startswith("arn:aws:s3:::dorami-db-backups-prod")


def test_a_production_environment_that_deploys_from_main_only(
        default_run: ProgramRun) -> None:
    environment = default_run.one(ENVIRONMENT).inputs
    assert environment["repository"] == "dorami"
    assert environment["environment"] == "production"
    # Selected branches, not "protected branches" (which a new protected branch would join).
    assert environment["deploymentBranchPolicy"] == {"protectedBranches": False,
                                                     "customBranchPolicies": True}
    policy = default_run.one(DEPLOYMENT_POLICY).inputs
    assert policy == {"repository": "dorami", "environment": "production",
                      "branchPattern": "main"}
    # It also holds the secrets set by hand (SSH key, age key): never deleted in passing.
    assert default_run.protected["github-production"]


def test_three_github_environment_secrets_with_secret_values(default_run: ProgramRun) -> None:
    secrets = {resource.inputs["secretName"]: resource.inputs
               for resource in default_run.of_type(ENVIRONMENT_SECRET)}
    assert set(secrets) == {"PROD_S3_BACKUP_BUCKET", "PROD_AWS_ACCESS_KEY_ID",
                            "PROD_AWS_SECRET_ACCESS_KEY"}
    # Nothing repository-wide: a workflow pushed on any branch could read that.
    assert default_run.of_type(REPOSITORY_SECRET) == []
    assert default_run.of_type("github:index/actionsVariable:ActionsVariable") == []
    for inputs in secrets.values():
        assert inputs["repository"] == "dorami"
        assert inputs["environment"] == "production"
        assert is_secret_input(inputs["value"])
        assert "plaintextValue" not in inputs  # deprecated since pulumi-github 6.13
    assert secrets["PROD_S3_BACKUP_BUCKET"]["value"]["value"] == "dorami-db-backups-prod"
    assert secrets["PROD_AWS_SECRET_ACCESS_KEY"]["value"]["value"] == "mock-secret-access-key"


def test_outputs_and_only_the_secret_key_is_secret(default_run: ProgramRun) -> None:
    outputs = default_run.globals["outputs"]
    assert default_run.output("bucketName") == "dorami-db-backups-prod"
    assert default_run.output("bucketArn") == "arn:aws:s3:::dorami-db-backups-prod"
    assert default_run.output("region") == "ap-northeast-2"
    assert default_run.output("writerUserName") == "dorami-backup-automation"
    assert default_run.output("accessKeyId") == "AKIAMOCKACCESSKEY000"
    assert default_run.output("secretAccessKey") == "mock-secret-access-key"
    assert default_run.is_secret(outputs["secretAccessKey"])
    assert not default_run.is_secret(outputs["accessKeyId"])


def test_config_flows_into_the_resources() -> None:
    run = run_program({"aws:region": "eu-west-1", f"{PROJECT}:bucketName": "other-backups",
                       f"{PROJECT}:retentionDays": "14",
                       f"{PROJECT}:noncurrentRetentionDays": "3",
                       f"{PROJECT}:backupPrefix": "db/", f"{PROJECT}:writerUserName": "w",
                       f"{PROJECT}:githubRepository": "infra-repo"})
    assert run.output("region") == "eu-west-1"
    assert run.one("aws:s3/bucket:Bucket").inputs["bucket"] == "other-backups"
    rules = run.one("aws:s3/bucketLifecycleConfiguration:"
                    "BucketLifecycleConfiguration").inputs["rules"]
    assert rules[0]["expiration"] == {"days": 14.0}
    assert rules[0]["noncurrentVersionExpiration"] == {"noncurrentDays": 3.0}
    assert rules[0]["filter"] == {"prefix": "db/20"}
    assert {rule["filter"]["prefix"] for rule in rules} == {"db/20", "db/base/", "db/wal/", "db/"}
    assert writer_statements(run)[0]["Resource"] == ["arn:aws:s3:::other-backups/db/*"]
    assert run.one("aws:iam/user:User").inputs["name"] == "w"
    assert {resource.inputs["repository"] for resource in
            run.of_type(ENVIRONMENT_SECRET) + run.of_type(ENVIRONMENT) +
            run.of_type(DEPLOYMENT_POLICY)} == {"infra-repo"}


def test_github_secrets_can_be_switched_off() -> None:
    run = run_program({f"{PROJECT}:manageGithubSecrets": "false"})
    for type_token in (ENVIRONMENT_SECRET, REPOSITORY_SECRET, ENVIRONMENT, DEPLOYMENT_POLICY,
                       "dorami:backups:GithubEnvironment"):
        assert run.of_type(type_token) == [], type_token


def test_optional_access_logging_into_a_private_log_bucket() -> None:
    run = run_program({f"{PROJECT}:accessLogging": "true"})
    buckets = sorted(resource.inputs["bucket"] for resource in
                     run.of_type("aws:s3/bucket:Bucket"))
    assert buckets == ["dorami-db-backups-prod", "dorami-db-backups-prod-access-logs"]
    logging = run.one("aws:s3/bucketLogging:BucketLogging").inputs
    assert logging == {"bucket": "dorami-db-backups-prod",
                       "targetBucket": "dorami-db-backups-prod-access-logs",
                       "targetPrefix": "access-logs/"}
    assert len(run.of_type("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")) == 2
    log_policy = json.loads(next(
        resource.inputs["policy"] for resource in run.of_type("aws:s3/bucketPolicy:BucketPolicy")
        if resource.inputs["bucket"].endswith("access-logs")))
    assert [statement["Sid"] for statement in log_policy["Statement"]] == [
        "DenyInsecureTransport", "AllowS3ServerAccessLogs"]


def test_missing_repository_is_a_clear_error() -> None:
    with pytest.raises(Exception, match="githubRepository"):
        run_program({f"{PROJECT}:githubRepository": ""})
