"""The S3 store, the one entry to S3 (barman's cloud_providers/aws_s3.py); with s3_upload,
s3_download and s3_errors, the only modules that know boto3.

boto3 finds the endpoint (AWS_ENDPOINT_URL_S3), region and credential chain itself, exactly
as on AWS; values that only an --env-file supplied are handed over explicitly. Every call
is translated here: callers see results, None for a missing object, or one S3Error that
names the fix.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import boto3
import botocore.exceptions
from botocore.config import Config

from backup_agent.model.backup import S3Location
from backup_agent.model.errors import (
    BackupAgentError,
    ConfigurationError,
    ObjectExistsError,
    S3Error,
)
from backup_agent.model.naming import SIDECAR_LIMIT_BYTES
from backup_agent.model.settings import NO_BUCKET, S3Settings
from backup_agent.model.stopping import raise_if_stopped
from backup_agent.model.variables import named
from backup_agent.storage.s3_bucket import (
    ENCRYPTED_AT_REST,
    BucketConfiguration,
    bucket_configuration,
)
from backup_agent.storage.s3_download import MEBIBYTE, open_object
from backup_agent.storage.s3_errors import NOT_FOUND_CODES, error_code, translate_error
from backup_agent.storage.s3_upload import (
    CREATE_ONLY,
    KeyTakenError,
    StreamingUpload,
    UploadedObject,
    content_md5,
    create_only,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from backup_agent.model.backup import ReadableStream

log = logging.getLogger(__name__)

SERVER_SIDE_ENCRYPTION: Literal["AES256"] = "AES256"
DEFAULT_MAX_ATTEMPTS = int(named("AWS_MAX_ATTEMPTS").default)  # `config` shows the same


def client_config() -> Config:
    """Return the client settings: "standard" retries (throttling, 500/503) with backoff.

    AWS_MAX_ATTEMPTS, when set, is left for botocore to read (a value in Config would win).
    """
    retries: dict[str, Any] = {"mode": "standard"}
    if not os.environ.get("AWS_MAX_ATTEMPTS"):
        retries["max_attempts"] = DEFAULT_MAX_ATTEMPTS
    # No CRC32 on top: every upload body carries its Content-MD5 (S3 checks it, and Object
    # Lock requires it), every upload is confirmed end to end by its ETag, and every
    # download by the backup's SHA-256.
    return Config(retries=retries, connect_timeout=10, read_timeout=120,  # type: ignore[arg-type]
                  request_checksum_calculation="when_required",
                  response_checksum_validation="when_required")


@dataclass(frozen=True)
class S3Object:
    key: str
    size: int
    last_modified: datetime


class S3Store:
    """One bucket, as the configured credentials see it."""

    def __init__(self, settings: S3Settings, *, bucket: str | None = None) -> None:
        chosen = bucket or settings.bucket
        if not chosen:
            raise ConfigurationError(f"{NO_BUCKET}: set it (env or --env-file) to use backups "
                                     "in S3, or use the local ones")
        self.bucket = chosen
        self.prefix = settings.prefix
        self._part_size_mib = settings.part_size_mib
        aws = settings.aws_from_env_file
        self._endpoint = aws.get("AWS_ENDPOINT_URL_S3") or aws.get("AWS_ENDPOINT_URL")
        self._session = boto3.session.Session(
            aws_access_key_id=aws.get("AWS_ACCESS_KEY_ID"),
            aws_secret_access_key=aws.get("AWS_SECRET_ACCESS_KEY"),
            aws_session_token=aws.get("AWS_SESSION_TOKEN"),
            region_name=aws.get("AWS_REGION") or aws.get("AWS_DEFAULT_REGION"),
            profile_name=aws.get("AWS_PROFILE"))
        self._client: S3Client | None = None

    def has_credentials(self) -> bool:
        with self._translated("find AWS credentials"):
            return self._session.get_credentials() is not None

    @property
    def client(self) -> S3Client:
        if self._client is None:
            with self._translated("connect to S3"):
                self._client = self._session.client("s3", endpoint_url=self._endpoint,
                                                    config=client_config())
            # botocore swallows a signal's exception raised while it sends a request, and
            # retries: before it retries anything, a stop a signal asked for is raised.
            self._client.meta.events.register("needs-retry.s3", _stop_before_retrying)
        return self._client

    def url(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    @contextmanager
    def _translated(self, action: str) -> Iterator[None]:
        try:
            yield
        except BackupAgentError:
            raise
        except Exception as error:  # noqa: BLE001 - translate_error re-raises the unknown
            raise_if_stopped()  # the signal's own exception, which botocore wrapped
            # The configured endpoint, not the client's: making a client can be what failed.
            raise translate_error(error, bucket=self.bucket, action=action,
                                  endpoint=self._endpoint) from None
        raise_if_stopped()  # ... or swallowed, retrying the request: stop now all the same

    # Reading

    def keys_after(self, prefix: str, after: str, *, limit: int = 10) -> list[str]:
        """Return up to `limit` keys under `prefix` that sort after `prefix + after` (one
        request: whether anything follows a missing WAL segment)."""
        with self._translated("list the WAL archive"):
            page = self.client.list_objects_v2(Bucket=self.bucket, Prefix=prefix,
                                               StartAfter=prefix + after, MaxKeys=limit)
        return [item["Key"] for item in page.get("Contents", [])]

    def list(self, prefix: str | None = None) -> list[S3Object]:
        """Return every object under `prefix` (default: S3_PREFIX), 1,000 keys a page."""
        found = []
        with self._translated("list backups"):
            paginator = self.client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket,
                                           Prefix=self.prefix if prefix is None else prefix):
                found += [S3Object(key=item["Key"], size=item["Size"],
                                   last_modified=item["LastModified"])
                          for item in page.get("Contents", [])]
        return found

    def probe_listing(self) -> None:
        """List one key: proves the bucket is reachable with these credentials."""
        with self._translated("list backups"):
            self.client.list_objects_v2(Bucket=self.bucket, Prefix=self.prefix, MaxKeys=1)

    def head(self, key: str) -> dict[str, Any] | None:
        """Return the object's headers, or None if it does not exist."""
        with self._translated(f"look up {key.removeprefix(self.prefix)}"):
            try:
                return dict(self.client.head_object(Bucket=self.bucket, Key=key))
            except botocore.exceptions.ClientError as error:
                if error_code(error) in NOT_FOUND_CODES:
                    return None
                raise

    def read_small(self, key: str, *, action: str = "read the backup") -> bytes:
        """Return a small object's bytes (a sidecar), at most SIDECAR_LIMIT_BYTES."""
        with self._translated(action), \
                self.client.get_object(Bucket=self.bucket, Key=key)["Body"] as body:
            return bytes(body.read(SIDECAR_LIMIT_BYTES))

    def opener(self, key: str, size: int) -> Callable[[], ReadableStream]:
        """Return a function that opens the object as a stream (parallel ranged reads)."""
        return lambda: open_object(self.client, bucket=self.bucket, key=key, size=size)

    # Writing: create-only, every object (see s3_upload)

    def put_bytes(self, key: str, body: bytes, *, action: str) -> None:
        """Create `key` holding `body`; raise ObjectExistsError if anything is there."""
        digest = hashlib.md5(body, usedforsecurity=False).digest()
        with self._translated(action):
            try:
                with create_only(key, UploadedObject(size=len(body), etag=digest.hex())):
                    self.client.put_object(Bucket=self.bucket, Key=key, Body=body,
                                           ServerSideEncryption=SERVER_SIDE_ENCRYPTION,
                                           IfNoneMatch=CREATE_ONLY,
                                           ContentMD5=content_md5(digest))
            except KeyTakenError as taken:
                self._ours_already(taken)

    def put_file(self, key: str, path: Path, *, content_type: str,
                 metadata: Mapping[str, str]) -> S3Location:
        """Create `key` from a complete file (multipart when large) and confirm it."""
        upload = self.start_upload(key, path, content_type=content_type, metadata=metadata)
        size = path.stat().st_size
        upload.advance(size)
        return self.finish_upload(upload, size)

    def start_upload(self, key: str, path: Path, *, content_type: str,
                     metadata: Mapping[str, str],
                     on_uploaded: Callable[[int], None] | None = None) -> StreamingUpload:
        """Begin streaming a file that is still being written to `key` (see s3_upload)."""
        return StreamingUpload(
            self.client, path=path, bucket=self.bucket, key=key,
            part_size=self._part_size_mib * MEBIBYTE,
            extra_args={"ServerSideEncryption": SERVER_SIDE_ENCRYPTION,
                        "ContentType": content_type, "Metadata": dict(metadata)},
            on_uploaded=on_uploaded)

    def finish_upload(self, upload: StreamingUpload, size: int) -> S3Location:
        """Complete the upload, then confirm size, content (ETag) and encryption at rest."""
        with self._translated("upload the backup"):
            try:
                uploaded = upload.finish(size)
            except KeyTakenError as taken:
                uploaded = self._ours_already(taken)
        stored = self.head(upload.key)
        location = S3Location(bucket=self.bucket, key=upload.key)
        if stored is None or stored.get("ContentLength") != uploaded.size \
                or str(stored.get("ETag", "")).strip('"') != uploaded.etag:
            raise S3Error(f"{location.uri} does not match the local backup after upload "
                          "(size or content differ): the local copy is kept; run again")
        if stored.get("ServerSideEncryption") not in ENCRYPTED_AT_REST:
            raise S3Error(f"{location.uri} is not encrypted at rest: enable default "
                          "encryption on the bucket (pulumi up) and run again")
        return location

    def _ours_already(self, taken: KeyTakenError) -> UploadedObject:
        """S3 refused a create-only write. Return what we meant to store if that is exactly
        what is there (a retried request whose first answer was lost); raise otherwise."""
        stored = self.head(taken.key)
        if stored is not None and stored.get("ContentLength") == taken.attempted.size \
                and str(stored.get("ETag", "")).strip('"') == taken.attempted.etag:
            log.info("%s already holds exactly these bytes: an earlier attempt of the same "
                     "request stored it", self.url(taken.key))
            return taken.attempted
        if stored is None:
            raise S3Error(f"S3 reported a conflicting write to {self.url(taken.key)} and "
                          "nothing is there now: run again")
        raise ObjectExistsError(
            f"refusing to overwrite {self.url(taken.key)}: an object this run did not write is "
            "already there, and the agent only ever creates objects (If-None-Match), never "
            "replaces one; find out who wrote it (another server with the same S3_PREFIX, or "
            "someone holding the writer's key)")

    # The bucket's own configuration, for doctor

    def bucket_configuration(self) -> BucketConfiguration:
        """Return the bucket's encryption, public-access block, lifecycle, policy and
        versioning (see s3_bucket: a part S3 refuses to show fails only its own check)."""
        return bucket_configuration(self._configuration)

    def _configuration(self, method: str, missing_codes: set[str]) -> dict[str, Any] | None:
        """Return a bucket-configuration answer (get_bucket_encryption, ...), None if unset."""
        with self._translated(f"read the bucket's {method.removeprefix('get_')}"):
            try:
                return dict(getattr(self.client, method)(Bucket=self.bucket))
            except botocore.exceptions.ClientError as error:
                code = error_code(error)
                if code in missing_codes:
                    return None
                if code in ("AccessDenied", "403"):
                    raise S3Error(f"{method} was denied: the IAM policy lacks the read-only "
                                  "bucket-configuration actions (pulumi up adds them)") from None
                raise


def _stop_before_retrying(**_: object) -> None:
    raise_if_stopped()
