"""A restored cluster's server, private to the agent while it recovers.

It runs as the data directory's owner (PostgreSQL refuses root), as the agent's own child
(not daemonised by pg_ctl: it dies with the agent's run), listens on no TCP address, only
on a socket in a directory nobody else may enter, with `trust` authentication there alone
(the cluster's own pg_hba.conf may demand passwords the agent does not have). Its log
(stderr) is kept for the messages a failed recovery leaves.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pwd
import shutil
import signal
import socket
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from backup_agent import execute
from backup_agent.model.errors import ConfigurationError, RestoreError
from backup_agent.physical.commands import (
    ENVIRONMENT,
    make_server_command,
    make_stop_command,
    private_settings,
    session_options,
)

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger(__name__)

# Who the agent connects as: the usual bootstrap superuser, else the owner's name (initdb's
# default). trust over the private socket needs no password, only an existing role.
SUPERUSER_CANDIDATES = ("postgres",)
CONNECT_TIMEOUT_SECONDS = 5
STOP_TIMEOUT_SECONDS = 300


def owner_of(directory: Path) -> tuple[int, int]:
    """Return (uid, gid) owning `directory`; raise ConfigurationError when the agent can
    neither be that user nor become it."""
    status = directory.stat()
    if status.st_uid == 0:
        raise ConfigurationError(f"{directory} belongs to root, and PostgreSQL refuses to run "
                                 "as root: chown it to the user the server will run as (e.g. "
                                 "postgres)")
    if os.geteuid() not in (0, status.st_uid):
        raise ConfigurationError(f"{directory} belongs to uid {status.st_uid}: run the restore "
                                 "as that user (the server must run as its owner) or as root")
    return status.st_uid, status.st_gid


def owner_named(name: str | None) -> tuple[int, int]:
    """Return (uid, gid) of the user a server the agent starts runs as: `name`, else this
    process's own user; as root, `postgres` (PostgreSQL refuses to run as root)."""
    if name is None and os.geteuid() != 0:
        return os.geteuid(), os.getegid()
    try:
        entry = pwd.getpwnam(name or "postgres")
    except KeyError:
        raise ConfigurationError(f"no operating system user {name or 'postgres'!r} here: pass "
                                 "--run-as USER, the user the recovered servers run as "
                                 "(PostgreSQL refuses root)") from None
    if entry.pw_uid == 0:
        raise ConfigurationError("--run-as root: PostgreSQL refuses to run as root; name "
                                 "another user")
    return entry.pw_uid, entry.pw_gid


