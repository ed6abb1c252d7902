"""Everything the agent does with S3, behind a few functions.

boto3 finds the endpoint (AWS_ENDPOINT_URL_S3), region and credential chain itself, exactly
as on AWS; values that only an --env-file supplied are handed over explicitly. Errors become
S3Error with a fix; a missing object is a None result, not an exception.
"""

from __future__ import annotations

import io
import os
from collections import deque
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import botocore.exceptions
from boto3.exceptions import S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

from backup_agent.errors import S3Error
from backup_agent.settings import DEFAULT_PART_SIZE_MIB, S3Settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

MEBIBYTE = 1024 * 1024
UPLOAD_THREADS = 4


def transfer_config(part_size_mib: int) -> TransferConfig:
    """Return upload settings: parts of S3_PART_SIZE_MB (16 MiB) on 4 threads.

    S3 allows at most 10,000 parts of at least 5 MiB; s3transfer raises the part size
    itself for files too large for that. 16 MiB x 4 threads keeps memory near 64 MiB.
    """
    part = part_size_mib * MEBIBYTE
    return TransferConfig(multipart_threshold=part, multipart_chunksize=part,
                          max_concurrency=UPLOAD_THREADS)
DEFAULT_MAX_ATTEMPTS = 6


def client_config() -> Config:
    """Return the client settings: "standard" retries (throttling, 500/503) with backoff.

    AWS_MAX_ATTEMPTS, when set, is left for botocore to read (a value in Config would win).
    """
    retries: dict[str, Any] = {"mode": "standard"}
    if not os.environ.get("AWS_MAX_ATTEMPTS"):
        retries["max_attempts"] = DEFAULT_MAX_ATTEMPTS
    # No per-request CRC32: every upload is confirmed end to end by its ETag (MD5 of the
    # parts) and every download by the backup's SHA-256, so it would only cost CPU.
    return Config(retries=retries, connect_timeout=10, read_timeout=120,  # type: ignore[arg-type]
                  request_checksum_calculation="when_required",
                  response_checksum_validation="when_required")
SERVER_SIDE_ENCRYPTION = "AES256"
NOT_FOUND_CODES = {"404", "NoSuchKey", "NotFound"}


@dataclass(frozen=True)
class S3Object:
    key: str
    size: int
    last_modified: Any  # datetime, as boto3 returns it


def make_session(settings: S3Settings) -> boto3.session.Session:
    """Return a session that uses the standard chain plus what --env-file supplied."""
    aws = settings.aws_from_env_file
    return boto3.session.Session(
        aws_access_key_id=aws.get("AWS_ACCESS_KEY_ID"),
        aws_secret_access_key=aws.get("AWS_SECRET_ACCESS_KEY"),
        aws_session_token=aws.get("AWS_SESSION_TOKEN"),
        region_name=aws.get("AWS_REGION") or aws.get("AWS_DEFAULT_REGION"),
        profile_name=aws.get("AWS_PROFILE"),
    )


def has_credentials(session: boto3.session.Session) -> bool:
    return session.get_credentials() is not None


def make_client(settings: S3Settings, session: boto3.session.Session) -> S3Client:
    aws = settings.aws_from_env_file
    endpoint = aws.get("AWS_ENDPOINT_URL_S3") or aws.get("AWS_ENDPOINT_URL")
    return session.client("s3", endpoint_url=endpoint, config=client_config())


def translate_error(error: Exception, *, bucket: str, action: str,
                    endpoint: str | None = None) -> S3Error:
    """Return the one-line S3Error that explains a boto3 failure."""
    if isinstance(error, S3UploadFailedError) and isinstance(error.__context__, Exception):
        error = error.__context__
    where = endpoint or "S3"
    if isinstance(error, botocore.exceptions.NoCredentialsError):
        return S3Error("no AWS credentials found: set AWS_ACCESS_KEY_ID and "
                       "AWS_SECRET_ACCESS_KEY (env or --env-file)")
    if isinstance(error, (botocore.exceptions.EndpointConnectionError,
                          botocore.exceptions.ConnectTimeoutError,
                          botocore.exceptions.ConnectionClosedError,
                          botocore.exceptions.ReadTimeoutError)):
        return S3Error(f"cannot reach {where} to {action}: check the network and "
                       "AWS_ENDPOINT_URL_S3/AWS_REGION")
    if isinstance(error, botocore.exceptions.ClientError):
        code = str(error.response.get("Error", {}).get("Code", ""))
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code == "NoSuchBucket":
            return S3Error(f"bucket {bucket} does not exist: check S3_BUCKET "
                           "(or create it with `pulumi up`)")
        if code == "InvalidAccessKeyId":
            return S3Error("AWS does not know this access key id: check AWS_ACCESS_KEY_ID "
                           "(PROD_AWS_ACCESS_KEY_ID in GitHub)")
        if code == "SignatureDoesNotMatch":
            return S3Error("AWS rejected the request signature: check AWS_SECRET_ACCESS_KEY "
                           "(PROD_AWS_SECRET_ACCESS_KEY in GitHub)")
        if code in ("RequestTimeTooSkewed", "RequestExpired"):
            return S3Error("this machine's clock is too far from AWS's: fix the time "
                           "(timedatectl set-ntp true) and run again")
        if code in ("AccessDenied", "403", "Forbidden", "AllAccessDisabled") or status == 403:
            return S3Error(f"access denied to {action} in s3://{bucket} (403): check the "
                           "access key and that its IAM policy allows it")
        message = error.response.get("Error", {}).get("Message", "")
        return S3Error(f"S3 refused to {action} in s3://{bucket}: {code} {message}".strip())
    if isinstance(error, botocore.exceptions.BotoCoreError):
        return S3Error(f"S3 failed to {action} in s3://{bucket}: {error}")
    raise error


