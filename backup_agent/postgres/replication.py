"""The server side of the WAL archive: pg_receivewal's command, and what the stream asks.

The commands are data (tested by equality); `WalServer` is one psql session the stream
keeps open to read the WAL position, force a segment switch and watch its slot. The
replication connection itself (IDENTIFY_SYSTEM) goes through psql with
`replication=database`, the same path, pg_hba line and REPLICATION right pg_receivewal needs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from backup_agent import execute
from backup_agent.model.errors import ConfigurationError, DatabaseError
from backup_agent.model.settings import PostgresSettings
from backup_agent.postgres.admin import CONNECTION_LOST, quote_literal
from backup_agent.postgres.commands import client_program, make_environment
from backup_agent.postgres.diagnosis import describe_server, diagnose, last_meaningful_line
from backup_agent.postgres.session import SqlSession

# pg_receivewal starts from its slot's restart_lsn only from 15 on (READ_REPLICATION_SLOT);
# an older one would start at the server's current position, leaving a hole.
MINIMUM_SERVER_MAJOR = 15
# How long the stream's session waits for POSTGRES_DB to exist again (a restore's swap).
DATABASE_GONE_SECONDS = 30
CLOSE_SECONDS = 5


def _connection(settings: PostgresSettings) -> list[str]:
    """Host, port and user for a replication client (no database: a physical stream)."""
    arguments = ["--no-password"]
    if settings.host:
        arguments += ["--host", settings.host]
    if settings.port:
        arguments += ["--port", str(settings.port)]
    return [*arguments, "--username", settings.user]


def local_clients_only(settings: PostgresSettings) -> None:
    """The receiver writes into the local spool: it cannot run inside a container."""
    if settings.container:
        raise ConfigurationError("the WAL stream runs pg_receivewal on this machine, not in "
                                 "POSTGRES_CONTAINER: unset it, publish the database port and "
                                 "set POSTGRES_HOST/POSTGRES_PORT and PG_BINDIR")


def make_receivewal_command(settings: PostgresSettings, directory: Path, slot: str) -> list[str]:
    """Return pg_receivewal on `slot` into `directory`: every write flushed and reported at
    once (--synchronous, so the slot never lets go of WAL we have not made durable), and
    ending on a lost connection (--no-loop) so the stream decides what happens next."""
    return [*client_program(settings, "pg_receivewal"), *_connection(settings),
            "--directory", str(directory), "--slot", slot, "--synchronous", "--no-loop"]


def make_identify_command(settings: PostgresSettings) -> list[str]:
    return [*client_program(settings, "psql"), "-X", "--quiet", "--no-align", "--tuples-only",
            *_connection(settings), "--dbname",
            f"dbname={quote_literal(settings.database)} replication=database",
            "--command", "IDENTIFY_SYSTEM"]


@dataclass(frozen=True)
class Identity:
    system_identifier: str
    timeline: int
    position: str  # the server's current flush LSN


def identify_system(settings: PostgresSettings) -> Identity:
    """Return the cluster's system identifier and timeline over a replication connection;
    raise DatabaseError naming the fix (REPLICATION right, pg_hba line) if it is refused."""
    completed = execute.run(make_identify_command(settings),
                            environment=make_environment(settings),
                            timeout=settings.connect_timeout_seconds + 30)
    fields = completed.stdout.strip().split("|")
    if completed.returncode != 0 or len(fields) < 3:
        text = completed.stderr.lower()
        server = describe_server(settings)
        if "replication" in text and ("permission" in text or "must be" in text
                                      or "pg_hba" in text):
            raise _refused(settings, server, completed.stderr)
        raise diagnose(completed.stderr, settings, program="psql")
    return Identity(system_identifier=fields[0], timeline=int(fields[1]), position=fields[2])


def probe_replication(settings: PostgresSettings) -> Identity:
    """Open a replication connection as the receiver does, straight to POSTGRES_HOST and
    POSTGRES_PORT (never through `docker exec`: in docker mode, the container's published
    address), and ask IDENTIFY_SYSTEM; raise naming the fix if it is refused."""
    import psycopg

    if settings.container and not settings.host:
        raise ConfigurationError("the WAL receiver reaches the server over the network: set "
                                 "POSTGRES_HOST and POSTGRES_PORT to the container's published "
                                 "address (or run `backup-agent doctor` in the sidecar)")
    parameters: dict[str, str | int] = {
        "dbname": settings.database, "user": settings.user, "replication": "database",
        "connect_timeout": settings.connect_timeout_seconds,
        "application_name": "backup-agent doctor"}
    for name, value in (("host", settings.host), ("port", settings.port),
                        ("password", settings.password)):
        if value:
            parameters[name] = value
    server = describe_server(settings)
    try:
        with psycopg.connect(autocommit=True, **parameters) as connection:  # type: ignore[arg-type]
            # A walsender speaks the simple query protocol only.
            answer = connection.pgconn.exec_(b"IDENTIFY_SYSTEM")
            if answer.status != psycopg.pq.ExecStatus.TUPLES_OK:
                raise DatabaseError(f"PostgreSQL at {server} answered IDENTIFY_SYSTEM with "
                                    f"{(answer.error_message or b'').decode(errors='replace')}")
            fields = [(answer.get_value(0, column) or b"").decode() for column in range(3)]
    except psycopg.OperationalError as error:
        text = str(error)
        if "replication" in text.lower() or "wal sender" in text.lower():
            raise _refused(settings, server, text) from None
        raise DatabaseError(f"could not open a replication connection to {server}: "
                            f"{last_meaningful_line(text)}") from None
    return Identity(system_identifier=fields[0], timeline=int(fields[1]), position=fields[2])


def _refused(settings: PostgresSettings, server: str, stderr: str) -> DatabaseError:
    return DatabaseError(f"PostgreSQL at {server} refused a replication connection for "
                        f"{settings.user!r} ({last_meaningful_line(stderr)}): run `backup-agent "
                        "wal setup` and apply what it prints (the REPLICATION right, a pg_hba "
                        "'replication' line)")


@dataclass(frozen=True)
class SlotState:
    active: bool
    wal_status: str  # reserved, extended, unreserved, lost ("" if unknown)
    restart_lsn: str | None
    current_lsn: str

    @property
    def lost(self) -> bool:
        return self.wal_status == "lost" or self.restart_lsn is None


STATEMENT_TIMEOUT_MILLISECONDS = 30_000


class WalServer:
    """One psql session for the stream's questions; reconnects after a server restart."""

    def __init__(self, settings: PostgresSettings) -> None:
        self._settings = settings
        self._session = SqlSession(settings, settings.database)

    def close(self) -> None:
        # Only questions were asked: a stream stopping (SIGTERM) need not wait long for psql.
        self._session.close(timeout=CLOSE_SECONDS)

    def _query(self, sql: str) -> list[str]:
        # Each question is bounded on the server too: a stuck query must not stall the
        # stream's loop (the uploads and the alarms run on the same tick).
        bounded = f"SET statement_timeout = {STATEMENT_TIMEOUT_MILLISECONDS};\n{sql}"
        deadline = time.monotonic() + DATABASE_GONE_SECONDS
        while True:
            try:
                return self._attempt(bounded)
            except DatabaseError as error:
                # A restore swapping POSTGRES_DB in renames it away for an instant (and ends
                # this session): the stream must outlive that, not exit.
                if "does not exist" not in str(error) or time.monotonic() > deadline:
                    raise
                time.sleep(1)

    def _attempt(self, sql: str) -> list[str]:
        if not self._session.alive:
            self._session.reopen()
        try:
            return self._session.query(sql)
        except DatabaseError as error:
            if not any(sign in str(error) for sign in CONNECTION_LOST):
                raise
            self._session.reopen()
            return self._session.query(sql)

    def segment_bytes(self) -> int:
        """Return the WAL segment size in bytes, for a server the stream can follow."""
        number, segment = self._query(
            "SELECT current_setting('server_version_num'), "
            "pg_size_bytes(current_setting('wal_segment_size'));")[0].split("|")
        if int(number) // 10000 < MINIMUM_SERVER_MAJOR:
            raise DatabaseError(f"the WAL stream needs PostgreSQL {MINIMUM_SERVER_MAJOR} or "
                                f"newer (the server is {int(number) // 10000}): "
                                "pg_receivewal resumes from its slot only from 15 on")
        return int(segment)

    def current_lsn(self) -> str:
        return self._query("SELECT pg_current_wal_lsn();")[0].strip()

    def switch_wal(self) -> str:
        """Close the current segment (pg_switch_wal, granted to us by `wal setup`)."""
        return self._query("SELECT pg_switch_wal();")[0].strip()

    def archive_point(self) -> tuple[str, str]:
        """Close the current segment; return (system identifier, the WAL file that holds
        everything committed until now). With no WAL since the last switch, pg_switch_wal()
        returns the start of the empty current file: one byte back is the last full one."""
        identifier, name = self._query(
            "SELECT (SELECT system_identifier FROM pg_control_system()), "
            "pg_walfile_name(pg_switch_wal() - 1);")[0].split("|")
        return identifier.strip(), name.strip()

    def slot(self, name: str) -> SlotState | None:
        """Return the physical slot's state, None if it does not exist."""
        rows = [row for row in self._query(
            "SELECT active, coalesce(wal_status, ''), coalesce(restart_lsn::text, ''), "
            "pg_current_wal_lsn() FROM pg_catalog.pg_replication_slots "
            f"WHERE slot_name = {quote_literal(name)} AND slot_type = 'physical';") if row]
        if not rows:
            return None
        active, status, restart, current = rows[0].split("|")
        return SlotState(active=active == "t", wal_status=status, restart_lsn=restart or None,
                         current_lsn=current)

    def recreate_slot(self, name: str) -> None:
        """Drop the physical slot `name` (lost) and make it again, reserving WAL from now
        (the REPLICATION right allows both)."""
        literal = quote_literal(name)
        self._query("SELECT pg_catalog.pg_drop_replication_slot(slot_name) FROM "
                    f"pg_catalog.pg_replication_slots WHERE slot_name = {literal};\n"
                    f"SELECT 1 FROM pg_catalog.pg_create_physical_replication_slot({literal}, "
                    "true);")
