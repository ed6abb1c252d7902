"""Dump a database as plain SQL, compressed and hashed in one pass, into an open file.

pg_dump runs in a snapshot exported by a psql session, and that session counts every
table's rows in the same snapshot while the dump streams, so the manifest's counts describe
exactly the data in the dump even while the application keeps writing.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import BinaryIO

from backup_agent import execute
from backup_agent.compression import StreamResult, compress_stream
from backup_agent.errors import DatabaseError, ToolMissingError
from backup_agent.postgres.commands import (
    DUMP_COMPLETE_MARKER,
    make_dump_command,
    make_environment,
    make_version_command,
    parse_client_version,
)
from backup_agent.postgres.diagnosis import describe_server, diagnose
from backup_agent.postgres.session import ServerFacts, SqlSession
from backup_agent.settings import PostgresSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DumpResult:
    stream: StreamResult
    server: ServerFacts
    pg_dump_version: str
    row_counts: dict[str, int]


def client_version(settings: PostgresSettings, program: str) -> tuple[str, int]:
    """Return (version text, major) of a client program; raise if it cannot run."""
    completed = execute.run(make_version_command(settings, program),
                            environment=make_environment(settings))
    if completed.returncode != 0:
        raise diagnose(completed.stderr or completed.stdout, settings, program=program)
    try:
        major, minor = parse_client_version(completed.stdout)
    except ValueError:
        raise ToolMissingError(f"cannot tell the version of {program} from "
                               f"{completed.stdout.strip()!r}: set PG_BINDIR to a standard "
                               "PostgreSQL client") from None
    return f"{major}.{minor}", major


def check_client_not_older(settings: PostgresSettings, program: str,
                           server: ServerFacts) -> str:
    """Return the client's version; raise ToolMissingError if it is older than the server."""
    version, major = client_version(settings, program)
    if major < server.major:
        raise ToolMissingError(
            f"{program} {version} is older than the PostgreSQL {server.version} server at "
            f"{describe_server(settings)}: set PG_BINDIR to a {server.major}.x client, or set "
            "POSTGRES_CONTAINER to use the one inside the database container")
    return version


def dump_database(settings: PostgresSettings, target: BinaryIO, *,
                  on_written: Callable[[int], None] | None = None,
                  on_read: Callable[[int], None] | None = None,
                  encrypt_to: Sequence[str] = ()) -> DumpResult:
    """Stream a consistent plain dump of the database into `target`.

    Raise DatabaseError (or a more specific error) unless pg_dump exited 0 and its output
    ends with the closing "dump complete" line.
    """
    with SqlSession(settings, settings.database) as session:
        server = session.server_facts()
        pg_dump_version = check_client_not_older(settings, "pg_dump", server)
        snapshot = session.export_snapshot()
        log.info("dumping database %s (PostgreSQL %s) at %s with pg_dump %s", settings.database,
                 server.version, describe_server(settings), pg_dump_version)
        with tempfile.TemporaryFile() as stderr, ThreadPoolExecutor(max_workers=1) as pool:
            process = execute.spawn(make_dump_command(settings, snapshot=snapshot),
                                    environment=make_environment(settings),
                                    stdout=subprocess.PIPE, stderr=stderr)
            try:
                row_counts = pool.submit(session.row_counts)
                stream = compress_stream(process.stdout, target,  # type: ignore[arg-type]
                                         on_written=on_written, on_read=on_read,
                                         encrypt_to=encrypt_to)
            except BaseException:
                # Stop pg_dump and the counting query now rather than let them run on.
                process.kill()
                process.wait()
                session.kill()
                raise
            returncode = process.wait()
            if returncode < 0:
                session.kill()
                raise DatabaseError(f"pg_dump was killed by {signal.Signals(-returncode).name} "
                                    "mid-dump (out of memory? an operator?): no backup was "
                                    "written; run again")
            if returncode != 0:
                session.kill()
                stderr.seek(0)
                raise diagnose(stderr.read().decode("utf-8", "replace"), settings,
                               program="pg_dump")
            counts = row_counts.result()
    if DUMP_COMPLETE_MARKER not in stream.tail:
        raise DatabaseError("pg_dump exited 0 but its output lacks the closing 'dump complete' "
                            "line, so the dump is incomplete: check the server log and run "
                            "again")
    return DumpResult(stream=stream, server=server, pg_dump_version=pg_dump_version,
                      row_counts=counts)

