"""A psql process driven over stdin: one connection, one transaction, several queries.

psql (rather than a Python driver) so that docker mode works unchanged: the same session
runs through `docker exec -i` when the database only listens inside its container.
Row counts for the manifest are taken here, in the snapshot that pg_dump also uses, so
that they describe exactly the data in the dump.
"""

from __future__ import annotations

import contextlib
import secrets
import subprocess
from dataclasses import dataclass
from types import TracebackType

from backup_agent import execute
from backup_agent.model.errors import DatabaseError
from backup_agent.model.settings import PostgresSettings
from backup_agent.postgres.commands import (
    lock_wait_milliseconds,
    make_environment,
    make_psql_command,
)
from backup_agent.postgres.diagnosis import diagnose

# One generated `SELECT count(*)` a user table, run by psql's \gexec inside the session.
ROW_COUNTS_SQL = r"""
SELECT format('SELECT %L || ''='' || count(*) FROM %I.%I',
              format('%I.%I', n.nspname, c.relname), n.nspname, c.relname)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\_temp\_%' AND n.nspname NOT LIKE 'pg\_toast%'
ORDER BY 1 \gexec
"""


@dataclass(frozen=True)
class ServerFacts:
    version: str  # e.g. "18.6"
    version_number: int  # e.g. 180006

    @property
    def major(self) -> int:
        return self.version_number // 10000


class SqlSession:
    """A live psql connection; use as a context manager."""

    def __init__(self, settings: PostgresSettings, database: str) -> None:
        self._settings = settings
        self._database = database
        self._marker = f"__backup_agent_{secrets.token_hex(8)}__"
        self._start()

    def _start(self) -> None:
        self._child = execute.Child(make_psql_command(self._settings, self._database),
                                    environment=make_environment(self._settings),
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self._process = self._child.process
        # Every lock this session waits for is bounded (LOCK_WAIT_TIMEOUT); queued, not
        # awaited: a connection that fails shows with the first query. An empty search_path
        # leaves only pg_catalog for unqualified names: a function or operator a restored
        # database defines (public.format(text, ...), CVE-2018-1058's pattern) can never
        # stand in for a built-in one in the agent's own queries.
        assert self._process.stdin is not None
        with contextlib.suppress(BrokenPipeError):
            self._process.stdin.write(
                f"SET lock_timeout = {lock_wait_milliseconds(self._settings)};\n"
                "SET search_path = '';\n".encode())

    @property
    def alive(self) -> bool:
        return self._child.alive

    def reopen(self) -> None:
        """Start a new connection (psql exits at the first failed statement)."""
        self.close()
        self._start()

    def __enter__(self) -> SqlSession:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def _error(self) -> DatabaseError | Exception:
        self._child.wait(timeout=30)
        return diagnose(self._child.stderr_text(), self._settings, program="psql")

    def query(self, sql: str) -> list[str]:
        """Run `sql` and return its output lines; raise a diagnosed error if psql fails."""
        assert self._process.stdin is not None and self._process.stdout is not None
        try:
            self._process.stdin.write(f"{sql}\n\\echo {self._marker}\n".encode())
            self._process.stdin.flush()
        except BrokenPipeError:
            raise self._error() from None
        lines: list[str] = []
        for raw in self._process.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            if line == self._marker:
                return lines
            lines.append(line)
        raise self._error()

    def server_facts(self) -> ServerFacts:
        version, number = self.query(
            "SELECT current_setting('server_version'), current_setting('server_version_num');"
        )[0].split("|")
        return ServerFacts(version=version.split()[0], version_number=int(number))

    def export_snapshot(self) -> str:
        """Open a repeatable-read transaction and return its snapshot id for pg_dump."""
        self.query("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY;")
        return self.query("SELECT pg_export_snapshot();")[0].strip()

    def cluster_globals(self, server_major: int) -> bytes:
        """The globals file's content (model/cluster_globals.py), read in this transaction."""
        from backup_agent.model.cluster_globals import document
        from backup_agent.postgres import globals_sql

        passwords = self.query(globals_sql.CAN_READ_PASSWORDS_SQL)[0].strip() == "t"
        roles = self.json_query(globals_sql.roles_sql(server_major, passwords=passwords))
        assert isinstance(roles, dict)
        return document(roles=roles,
                        database=self.json_query(globals_sql.database_sql(server_major)),
                        fingerprint=self.json_query(globals_sql.fingerprint_sql()),
                        passwords_included=passwords)

    def json_query(self, sql: str) -> object:
        """Run a query that returns one JSON value; return it parsed."""
        import json

        return json.loads("\n".join(self.query(sql)))

    def row_counts(self, *, row_security_off: bool = False) -> dict[str, int]:
        """Return {qualified table name: rows} as seen by the current transaction.

        `row_security_off` (the restore test, in a database built from a backup): read them
        as pg_dump does, so a table whose policies apply to this user (its owner, with FORCE
        ROW LEVEL SECURITY) is an error, never a call of the backup's policy functions. A
        backup counts in its exported snapshot beside pg_dump, which fails on such a table
        with its own message (an error here would end the snapshot under it first)."""
        counts: dict[str, int] = {}
        if row_security_off:
            self.query("SET row_security = off;")
        for line in self.query(ROW_COUNTS_SQL):
            name, _, count = line.rpartition("=")
            if name:
                counts[name] = int(count)
        return counts

    def kill(self) -> None:
        """Stop psql at once (a query in flight is abandoned; the server rolls back)."""
        self._child.kill()

    def close(self, timeout: float = 30) -> None:
        """End the transaction (read-only, so nothing to commit) and the process, waiting
        at most `timeout` seconds before killing it."""
        if self._process.poll() is None:
            try:
                assert self._process.stdin is not None
                self._process.stdin.write(b"ROLLBACK;\n\\q\n")
                self._process.stdin.close()
            except (BrokenPipeError, OSError):
                pass
            self._child.wait(timeout=timeout)
        self._child.close()
