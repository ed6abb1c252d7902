"""The writer policy the Pulumi program declares is the one the agent lives with.

The same document (rendered by infra/policy_documents.py) is attached to a user in moto's
server with IAM enforcement on; the real `backup-agent` backs up, lists and restores with
that user's keys, and a delete with the same keys is denied.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
import botocore.exceptions
import pytest

from testbed.postgres import PostgresServer
from testbed.s3 import REGION, S3Endpoint, running_s3_process
from testbed.sample_data import fingerprint
from tests.conftest import make_backup, run_agent
from tests.infra.harness import INFRA, bucket_policy_for_moto

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

sys.path.insert(0, str(INFRA))
from policy_documents import writer_policy

BUCKET = "dorami-db-backups-test"
PREFIX = "backups/"
SYSTEM = "7412345678901234567"  # the cluster's system identifier


@pytest.fixture(scope="module")
def enforcing_s3() -> Iterator[tuple[S3Endpoint, dict[str, str]]]:
    """An IAM-enforcing S3 with the bucket and a writer user holding the declared policy."""
    with running_s3_process() as s3:
        s3.create_bucket(BUCKET)
        s3.client().put_bucket_policy(Bucket=BUCKET,
                                      Policy=bucket_policy_for_moto(BUCKET, PREFIX))
        iam = boto3.client("iam", endpoint_url=s3.url, region_name=REGION,
                           aws_access_key_id="admin", aws_secret_access_key="admin")
        iam.create_user(UserName="dorami-backup-automation")
        iam.put_user_policy(UserName="dorami-backup-automation", PolicyName="backup-writer",
                            PolicyDocument=json.dumps(writer_policy(BUCKET, PREFIX)))
        key = iam.create_access_key(UserName="dorami-backup-automation")["AccessKey"]
        s3.enforce_iam()
        yield s3, {"access_key_id": key["AccessKeyId"],
                   "secret_access_key": key["SecretAccessKey"]}


@pytest.fixture
def writer_env(agent_env: dict[str, str],
               enforcing_s3: tuple[S3Endpoint, dict[str, str]]) -> dict[str, str]:
    s3, key = enforcing_s3
    return {**agent_env, **s3.environment(**key), "S3_BUCKET": BUCKET, "S3_PREFIX": PREFIX}


def test_the_declared_policy_lets_the_agent_back_up_list_and_restore(
        writer_env: dict[str, str], pg_server: PostgresServer, database: str) -> None:
    report = make_backup(writer_env)
    assert report["status"] == "success" and report["s3"]["key"].startswith(PREFIX)
    expected = fingerprint(pg_server, database)

    listed = run_agent(["list", "s3", "--json"], writer_env)
    assert listed.returncode == 0, listed.stderr
    assert report["name"] in [entry["name"] for entry in json.loads(listed.stdout)["backups"]]

    verified = run_agent(["verify", report["s3"]["uri"]], writer_env)
    assert verified.returncode == 0, verified.stderr

    pg_server.psql(database, "TRUNCATE shop.orders CASCADE;")
    restored = run_agent(["restore", "latest", "--from", "s3", "--yes", "--drop-previous"],
                         writer_env)
    assert restored.returncode == 0, restored.stderr
    assert fingerprint(pg_server, database) == expected


def test_the_declared_policy_cannot_delete_or_reach_outside_the_prefix(
        writer_env: dict[str, str], enforcing_s3: tuple[S3Endpoint, dict[str, str]]) -> None:
    report = make_backup(writer_env)
    s3, key = enforcing_s3
    client = s3.client(**key)
    with pytest.raises(botocore.exceptions.ClientError, match="AccessDenied"):
        client.delete_object(Bucket=BUCKET, Key=report["s3"]["key"])
    # DeleteObjects answers 200 and reports each refused key in Errors (as S3 does).
    answer = client.delete_objects(Bucket=BUCKET,
                                   Delete={"Objects": [{"Key": report["s3"]["key"]}]})
    assert [error["Code"] for error in answer.get("Errors", [])] == ["AccessDenied"]
    assert not answer.get("Deleted")
    with pytest.raises(botocore.exceptions.ClientError, match="AccessDenied"):
        client.put_object(Bucket=BUCKET, Key="elsewhere/x", Body=b"x")
    with pytest.raises(botocore.exceptions.ClientError, match="AccessDenied"):
        client.delete_bucket(Bucket=BUCKET)
    assert client.head_object(Bucket=BUCKET, Key=report["s3"]["key"])["ContentLength"] > 0


@pytest.mark.parametrize("key", [
    f"{PREFIX}wal/{SYSTEM}/00000001/000000010000000000000003",
    f"{PREFIX}wal/{SYSTEM}/00000002/00000002.history",
    f"{PREFIX}base/{SYSTEM}/20260314_020000/backup.json",
])
def test_the_declared_policy_lets_the_writer_create_wal_and_base_backups_once(
        enforcing_s3: tuple[S3Endpoint, dict[str, str]], key: str) -> None:
    s3, writer = enforcing_s3
    client = s3.client(**writer)
    client.put_object(Bucket=BUCKET, Key=key, Body=b"first", IfNoneMatch="*")
    with pytest.raises(botocore.exceptions.ClientError, match="PreconditionFailed"):
        client.put_object(Bucket=BUCKET, Key=key, Body=b"second", IfNoneMatch="*")
    assert client.get_object(Bucket=BUCKET, Key=key)["Body"].read() == b"first"
    directory = key.rsplit("/", 1)[0] + "/"
    listed = client.list_objects_v2(Bucket=BUCKET, Prefix=directory)
    assert [entry["Key"] for entry in listed["Contents"]] == [key]
    assert_cannot_delete(client, key)


def test_the_declared_policy_lets_the_writer_upload_a_base_backup_in_parts(
        enforcing_s3: tuple[S3Endpoint, dict[str, str]]) -> None:
    s3, writer = enforcing_s3
    client = s3.client(**writer)
    key = f"{PREFIX}base/{SYSTEM}/20260314_020000/base.tar"
    upload = client.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]
    part = client.upload_part(Bucket=BUCKET, Key=key, UploadId=upload, PartNumber=1,
                              Body=b"tar")
    client.complete_multipart_upload(
        Bucket=BUCKET, Key=key, UploadId=upload, IfNoneMatch="*",
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]})
    # A failed upload of the next one is cleaned up by the writer itself.
    abandoned = client.create_multipart_upload(Bucket=BUCKET, Key=f"{key}.next")["UploadId"]
    client.abort_multipart_upload(Bucket=BUCKET, Key=f"{key}.next", UploadId=abandoned)
    assert client.get_object(Bucket=BUCKET, Key=key)["Body"].read() == b"tar"
    assert_cannot_delete(client, key)


def assert_cannot_delete(client: S3Client, key: str) -> None:
    with pytest.raises(botocore.exceptions.ClientError, match="AccessDenied"):
        client.delete_object(Bucket=BUCKET, Key=key)
    answer = client.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": key}]})
    assert [error["Code"] for error in answer.get("Errors", [])] == ["AccessDenied"]
    assert client.head_object(Bucket=BUCKET, Key=key)["ContentLength"] > 0


def test_policy_file_is_loaded_from_infra() -> None:
    assert Path(sys.modules["policy_documents"].__file__ or "").parent == INFRA


def test_the_declared_policy_lets_doctor_read_the_bucket_settings(
        writer_env: dict[str, str]) -> None:
    result = run_agent(["doctor", "--json"], writer_env)
    checks = {check["name"]: check for check in json.loads(result.stdout)["checks"]}
    assert checks["s3"]["passed"] and checks["s3-permissions"]["passed"], result.stdout
    for name in ("bucket-encryption", "bucket-public-access", "bucket-lifecycle",
                 "bucket-versioning"):
        assert "denied" not in checks[name]["detail"], checks[name]
    # The writer may read the bucket policy, and the program's policy is what doctor wants.
    assert checks["bucket-create-only"]["passed"], checks["bucket-create-only"]