def free_port() -> int:
    """A port number no one listens on: it only names the private socket file."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PrivateServer:
    """Start with `start()`; always `close()` (a context manager does both)."""

    def __init__(self, bin_directory: Path | None, data_directory: Path,
                 settings: dict[str, str], *, owner: tuple[int, int]) -> None:
        self.bin_directory, self.data_directory, self.owner = (bin_directory, data_directory,
                                                                owner)
        self.socket_directory = Path(tempfile.mkdtemp(prefix="backup-agent-server-"))
        os.chown(self.socket_directory, *owner)
        hba = self.socket_directory / "pg_hba.conf"
        hba.write_text("# backup-agent: only this private socket, only while it recovers\n"
                       "local all all trust\n")
        os.chown(hba, *owner)
        self.port = free_port()
        # The cluster's own version: settings it does not know would stop it at start.
        self.major = int((data_directory / "PG_VERSION").read_text().split(".")[0])
        self.settings = {**private_settings(data_directory=data_directory,
                                            socket_directory=self.socket_directory,
                                            port=self.port, hba_file=hba, major=self.major),
                         **settings}
        self._child: execute.Child | None = None
        self._connection: psycopg.Connection[Any] | None = None
        self._role: str | None = None

    def __enter__(self) -> PrivateServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def start(self) -> None:
        command = make_server_command(self.bin_directory, self.data_directory, self.settings)
        self._child = execute.Child(command, environment=ENVIRONMENT, owner=self.owner,
                                    stdout=execute.DEVNULL)

    @property
    def alive(self) -> bool:
        return self._child is not None and self._child.alive

    def log_text(self) -> str:
        return self._child.stderr_text() if self._child is not None else ""

    def query(self, sql: str) -> tuple[Any, ...] | None:
        """Return the first row of `sql`, or None while the server takes no connections."""
        import psycopg

        try:
            connection = self._connect()
            if connection is None:
                return None
            with connection.cursor() as cursor:
                row = cursor.execute(sql).fetchone()
            return tuple(row) if row is not None else None
        except psycopg.OperationalError:
            self._disconnect()
            return None

    def wait_until_ready(self, timeout_seconds: float = 300) -> str:
        """Wait until the server takes the agent's connections; return the role it connects
        as. Raise RestoreError when it stopped or did not within `timeout_seconds`."""
        deadline = time.monotonic() + timeout_seconds
        while self.query("SELECT 1") is None:
            if not self.alive or time.monotonic() > deadline:
                raise RestoreError(f"the restored server at {self.data_directory} did not take "
                                   f"connections within {timeout_seconds:.0f} s: "
                                   f"{' | '.join(self.log_text().strip().splitlines()[-3:])}")
            time.sleep(0.1)
        assert self._role is not None
        return self._role

    def client_arguments(self) -> list[str]:
        """libpq flags that reach this server (for pg_amcheck), as the role `query` uses."""
        if self._role is None:
            raise RestoreError("the restored server was not asked anything yet")
        return ["-h", str(self.socket_directory), "-p", str(self.port), "-U", self._role]

    def connect_to(self, database: str) -> psycopg.Connection[Any]:
        """A connection of its own to `database`, as the role `query` uses (close it)."""
        import psycopg

        if self._role is None:
            raise RestoreError("the restored server was not asked anything yet")
        return psycopg.connect(host=str(self.socket_directory), port=self.port,
                               user=self._role, dbname=database,
                               connect_timeout=CONNECT_TIMEOUT_SECONDS, autocommit=True,
                               application_name="backup-agent restore",
                               options=session_options(self.major))

    def rollback_prepared(self, connection: psycopg.Connection[Any]) -> int:
        """Roll back the transactions left prepared in `connection`'s database and return
        how many. They survive recovery with their locks, and one holding ACCESS EXCLUSIVE
        would hold up whatever reads that table next (pg_dump, pg_amcheck); at T none of
        them had committed, so nothing they wrote belongs in what is read."""
        from psycopg import sql

        prepared = connection.execute("SELECT gid FROM pg_catalog.pg_prepared_xacts WHERE "
                                      "database = pg_catalog.current_database()").fetchall()
        for (gid,) in prepared:
            connection.execute(sql.SQL("ROLLBACK PREPARED {}").format(sql.Literal(gid)))
        return len(prepared)

    def _connect(self) -> psycopg.Connection[Any] | None:
        import psycopg

        if self._connection is not None and not self._connection.closed:
            return self._connection
        for role in ([self._role] if self._role else self._roles()):
            try:
                self._connection = psycopg.connect(
                    host=str(self.socket_directory), port=self.port, user=role,
                    dbname="postgres", connect_timeout=CONNECT_TIMEOUT_SECONDS, autocommit=True,
                    application_name="backup-agent restore", options=session_options(self.major))
                self._role = role
                return self._connection
            except psycopg.OperationalError as error:
                if "does not exist" not in str(error):
                    return None  # not accepting connections yet (or any more)
        raise RestoreError(f"none of the roles {', '.join(self._roles())} exists in the "
                           "restored cluster: the agent cannot check its recovery; restore "
                           "as the cluster's bootstrap superuser's operating system user")

    def _roles(self) -> list[str]:
        names = list(SUPERUSER_CANDIDATES)
        with contextlib.suppress(KeyError):
            names.append(pwd.getpwuid(self.owner[0]).pw_name)
        return list(dict.fromkeys(names))

    def _disconnect(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):
                self._connection.close()
        self._connection = None

    def stop(self) -> None:
        """Shut down cleanly (pg_ctl stop -m fast); raise RestoreError if it did not."""
        self._disconnect()
        completed = execute.run(make_stop_command(self.bin_directory, self.data_directory,
                                                  timeout_seconds=STOP_TIMEOUT_SECONDS),
                                environment=ENVIRONMENT, owner=self.owner,
                                timeout=STOP_TIMEOUT_SECONDS + 30)
        assert self._child is not None
        status = self._child.wait(timeout=60)
        if completed.returncode != 0 or status != 0:
            raise RestoreError(f"the restored server did not shut down cleanly "
                               f"({completed.stderr.strip()[:200] or f'exit {status}'}): "
                               f"{self.data_directory} is not ready; see its log")

    def close(self) -> None:
        """Stop whatever still runs (immediate shutdown, then kill) and remove the private
        directory."""
        self._disconnect()
        if self._child is not None:
            if self._child.alive:
                with contextlib.suppress(ProcessLookupError):
                    self._child.process.send_signal(signal.SIGQUIT)
                deadline = time.monotonic() + 30
                while self._child.alive and time.monotonic() < deadline:
                    time.sleep(0.1)
            self._child.close()
        shutil.rmtree(self.socket_directory, ignore_errors=True)
