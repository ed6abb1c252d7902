"""The streaming upload against moto's server: a file uploaded while it grows.

Each case writes the file in pieces, as a dump would, and tells the upload how far it got.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from backup_agent.model.errors import S3Error
from backup_agent.model.settings import S3Settings
from backup_agent.storage.s3 import S3Store
from backup_agent.storage.s3_download import MEBIBYTE
from backup_agent.storage.s3_upload import StreamingUpload
from testbed.s3 import S3Endpoint

PART = 5 * MEBIBYTE  # S3's smallest part


@pytest.fixture
def store(s3_endpoint: S3Endpoint, bucket: str, monkeypatch: pytest.MonkeyPatch) -> S3Store:
    for variable, value in s3_endpoint.environment().items():
        monkeypatch.setenv(variable, value)
    return S3Store(S3Settings(bucket=bucket, part_size_mib=5))


def grow(path: Path, upload: StreamingUpload, data: bytes, piece: int) -> None:
    """Append `data` to `path` a piece at a time, telling the upload after each."""
    with path.open("ab") as handle:
        for start in range(0, len(data), piece):
            handle.write(data[start:start + piece])
            handle.flush()
            upload.advance(start + len(data[start:start + piece]))


def test_a_growing_file_arrives_whole_in_parts(store: S3Store, tmp_path: Path) -> None:
    path = tmp_path / "growing"
    path.touch()
    data = os.urandom(2 * PART + 123_456)
    uploaded: list[int] = []
    upload = store.start_upload("backups/grown", path, content_type="application/gzip",
                                metadata={"tool": "test"}, on_uploaded=uploaded.append)
    grow(path, upload, data, piece=700_000)
    stored = store.finish_upload(upload, len(data))
    body = store.client.get_object(Bucket=store.bucket, Key=stored.key)["Body"].read()
    assert hashlib.sha256(body).digest() == hashlib.sha256(data).digest()
    head = store.head("backups/grown")
    assert head is not None and head["ETag"].strip('"').endswith("-3")
    assert head["Metadata"] == {"tool": "test"} and head["ServerSideEncryption"] == "AES256"
    assert max(uploaded) == len(data)


def test_a_file_smaller_than_a_part_goes_up_in_one_put(store: S3Store, tmp_path: Path) -> None:
    path = tmp_path / "small"
    path.touch()
    upload = store.start_upload("backups/small", path, content_type="application/gzip",
                                metadata={})
    grow(path, upload, b"tiny backup", piece=4)
    store.finish_upload(upload, len(b"tiny backup"))
    head = store.head("backups/small")
    assert head is not None and "-" not in head["ETag"]


def test_an_aborted_upload_leaves_no_object_and_no_parts(store: S3Store, tmp_path: Path) -> None:
    path = tmp_path / "abandoned"
    path.touch()
    upload = store.start_upload("backups/abandoned", path, content_type="application/gzip",
                                metadata={})
    grow(path, upload, os.urandom(PART + 10), piece=MEBIBYTE)
    upload.abort()
    assert store.head("backups/abandoned") is None
    assert store.client.list_multipart_uploads(Bucket=store.bucket).get("Uploads", []) == []


def test_a_failed_part_fails_finish_and_aborts(store: S3Store, tmp_path: Path) -> None:
    path = tmp_path / "failing"
    path.touch()
    upload = store.start_upload("backups/failing", path, content_type="application/gzip",
                                metadata={})
    # The file shrinks under the upload: the part read back is short, and S3 refuses a
    # too-small part in the middle of an upload.
    with path.open("wb") as handle:
        handle.write(b"x" * 100)
    upload.advance(2 * PART)
    with pytest.raises(S3Error):
        store.finish_upload(upload, 2 * PART + 5)
    assert store.head("backups/failing") is None
    assert store.client.list_multipart_uploads(Bucket=store.bucket).get("Uploads", []) == []
