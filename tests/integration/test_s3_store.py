"""The S3 store against moto's server: multipart, encryption, not-found as a result, errors."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from backup_agent.model.errors import S3Error
from backup_agent.model.settings import S3Settings
from backup_agent.storage.s3 import S3Store
from backup_agent.storage.s3_download import MEBIBYTE, ParallelObjectStream
from testbed.s3 import S3Endpoint


@pytest.fixture
def aws_environment(s3_endpoint: S3Endpoint, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in s3_endpoint.environment().items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def store(aws_environment: None, bucket: str) -> S3Store:
    return S3Store(S3Settings(bucket=bucket))


def test_large_files_go_up_in_parts_encrypted_and_intact(store: S3Store,
                                                         tmp_path: Path) -> None:
    path = tmp_path / "db_backup_20260228_110000.sql.gz"
    path.write_bytes(os.urandom(3 * 16 * MEBIBYTE + 12345))
    store.put_file("backups/big", path, metadata={"sha256": "abc"},
                   content_type="application/gzip")
    head = store.head("backups/big")
    assert head is not None
    assert head["ContentLength"] == path.stat().st_size
    assert head["ServerSideEncryption"] == "AES256"
    assert head["Metadata"] == {"sha256": "abc"}
    assert head["ETag"].strip('"').endswith("-4")  # four parts: a multipart upload
    stream = store.opener("backups/big", path.stat().st_size)()
    body = b"".join(iter(lambda: stream.read(1 << 20), b""))
    stream.close()
    assert hashlib.sha256(body).digest() == hashlib.sha256(path.read_bytes()).digest()


def test_head_of_a_missing_object_is_none(store: S3Store) -> None:
    assert store.head("backups/none") is None


def test_listing_pages_through_every_key_under_the_prefix(store: S3Store) -> None:
    for number in range(1005):  # more than one page of 1,000
        store.client.put_object(Bucket=store.bucket, Key=f"backups/k{number:04d}", Body=b"x")
    store.client.put_object(Bucket=store.bucket, Key="elsewhere/k", Body=b"x")
    keys = [item.key for item in store.list()]
    assert len(keys) == 1005 and all(key.startswith("backups/") for key in keys)


def test_small_reads_are_capped_and_probes_round_trip(store: S3Store) -> None:
    store.put_bytes("backups/probe", b"hello\n", action="write a probe object")
    assert store.read_small("backups/probe") == b"hello\n"


def test_parallel_download_returns_the_object_in_order(store: S3Store) -> None:
    data = os.urandom(3 * MEBIBYTE + 777)
    store.client.put_object(Bucket=store.bucket, Key="backups/ranged", Body=data)
    stream = ParallelObjectStream(store.client, bucket=store.bucket, key="backups/ranged",
                                  size=len(data), chunk_bytes=256 * 1024)
    pieces = []
    while piece := stream.read(100_000):
        pieces.append(piece)
    stream.close()
    assert b"".join(pieces) == data


def test_a_missing_bucket_is_one_s3_error_with_the_fix(aws_environment: None) -> None:
    store = S3Store(S3Settings(bucket="no-such-bucket-here"))
    with pytest.raises(S3Error, match="does not exist: check S3_BUCKET"):
        store.list()


def test_bucket_configuration_that_is_unset_is_an_empty_answer(store: S3Store) -> None:
    bucket = store.bucket_configuration()
    assert bucket.lifecycle.get() == ()
    assert bucket.versioning_enabled.get() is False
    assert bucket.policy.get().create_only_rule(store.bucket, "backups/x") is None


def test_bucket_configuration_answers_what_is_set(store: S3Store) -> None:
    store.client.put_bucket_versioning(Bucket=store.bucket,
                                       VersioningConfiguration={"Status": "Enabled"})
    store.client.put_bucket_lifecycle_configuration(Bucket=store.bucket, LifecycleConfiguration={
        "Rules": [{"ID": "expire", "Status": "Enabled", "Filter": {"Prefix": "backups/"},
                   "Expiration": {"Days": 30}}]})
    bucket = store.bucket_configuration()
    assert bucket.versioning_enabled.get() is True
    [rule] = bucket.lifecycle.get()
    assert (rule.name, rule.expiration_days, rule.expires("backups/")) == ("expire", 30, True)
    assert not rule.expires("other/")


def test_a_part_s3_refuses_to_show_fails_only_when_read(aws_environment: None) -> None:
    bucket = S3Store(S3Settings(bucket="no-such-bucket-here")).bucket_configuration()
    with pytest.raises(S3Error):
        bucket.policy.get()
