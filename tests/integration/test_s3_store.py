"""The S3 wrapper against moto's server: multipart, encryption, not-found as a result."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from backup_agent import s3_store
from backup_agent.settings import S3Settings
from testbed.s3 import S3Endpoint

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


@pytest.fixture
def client(s3_endpoint: S3Endpoint, monkeypatch: pytest.MonkeyPatch) -> S3Client:
    for name, value in s3_endpoint.environment().items():
        monkeypatch.setenv(name, value)
    settings = S3Settings(bucket="unused")
    return s3_store.make_client(settings, s3_store.make_session(settings))


def test_large_files_go_up_in_parts_encrypted_and_intact(client: S3Client, bucket: str,
                                                         tmp_path: Path) -> None:
    path = tmp_path / "db_backup_20260228_110000.sql.gz"
    path.write_bytes(os.urandom(3 * 16 * s3_store.MEBIBYTE + 12345))
    s3_store.upload_file(client, bucket=bucket, key="backups/big", path=path,
                         metadata={"sha256": "abc"}, content_type="application/gzip")
    head = s3_store.head(client, bucket=bucket, key="backups/big")
    assert head is not None
    assert head["ContentLength"] == path.stat().st_size
    assert head["ServerSideEncryption"] == "AES256"
    assert head["Metadata"] == {"sha256": "abc"}
    assert head["ETag"].strip('"').endswith("-4")  # four parts: a multipart upload
    body = client.get_object(Bucket=bucket, Key="backups/big")["Body"].read()
    assert hashlib.sha256(body).digest() == hashlib.sha256(path.read_bytes()).digest()


def test_head_of_a_missing_object_is_none(client: S3Client, bucket: str) -> None:
    assert s3_store.head(client, bucket=bucket, key="backups/none") is None


def test_parallel_download_returns_the_object_in_order(client: S3Client, bucket: str) -> None:
    data = os.urandom(3 * s3_store.MEBIBYTE + 777)
    client.put_object(Bucket=bucket, Key="backups/ranged", Body=data)
    stream = s3_store.ParallelObjectStream(client, bucket=bucket, key="backups/ranged",
                                           size=len(data), chunk_bytes=256 * 1024)
    pieces = []
    while piece := stream.read(100_000):
        pieces.append(piece)
    stream.close()
    assert b"".join(pieces) == data