def upload_file(client: S3Client, *, bucket: str, key: str, path: Path,
                metadata: Mapping[str, str], content_type: str,
                part_size_mib: int = DEFAULT_PART_SIZE_MIB) -> None:
    """Upload `path` (multipart when large) with SSE-S3 and metadata.

    s3transfer aborts a failed multipart upload, so no partial object ever becomes visible.
    """
    client.upload_file(str(path), bucket, key, Config=transfer_config(part_size_mib), ExtraArgs={
        "ServerSideEncryption": SERVER_SIDE_ENCRYPTION, "Metadata": dict(metadata),
        "ContentType": content_type})


def head(client: S3Client, *, bucket: str, key: str) -> dict[str, Any] | None:
    """Return the object's headers, or None if it does not exist."""
    try:
        return dict(client.head_object(Bucket=bucket, Key=key))
    except botocore.exceptions.ClientError as error:
        if str(error.response.get("Error", {}).get("Code")) in NOT_FOUND_CODES:
            return None
        raise


class ObjectStream(io.RawIOBase):
    """A read-only stream of an S3 object's body; transport errors become S3Error."""

    def __init__(self, client: S3Client, *, bucket: str, key: str) -> None:
        super().__init__()
        self._bucket = bucket
        self._key = key
        try:
            self._body = client.get_object(Bucket=bucket, Key=key)["Body"]
        except Exception as error:  # noqa: BLE001 - translate_error re-raises what it does not know
            raise translate_error(error, bucket=bucket, action="download the backup") from None

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        try:
            return bytes(self._body.read(None if size < 0 else size))
        except (botocore.exceptions.BotoCoreError, OSError) as error:
            raise S3Error(f"reading s3://{self._bucket}/{self._key} failed midway ({error}): "
                          "check the network and run again") from None

    def close(self) -> None:
        self._body.close()
        super().close()


DOWNLOAD_CHUNK_BYTES = 4 * MEBIBYTE
DOWNLOAD_THREADS = 4
DOWNLOAD_READ_AHEAD = 4  # chunks in flight or waiting: 16 MiB (each GET briefly holds ~2x)


class ParallelObjectStream(io.RawIOBase):
    """Read an S3 object front to back while fetching the next ranges on several threads.

    One GET stream is limited by a single connection; ranged GETs in parallel fill the link,
    and a bounded read-ahead keeps memory fixed whatever the object's size.
    """

    def __init__(self, client: S3Client, *, bucket: str, key: str, size: int,
                 chunk_bytes: int = DOWNLOAD_CHUNK_BYTES) -> None:
        super().__init__()
        self._client = client
        self._bucket = bucket
        self._key = key
        self._size = size
        self._chunk_bytes = chunk_bytes
        self._pool = ThreadPoolExecutor(max_workers=DOWNLOAD_THREADS,
                                        thread_name_prefix="s3-range")
        self._pending: deque[Future[bytes]] = deque()
        self._next_offset = 0
        self._buffer = memoryview(b"")
        for _ in range(DOWNLOAD_READ_AHEAD):
            self._schedule()

    def _schedule(self) -> None:
        if self._next_offset >= self._size:
            return
        end = min(self._next_offset + self._chunk_bytes, self._size) - 1
        self._pending.append(self._pool.submit(self._fetch, self._next_offset, end))
        self._next_offset = end + 1

    def _fetch(self, start: int, end: int) -> bytes:
        try:
            answer = self._client.get_object(Bucket=self._bucket, Key=self._key,
                                             Range=f"bytes={start}-{end}")
            with answer["Body"] as body:
                data = bytes(body.read())
        except Exception as error:  # noqa: BLE001 - translate_error re-raises what it does not know
            raise translate_error(error, bucket=self._bucket,
                                  action="download the backup") from None
        if len(data) != end - start + 1:
            raise S3Error(f"s3://{self._bucket}/{self._key} changed while it was being read "
                          "(a short range came back): run again")
        return data

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if not self._buffer:
            if not self._pending:
                return b""
            self._buffer = memoryview(self._pending.popleft().result())
            self._schedule()
        take = len(self._buffer) if size < 0 else min(size, len(self._buffer))
        piece, self._buffer = self._buffer[:take], self._buffer[take:]
        return bytes(piece)

    def close(self) -> None:
        for future in self._pending:
            future.cancel()
        self._pool.shutdown(wait=True, cancel_futures=True)
        super().close()


def open_object(client: S3Client, *, bucket: str, key: str,
                size: int | None = None) -> ObjectStream | ParallelObjectStream:
    """Return a stream of the object; parallel ranged reads when its size is known."""
    if size is None or size <= DOWNLOAD_CHUNK_BYTES:
        return ObjectStream(client, bucket=bucket, key=key)
    return ParallelObjectStream(client, bucket=bucket, key=key, size=size)


def list_objects(client: S3Client, *, bucket: str, prefix: str) -> Iterator[S3Object]:
    """Yield every object under `prefix`, page by page (1,000 keys a page)."""
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            yield S3Object(key=item["Key"], size=item["Size"],
                           last_modified=item["LastModified"])
