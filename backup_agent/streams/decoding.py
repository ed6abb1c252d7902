"""Decompress on another core: a reader thread hashes, decrypts and gunzips ahead of the
caller, who checks statements or writes to psql meanwhile.

File and socket reads, hashlib and ISA-L's decompression all release the GIL, so on two
cores the proving pass lasts about as long as decompressing alone, not decompressing plus
the statement check. A few decoded chunks wait in the queue, which bounds memory.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

from backup_agent.streams.gzip import CorruptStreamError, GzipDecoder
from backup_agent.streams.hashing import READ_CHUNK_BYTES, HashingReader

if TYPE_CHECKING:
    from backup_agent.streams.age import Readable  # pyrage only when decrypting

QUEUE_CHUNKS = 4  # decoded pieces of at most 1 MiB (gzip.PIECE_BYTES)
STOP_WAIT_SECONDS = 5.0  # after that, an early stop leaves a reader blocked in S3 behind
PUT_WAIT_SECONDS = 0.1  # how often a blocked reader looks whether the caller stopped

_END = None


class BackgroundDecoder:
    """Decode `compressed` (whose stored bytes `hashing` counts) in a thread of its own.

    `chunks()` yields each decoded piece with the count of stored bytes read so far; at the
    end, `read_any`, `corrupt` and `in_member` say how the gzip stream ended. An error the
    reader met (S3, disk) is raised in the caller's thread. Always `close()`.
    """

    def __init__(self, compressed: Readable, hashing: HashingReader) -> None:
        self._compressed = compressed
        self._hashing = hashing
        self._queue: queue.Queue[tuple[bytes, int] | None] = queue.Queue(QUEUE_CHUNKS)
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self.read_any = False
        self.corrupt = False  # not gzip, or a damaged member: decoding stopped there
        self.in_member = False  # the stream ended inside a gzip member (truncated)
        self._thread = threading.Thread(target=self._run, name="gunzip", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        decoder = GzipDecoder()
        try:
            while not self._stop.is_set():
                chunk = self._compressed.read(READ_CHUNK_BYTES)
                if not chunk:
                    break
                self.read_any = True
                try:
                    for data in decoder.pieces(chunk):
                        if not self._put((data, self._hashing.size)):
                            return  # the caller stopped: decode no further
                except CorruptStreamError:
                    self.corrupt = True
                    break
            self.in_member = decoder.in_member
        except BaseException as error:  # noqa: BLE001 - raised again in the caller's thread
            self._error = error
        finally:
            self._put(_END)

    def _put(self, item: tuple[bytes, int] | None) -> bool:
        """Hand `item` over; False once the caller has stopped taking them."""
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=PUT_WAIT_SECONDS)
                return True
            except queue.Full:
                continue
        return False

    def chunks(self) -> Iterator[tuple[bytes, int]]:
        while (item := self._queue.get()) is not _END:
            yield item
        self._thread.join()
        if self._error is not None:
            raise self._error

    def close(self) -> None:
        """Stop reading (when the caller gave up early) and wait for the thread, a while:
        a read blocked in S3 ends with botocore's own timeout, and the thread is a daemon."""
        self._stop.set()
        self._thread.join(STOP_WAIT_SECONDS)
