"""Create-only writes against moto's server: nothing the agent writes can replace an object.

moto refuses a second `If-None-Match: *` write to a key (412) as S3 does, and refuses an
upload without Content-MD5 (or a checksum) into a bucket with Object Lock default retention.
The requests themselves are watched through the test bed's proxy.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import boto3
import botocore.exceptions
import pytest
from botocore.config import Config

from backup_agent.model.errors import ExitCode, ObjectExistsError
from backup_agent.model.settings import S3Settings
from backup_agent.storage.s3 import S3Store
from backup_agent.storage.s3_download import MEBIBYTE
from testbed.faulty_s3 import FaultyS3, faulty_s3
from testbed.s3 import REGION, S3Endpoint

PART = 5 * MEBIBYTE


def store_at(endpoint_url: str, bucket: str, monkeypatch: pytest.MonkeyPatch,
             s3_endpoint: S3Endpoint) -> S3Store:
    for variable, value in s3_endpoint.environment().items():
        monkeypatch.setenv(variable, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", endpoint_url)
    return S3Store(S3Settings(bucket=bucket, part_size_mib=5))


@pytest.fixture
def store(s3_endpoint: S3Endpoint, bucket: str, monkeypatch: pytest.MonkeyPatch) -> S3Store:
    return store_at(s3_endpoint.url, bucket, monkeypatch, s3_endpoint)


@pytest.fixture
def watched(s3_endpoint: S3Endpoint, bucket: str,
            monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[S3Store, FaultyS3]]:
    """A store whose every request passes (untouched) through a recording proxy."""
    with faulty_s3(s3_endpoint.url, lambda request: None) as proxy:
        yield store_at(proxy.url, bucket, monkeypatch, s3_endpoint), proxy


def write_file(path: Path, size: int) -> bytes:
    data = os.urandom(size)
    path.write_bytes(data)
    return data


def versions(store: S3Store, key: str) -> list[str]:
    answer = store.client.list_object_versions(Bucket=store.bucket, Prefix=key)
    return [version["VersionId"] for version in answer.get("Versions", [])]


def test_every_write_is_create_only_and_carries_its_md5(
        watched: tuple[S3Store, FaultyS3], tmp_path: Path) -> None:
    store, proxy = watched
    write_file(tmp_path / "big", 2 * PART + 1000)
    store.put_file("backups/big", tmp_path / "big", content_type="application/gzip",
                   metadata={})  # multipart: three parts
    write_file(tmp_path / "small", 1000)
    store.put_file("backups/small", tmp_path / "small", content_type="text/plain", metadata={})
    store.put_bytes("backups/probe", b"probe\n", action="write a probe object")

    creating = [request for request in proxy.seen if request.creates_an_object]
    assert len(creating) == 3  # the multipart completion, the small file, the probe
    assert all(request.headers.get("if-none-match") == "*" for request in creating)
    bodies = [request for request in proxy.seen if request.method == "PUT"]
    assert sum(request.is_upload_part for request in bodies) == 3
    assert all(request.headers.get("content-md5") for request in bodies), bodies


def test_a_second_write_to_a_key_is_refused_and_the_first_stays(store: S3Store) -> None:
    store.put_bytes("backups/probe", b"first\n", action="write a probe object")
    with pytest.raises(ObjectExistsError, match="never replaces one") as refused:
        store.put_bytes("backups/probe", b"second\n", action="write a probe object")
    assert refused.value.exit_code == ExitCode.S3
    assert "backups/probe" in str(refused.value)
    assert store.read_small("backups/probe") == b"first\n"


def test_a_retried_write_of_the_same_bytes_is_recognised_as_ours(store: S3Store) -> None:
    # As when S3 stored the first attempt but its answer was lost and botocore retried.
    store.put_bytes("backups/probe", b"same\n", action="write a probe object")
    store.put_bytes("backups/probe", b"same\n", action="write a probe object")
    assert store.read_small("backups/probe") == b"same\n"


@pytest.mark.parametrize("size", [1000, 2 * PART + 7], ids=["one-put", "multipart"])
def test_an_upload_onto_an_existing_key_fails_and_leaves_it_alone(
        store: S3Store, tmp_path: Path, size: int) -> None:
    store.client.put_object(Bucket=store.bucket, Key="backups/taken", Body=b"planted")
    before = store.head("backups/taken")
    write_file(tmp_path / "backup", size)
    with pytest.raises(ObjectExistsError, match=r"refusing to overwrite s3://.*/backups/taken"):
        store.put_file("backups/taken", tmp_path / "backup", content_type="application/gzip",
                       metadata={})
    assert store.read_small("backups/taken") == b"planted"
    after = store.head("backups/taken")
    assert before is not None and after is not None and after["ETag"] == before["ETag"]
    assert store.client.list_multipart_uploads(Bucket=store.bucket).get("Uploads", []) == []


@pytest.fixture
def locked_bucket(s3_endpoint: S3Endpoint, bucket: str) -> str:
    """The program's path: Object Lock turned on for an existing, versioned bucket."""
    client = s3_endpoint.client()
    client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    client.put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled",
        "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}}})
    return bucket


def test_uploads_succeed_under_object_lock_default_retention(
        locked_bucket: str, s3_endpoint: S3Endpoint, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # The control: the client as configured before (no checksum unless required) is refused.
    bare = boto3.client("s3", endpoint_url=s3_endpoint.url, region_name=REGION,
                        aws_access_key_id="a", aws_secret_access_key="b",
                        config=Config(request_checksum_calculation="when_required"))
    with pytest.raises(botocore.exceptions.ClientError,
                       match="MissingUploadObjectWithObjectLockHeaders"):
        bare.put_object(Bucket=locked_bucket, Key="backups/bare", Body=b"x")

    store = store_at(s3_endpoint.url, locked_bucket, monkeypatch, s3_endpoint)
    for name, size in (("small", 1000), ("large", 2 * PART + 7)):
        data = write_file(tmp_path / name, size)
        store.put_file(f"backups/{name}", tmp_path / name, content_type="application/gzip",
                       metadata={})
        head = store.head(f"backups/{name}")
        # moto applies the default retention to single PUTs only (S3 to every new object),
        # and checks the header there; the test above proves every part carries it too.
        assert head is not None and head.get("ObjectLockMode", "GOVERNANCE") == "GOVERNANCE"
        assert name != "small" or head["ObjectLockMode"] == "GOVERNANCE"
        body = store.client.get_object(Bucket=locked_bucket, Key=f"backups/{name}")["Body"]
        assert hashlib.sha256(body.read()).digest() == hashlib.sha256(data).digest()
    store.put_bytes("backups/probe", b"probe\n", action="write a probe object")
    assert len(versions(store, "backups/probe")) == 1


def test_content_md5_is_the_bodys_md5() -> None:
    from backup_agent.storage.s3_upload import content_md5

    digest = hashlib.md5(b"hello", usedforsecurity=False).digest()
    assert content_md5(digest) == base64.b64encode(digest).decode() == "XUFAKrxLKna5cZ2REBfFkg=="
