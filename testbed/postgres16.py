"""A throwaway PostgreSQL 16.2 server from the pgserver wheel (pgserver==0.1.4, dev extra).

pgserver bundles a relocatable PostgreSQL 16.2 build under `pgserver/pginstall/`: `bin/`
(initdb, pg_ctl, postgres, psql, pg_dump, ...), `lib/postgresql/` and `share/postgresql/`,
which the binaries find relative to themselves. Its client binaries reach their libpq
through an RPATH into the wheel's `pgserver.libs/`, so no LD_LIBRARY_PATH is needed.

We only use the files, never pgserver's Python API (which runs its own server on a Unix
socket with trust auth): the cluster is started by testbed.postgres.running_server, exactly
like the PostgreSQL 18 one, so it listens on 127.0.0.1 with scram-sha-256 and, as root,
runs as the same unprivileged system user.
"""

from __future__ import annotations

import importlib.util
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from testbed.postgres import PostgresServer, running_server

PGSERVER_REQUIREMENT = "pgserver==0.1.4"
EXPECTED_VERSION = "16.2"


def pg16_bin_directory() -> Path:
    """Return pgserver's bin directory, or raise if pgserver is not installed properly.

    Found without importing pgserver: its package directory is enough."""
    spec = importlib.util.find_spec("pgserver")
    if spec is None or spec.origin is None:
        raise RuntimeError(f"PostgreSQL 16 needs the {PGSERVER_REQUIREMENT} wheel: "
                           f"pip install -e '.[dev]' (or pip install {PGSERVER_REQUIREMENT})")
    bin_directory = Path(spec.origin).parent / "pginstall" / "bin"
    missing = [name for name in ("initdb", "pg_ctl", "postgres", "psql", "pg_dump")
               if not (bin_directory / name).is_file()]
    if missing:
        raise RuntimeError(f"{bin_directory} lacks {', '.join(missing)}: "
                           f"is pgserver installed as {PGSERVER_REQUIREMENT}?")
    return bin_directory


def pg16_version() -> str:
    """Return what pgserver's `postgres --version` prints."""
    completed = subprocess.run([str(pg16_bin_directory() / "postgres"), "--version"],
                               capture_output=True, text=True, check=True)
    return completed.stdout.strip()


@contextmanager
def running_server_16(*, password: str | None = None) -> Iterator[PostgresServer]:
    """Start a fresh PostgreSQL 16.2 server; see testbed.postgres.running_server."""
    bin_directory = pg16_bin_directory()
    version = pg16_version()
    if not version.endswith(f" {EXPECTED_VERSION}"):
        raise RuntimeError(f"expected PostgreSQL {EXPECTED_VERSION} from pgserver, got {version}")
    with running_server(password=password, bin_directory=bin_directory) as server:
        yield server
