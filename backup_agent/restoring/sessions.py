"""A connection to the database being built: one statement at a time, pinned and watched.

Each statement goes alone through the extended protocol (Parse/Bind/Execute), so the server
itself refuses a piece that holds two statements; COPY data goes through the copy protocol.
After every statement the server's reported parameters are compared with what the allowed
statements set: a function that flipped standard_conforming_strings, client_encoding, the
session's authorization or (where the server reports it) search_path stops the restore.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from backup_agent.model.errors import BackupAgentError, DatabaseError, RestoreError
from backup_agent.model.settings import PostgresSettings
from backup_agent.postgres.commands import lock_wait_milliseconds

if TYPE_CHECKING:
    import psycopg

    from backup_agent.restoring.copy_in import CopyIn

# Reported by the server on every change (GUC_REPORT); search_path only from PostgreSQL 18
# (before, it is asked for after every statement). The date and interval styles and the
# time zone change how COPY reads the data.
WATCHED = ("standard_conforming_strings", "client_encoding", "session_authorization",
           "is_superuser", "search_path", "DateStyle", "IntervalStyle", "TimeZone")
SEARCH_PATH_SQL = b"SELECT pg_catalog.current_setting('search_path')"
AUTHORIZATION = ("session_authorization", "is_superuser")  # what SET SESSION AUTH... changes
APPLICATION_NAME = "backup-agent restore"


class StatementFailed(Exception):
    """The server refused a statement; `sqlstate` says why (42501: permission denied)."""

    def __init__(self, session: str, line: int, sqlstate: str | None, message: str) -> None:
        super().__init__(message)
        self.session = session
        self.line = line
        self.sqlstate = sqlstate


class SessionChanged(Exception):
    """A watched parameter changed other than by a statement allowed to change it."""

    def __init__(self, session: str, line: int, name: str, before: str | None,
                 after: str | None) -> None:
        super().__init__(f"{name} changed from {before!r} to {after!r}")
        self.session = session
        self.line = line
        self.name = name
        self.before = before
        self.after = after


@dataclass(frozen=True)
class Login:
    """Who a session logs in as; the password never leaves this process but to libpq."""

    user: str
    password: str | None


def connect(settings: PostgresSettings, database: str, login: Login) -> psycopg.Connection[Any]:
    """Open an autocommit connection with standard_conforming_strings on, an empty
    search_path and our bounded lock wait, whatever the role's or database's defaults."""
    import psycopg

    options = (f"-c standard_conforming_strings=on -c search_path= "
               f"-c lock_timeout={lock_wait_milliseconds(settings)}")
    parameters: dict[str, Any] = {
        "dbname": database, "user": login.user, "options": options,
        "connect_timeout": settings.connect_timeout_seconds,
        "application_name": APPLICATION_NAME, "autocommit": True}
    if settings.host:
        parameters["host"] = settings.host
    if settings.port:
        parameters["port"] = settings.port
    if login.password is not None:
        parameters["password"] = login.password
    try:
        return psycopg.connect(**parameters)
    except psycopg.Error as error:
        raise _unreachable(settings, database, login, str(error)) from None


def _unreachable(settings: PostgresSettings, database: str, login: Login,
                 message: str) -> BackupAgentError:
    from backup_agent.postgres.diagnosis import describe_server, diagnose

    refused = any(sign in message for sign in ("authentication failed", "no pg_hba.conf entry",
                                               "pg_hba.conf rejects"))
    if login.user == settings.user or not refused:
        if not refused and "server closed the connection" in message:
            return RestoreError(f"lost the server while restoring into {database} "
                                f"({message.splitlines()[0][:200]}); nothing was put in place")
        return diagnose(message, settings, program="the restore")
    return DatabaseError(f"could not connect to {database} at {describe_server(settings)} as "
                         f"{login.user}, the restore's own role ({message.splitlines()[0][:200]}"
                         "): pg_hba.conf must let it log in with a password from here (a "
                         "`host all all <address> scram-sha-256` line)")


class BuildSession:
    """One watched connection; `name` says whose it is in errors ("builder", "admin")."""

    def __init__(self, name: str, connection: psycopg.Connection[Any]) -> None:
        self.name = name
        self._connection = connection
        self._expected = {parameter: self._reported(parameter) for parameter in WATCHED}
        self._copy: CopyIn | None = None
        self.notices: list[str] = []  # SQLSTATEs of the server's notices, for the caller
        connection.add_notice_handler(lambda diagnostic: self.notices.append(
            diagnostic.sqlstate or ""))

    def _reported(self, parameter: str) -> str | None:
        reported = self._connection.info.parameter_status(parameter)
        if reported is None and parameter == "search_path":  # PostgreSQL 17 and older
            return self.query_column(SEARCH_PATH_SQL)[0]
        return reported

    def accept(self, *parameters: str) -> None:
        """The statement just run was allowed to change these: expect their new values."""
        for parameter in parameters:
            self._expected[parameter] = self._reported(parameter)

    def watch(self, line: int) -> None:
        """Raise SessionChanged when a watched parameter is not what the dump set."""
        for parameter, expected in self._expected.items():
            now = self._reported(parameter)
            if now != expected:
                raise SessionChanged(self.name, line, parameter, expected, now)

    def run(self, text: bytes, line: int) -> None:
        """Execute one statement through the extended protocol, then watch the session."""
        import psycopg

        try:
            # binary=True makes psycopg use PQsendQueryParams: the extended protocol, in
            # which the server refuses a string holding more than one statement.
            self._connection.execute(text, binary=True)
        except psycopg.Error as error:
            raise self._failed(error, line) from None
        self.watch(line)

    def encrypt_password(self, password: str, role: str) -> str:
        """The server's verifier of `password` (SCRAM where the server uses it), computed
        here: the password itself never reaches the server or its log."""
        import psycopg

        try:
            return bytes(self._connection.pgconn.encrypt_password(
                password.encode(), role.encode())).decode()
        except psycopg.Error as error:
            raise self._failed(error, 0) from None

    def query_column(self, sql: bytes, line: int = 0) -> list[str]:
        """The first column of an agent-written query's rows, as text."""
        import psycopg

        try:
            rows = self._connection.execute(sql).fetchall()
        except psycopg.Error as error:
            raise self._failed(error, line) from None
        return [str(row[0]) for row in rows]

    def transaction_open(self) -> bool:
        from psycopg import pq

        return bool(self._connection.info.transaction_status != pq.TransactionStatus.IDLE)

    def copy_start(self, text: bytes, line: int) -> None:
        import psycopg

        from backup_agent.restoring.copy_in import CopyIn

        try:
            self._copy = CopyIn(self._connection, text)
        except psycopg.Error as error:
            raise self._failed(error, line) from None

    def copy_write(self, data: bytes, line: int) -> None:
        import psycopg

        assert self._copy is not None
        try:
            self._copy.write(data)
        except psycopg.Error as error:
            self._abandon_copy()
            raise self._failed(error, line) from None

    def copy_finish(self, line: int) -> None:
        import psycopg

        copy, self._copy = self._copy, None
        assert copy is not None
        try:
            copy.finish()
        except psycopg.Error as error:
            raise self._failed(error, line) from None
        self.watch(line)

    def _abandon_copy(self) -> None:
        copy, self._copy = self._copy, None
        if copy is not None:
            with contextlib.suppress(Exception):
                copy.finish("abandoned")

    def _failed(self, error: Exception, line: int) -> StatementFailed:
        sqlstate = getattr(error, "sqlstate", None)
        diagnostic = getattr(error, "diag", None)
        message = (getattr(diagnostic, "message_primary", None) or str(error)).strip()
        return StatementFailed(self.name, line, sqlstate, message.splitlines()[0]
                               if message else "the server refused it")

    def close(self) -> None:
        self._abandon_copy()
        with contextlib.suppress(Exception):
            self._connection.close()


@contextlib.contextmanager
def opened(name: str, settings: PostgresSettings, database: str,
           login: Login) -> Iterator[BuildSession]:
    session = BuildSession(name, connect(settings, database, login))
    try:
        yield session
    finally:
        session.close()


def run_accepting(session: BuildSession, text: bytes, line: int,
                  accepted: tuple[str, ...]) -> None:
    """Run a statement allowed to change the `accepted` parameters, and only those."""
    session.watch(line)  # nothing changed before this statement ...
    if not accepted:
        session.run(text, line)
        return
    try:
        session.run(text, line)
    except SessionChanged as changed:
        if changed.name not in accepted:
            raise
    session.accept(*accepted)  # ... and this one may change only what it names
    session.watch(line)


def accepted_by(text: bytes) -> tuple[str, ...]:
    """What a deferred statement may change: SET/RESET SESSION AUTHORIZATION its session's."""
    return AUTHORIZATION if text.upper().startswith((b"SET SESSION AUTHORIZATION",
                                                     b"RESET SESSION AUTHORIZATION")) else ()
