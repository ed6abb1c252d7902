"""Read an S3 object as a stream: one GET, or ranged GETs in parallel for large objects."""

from __future__ import annotations

import io
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

import botocore.exceptions

from backup_agent.model.errors import S3Error
from backup_agent.storage.s3_errors import translate_error

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

MEBIBYTE = 1024 * 1024


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
