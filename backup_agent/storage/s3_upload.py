"""Upload a backup to S3 while it is being written: no second pass over the file.

Parts are read back from the hidden temporary file (through a descriptor of its own, which
survives the file's rename) as soon as the compressed stream has passed them, and uploaded
on a few threads. Memory is bounded by the parts in flight, and a slow S3 never holds the
dump back: parts just queue up as offsets. The object becomes visible only when `finish`
completes the multipart upload, which the caller does after the dump was proven complete;
anything else ends in `abort`, which leaves no object and no parts.

Every write is create-only: the single PUT and the completion carry `If-None-Match: *`, so
S3 refuses (412) to put anything over an object that already exists, and the bucket policy
denies a write without it. Every body carries its Content-MD5 (computed anyway for the ETag
check): S3 verifies each request against it, and a bucket with Object Lock default retention
refuses uploads without it.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from backup_agent.model.errors import S3Error
from backup_agent.storage.s3_errors import EXISTS_CODES, error_code

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger(__name__)
UPLOAD_THREADS = 4
MAXIMUM_PARTS = 10_000  # S3's limit
CREATE_ONLY = "*"  # If-None-Match: * - only if no object exists at the key


@dataclass(frozen=True)
class UploadedObject:
    size: int
    etag: str  # what S3 must report: md5 of the body, or md5 of the part md5s plus "-N"


class KeyTakenError(Exception):
    """S3 refused a create-only write: an object already exists at the key.

    Carries what this upload would have stored, so that the store can tell a retried
    request of our own (the same bytes) from somebody else's object.
    """

    def __init__(self, key: str, attempted: UploadedObject) -> None:
        super().__init__(f"an object already exists at {key}")
        self.key = key
        self.attempted = attempted


@contextmanager
def create_only(key: str, attempted: UploadedObject) -> Iterator[UploadedObject]:
    """Around a create-only write: turn S3's refusal into KeyTakenError."""
    try:
        yield attempted
    except Exception as error:
        if error_code(error) in EXISTS_CODES:
            raise KeyTakenError(key, attempted) from None
        raise


def content_md5(digest: bytes) -> str:
    """Return the Content-MD5 header value for an MD5 digest (base64, RFC 1864)."""
    return base64.b64encode(digest).decode("ascii")


class StreamingUpload:
    """Multipart upload of a file that is still growing."""

    def __init__(self, client: S3Client, *, path: Path, bucket: str, key: str,
                 part_size: int, extra_args: Mapping[str, Any],
                 on_uploaded: Callable[[int], None] | None = None) -> None:
        self._client = client
        self._bucket = bucket
        self.key = key
        self._part_size = part_size
        self._extra_args = dict(extra_args)
        self._descriptor = os.open(path, os.O_RDONLY)
        self._pool = ThreadPoolExecutor(max_workers=UPLOAD_THREADS,
                                        thread_name_prefix="s3-part")
        self._lock = threading.Lock()
        self._upload_id: str | None = None
        self._parts: dict[int, Future[tuple[str, bytes]]] = {}
        self._next_part = 1
        self.error: BaseException | None = None
        self._on_uploaded = on_uploaded
        self._uploaded = 0

    def advance(self, written: int) -> None:
        """Queue every whole part now on disk (`written` bytes); called as the file grows."""
        with self._lock:
            while self.error is None and written >= self._next_part * self._part_size \
                    and self._next_part < MAXIMUM_PARTS:
                if self._upload_id is None:
                    self._upload_id = self._create()
                    if self._upload_id is None:
                        return
                number = self._next_part
                self._parts[number] = self._pool.submit(
                    self._upload_part, number, (number - 1) * self._part_size, self._part_size)
                self._next_part += 1

    def _create(self) -> str | None:
        try:
            answer = self._client.create_multipart_upload(
                Bucket=self._bucket, Key=self.key, **self._extra_args)
        except Exception as error:  # noqa: BLE001 - kept, raised by finish() after the dump
            self.error = error
            return None
        return str(answer["UploadId"])

    def _upload_part(self, number: int, offset: int, length: int) -> tuple[str, bytes]:
        if self.error is not None:
            raise S3Error("an earlier part failed")
        data = os.pread(self._descriptor, length, offset)
        digest = hashlib.md5(data, usedforsecurity=False).digest()
        try:
            answer = self._client.upload_part(Bucket=self._bucket, Key=self.key,
                                              UploadId=self._upload_id or "", PartNumber=number,
                                              Body=data, ContentMD5=content_md5(digest))
        except Exception as error:
            self.error = self.error or error
            raise
        self._count_uploaded(len(data))
        return str(answer["ETag"]), digest

    def _count_uploaded(self, size: int) -> None:
        if self._on_uploaded is not None:
            with self._lock:
                self._uploaded += size
                uploaded = self._uploaded
            self._on_uploaded(uploaded)

    def finish(self, total: int) -> UploadedObject:
        """Upload the rest and complete; raise the first failure (after aborting)."""
        try:
            if self._upload_id is None and self.error is None:
                return self._put_whole(total)
            with self._lock:
                remainder_offset = (self._next_part - 1) * self._part_size
                if total > remainder_offset or not self._parts:
                    self._parts[self._next_part] = self._pool.submit(
                        self._upload_part, self._next_part, remainder_offset,
                        total - remainder_offset)
            results = {number: future.result() for number, future in self._parts.items()}
            if self.error is not None:
                raise self.error
            digests = b"".join(digest for _, (_, digest) in sorted(results.items()))
            etag = f"{hashlib.md5(digests, usedforsecurity=False).hexdigest()}-{len(results)}"
            with create_only(self.key, UploadedObject(size=total, etag=etag)) as uploaded:
                self._client.complete_multipart_upload(
                    Bucket=self._bucket, Key=self.key, UploadId=self._upload_id or "",
                    IfNoneMatch=CREATE_ONLY,
                    MultipartUpload={"Parts": [
                        {"PartNumber": number, "ETag": part_etag}
                        for number, (part_etag, _) in sorted(results.items())]})
            return uploaded
        except BaseException:
            self.abort()
            raise
        finally:
            self._close()

    def _put_whole(self, total: int) -> UploadedObject:
        """A backup smaller than one part goes up in one PUT."""
        data = os.pread(self._descriptor, total, 0)
        digest = hashlib.md5(data, usedforsecurity=False).digest()
        with create_only(self.key, UploadedObject(size=total, etag=digest.hex())) as uploaded:
            self._client.put_object(Bucket=self._bucket, Key=self.key, Body=data,
                                    IfNoneMatch=CREATE_ONLY, ContentMD5=content_md5(digest),
                                    **self._extra_args)
        self._count_uploaded(total)
        return uploaded

    def abort(self) -> None:
        """Stop uploading and abort the multipart upload, so that nothing stays behind."""
        self.error = self.error or S3Error("upload abandoned")
        for future in self._parts.values():
            future.cancel()
        self._pool.shutdown(wait=True, cancel_futures=True)
        if self._upload_id is not None:
            try:
                self._client.abort_multipart_upload(Bucket=self._bucket, Key=self.key,
                                                    UploadId=self._upload_id)
                log.info("aborted the multipart upload of s3://%s/%s", self._bucket, self.key)
            except Exception as error:  # noqa: BLE001 - the lifecycle rule aborts it in 7 days
                log.warning("could not abort the multipart upload of s3://%s/%s (%s): the "
                            "bucket's lifecycle rule removes it within 7 days", self._bucket,
                            self.key, error)
            self._upload_id = None
        self._close()

    def _close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        if self._descriptor >= 0:
            os.close(self._descriptor)
            self._descriptor = -1
