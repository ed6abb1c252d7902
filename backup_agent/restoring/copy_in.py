"""`COPY … FROM stdin` through the extended protocol.

psycopg's own `cursor.copy()` starts a COPY with the simple protocol, in which the server
runs every statement of the string it is sent: `SELECT f(); COPY t FROM stdin` would run
`f()` before failing. Here the COPY statement goes through Parse/Bind/Execute like every
other statement of a restore (the server refuses a string with two statements), and the
data follows through libpq's copy calls, with psycopg's own generators and its bounded
buffering (pieces of at most 128 KiB, a flush every MiB, as its `LibpqWriter` does).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psycopg

PIECE_BYTES = 128 * 1024  # larger pieces make libpq loop or crawl (psycopg #255)
FLUSH_BYTES = 1024 * 1024  # libpq's output buffer would otherwise grow without bound


class CopyIn:
    """One COPY FROM stdin in progress on `connection` (autocommit, no pipeline)."""

    def __init__(self, connection: psycopg.Connection[Any], statement: bytes) -> None:
        from psycopg import errors, pq
        from psycopg.generators import execute

        self._connection = connection
        self._unflushed = 0
        pgconn = connection.pgconn
        pgconn.send_query_params(statement, None)
        results = connection.wait(execute(pgconn))
        if len(results) != 1 or results[0].status != pq.ExecStatus.COPY_IN:
            failed = next((result for result in results
                           if result.status == pq.ExecStatus.FATAL_ERROR), None)
            if failed is not None:
                raise errors.error_from_result(failed, encoding=connection.info.encoding)
            raise errors.ProgrammingError("the statement did not start a COPY FROM stdin")

    def write(self, data: bytes) -> None:
        from psycopg.generators import copy_to

        view = memoryview(data)
        for start in range(0, len(view), PIECE_BYTES):
            piece = view[start:start + PIECE_BYTES]
            self._unflushed += len(piece)
            flush = self._unflushed >= FLUSH_BYTES
            if flush:
                self._unflushed = 0
            self._connection.wait(copy_to(self._connection.pgconn, piece, flush=flush))

    def finish(self, error: str | None = None) -> None:
        """End the COPY (or abandon it with `error`); raise the server's error if any."""
        from psycopg.generators import copy_end

        self._connection.wait(copy_end(self._connection.pgconn,
                                       error.encode() if error is not None else None))
