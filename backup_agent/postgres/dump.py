"""Dump a database as plain SQL into a writer the caller composed (gzip, age, hash, file).

pg_dump runs in a snapshot exported by a psql session, and that session counts every
table's rows in the same snapshot while the dump streams, so the manifest's counts describe
exactly the data in the dump even while the application keeps writing. The same session
reads, in that snapshot, what the database needs from its cluster (its roles and its own
properties) and its catalog fingerprint: the globals file.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import BinaryIO

from backup_agent import execute
from backup_agent.model.backup import DUMP_COMPLETE_MARKER, TAIL_BYTES
from backup_agent.model.errors import DatabaseError
from backup_agent.model.settings import PostgresSettings
from backup_agent.postgres.clients import check_client_not_older
from backup_agent.postgres.commands import make_dump_command, make_environment
from backup_agent.postgres.diagnosis import LockTimeoutError, describe_server, diagnose
from backup_agent.postgres.locks import name_lock_holders
from backup_agent.postgres.session import ServerFacts, SqlSession

log = logging.getLogger(__name__)
READ_CHUNK_BYTES = 1024 * 1024


@dataclass(frozen=True)
class DumpResult:
    server: ServerFacts
    pg_dump_version: str
    row_counts: dict[str, int]
    uncompressed_bytes: int
    globals_document: bytes  # the roles and database properties (model/cluster_globals.py)


def dump_database(settings: PostgresSettings, target: BinaryIO, *,
                  on_read: Callable[[int], None] | None = None) -> DumpResult:
    """Stream a consistent plain dump of the database into `target`.

    Raise DatabaseError (or a more specific error) unless pg_dump exited 0 and its output
    ends with the closing "dump complete" line. A lock wait that ran out (LOCK_WAIT_TIMEOUT)
    names the session holding the lock.
    """
    try:
        return _dump(settings, target, on_read)
    except LockTimeoutError as error:
        raise name_lock_holders(settings, error) from None


def _dump(settings: PostgresSettings, target: BinaryIO,
          on_read: Callable[[int], None] | None) -> DumpResult:
    with SqlSession(settings, settings.database) as session:
        server = session.server_facts()
        pg_dump_version = check_client_not_older(settings, "pg_dump", server)
        snapshot = session.export_snapshot()
        globals_document = session.cluster_globals(server.major)
        log.info("dumping database %s (PostgreSQL %s) at %s with pg_dump %s", settings.database,
                 server.version, describe_server(settings), pg_dump_version)
        with ThreadPoolExecutor(max_workers=1) as pool, execute.running(
                make_dump_command(settings, snapshot=snapshot),
                environment=make_environment(settings)) as pg_dump:
            try:
                row_counts = pool.submit(session.row_counts)
                size, tail = _copy(pg_dump, target, on_read)
            except BaseException:
                # Stop the counting query now rather than let it run on (pg_dump is
                # killed by `running`).
                session.kill()
                raise
            returncode = pg_dump.wait()
            if returncode < 0:
                session.kill()
                raise DatabaseError(f"pg_dump was killed by {signal.Signals(-returncode).name} "
                                    "mid-dump (out of memory? an operator?): no backup was "
                                    "written; run again")
            if returncode != 0:
                session.kill()
                raise diagnose(pg_dump.stderr_text(), settings, program="pg_dump")
            counts = row_counts.result()
    if DUMP_COMPLETE_MARKER not in tail:
        raise DatabaseError("pg_dump exited 0 but its output lacks the closing 'dump complete' "
                            "line, so the dump is incomplete: check the server log and run "
                            "again")
    return DumpResult(server=server, pg_dump_version=pg_dump_version, row_counts=counts,
                      uncompressed_bytes=size, globals_document=globals_document)


def _copy(pg_dump: execute.Child, target: BinaryIO,
          on_read: Callable[[int], None] | None) -> tuple[int, bytes]:
    """Copy pg_dump's output into `target`; return its size and its last TAIL_BYTES."""
    assert pg_dump.process.stdout is not None
    size = 0
    tail = b""
    while chunk := pg_dump.process.stdout.read(READ_CHUNK_BYTES):
        target.write(chunk)
        size += len(chunk)
        tail = (tail + chunk[-TAIL_BYTES:])[-TAIL_BYTES:]
        if on_read:
            on_read(size)
    return size, tail
