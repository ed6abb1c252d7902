"""A cluster whose WAL is archived, with a base backup and commits whose times are known.

WAL is archived with `archive_command = cp` into a local directory: in tests only, to
produce WAL files (the agent's own archive is `wal stream`). `track_commit_timestamp` gives
each row's exact commit time, so a restore's exactness is checked to the commit.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from testbed.postgres import PostgresServer, _run_as


@dataclass(frozen=True)
class ArchivedCluster:
    server: PostgresServer
    archive: Path  # the archived WAL files
    base: Path  # pg_basebackup -Fp -X none, taken before the ticks
    commits: list[tuple[int, datetime]]  # each tick's id and exact commit time

    @property
    def owner(self) -> tuple[int, int]:
        status = self.server.data_directory.stat()
        return status.st_uid, status.st_gid


def owned_directory(server: PostgresServer, name: str, parent: Path | None = None) -> Path:
    """An empty 0700 directory that belongs to the server's system user."""
    root = parent
    if root is None:
        root = Path(tempfile.mkdtemp(prefix="backup-agent-pitr-"))
        # Restored clusters, hundreds of MB each: gone when the test process ends (a full
        # run left about 6 GB in /tmp).
        atexit.register(shutil.rmtree, root, ignore_errors=True)
    root.chmod(0o755)
    directory = root / name
    directory.mkdir(mode=0o700)
    if server.system_user:
        shutil.chown(directory, server.system_user, server.system_user)
    return directory


def start_archiving(server: PostgresServer) -> Path:
    archive = owned_directory(server, "archive", server.data_directory.parent)
    server.psql("postgres", f"ALTER SYSTEM SET archive_mode = on; "
                f"ALTER SYSTEM SET archive_command = 'cp %p {archive}/%f'; "
                "ALTER SYSTEM SET track_commit_timestamp = on;")
    server.restart()
    return archive


def take_base_backup(server: PostgresServer, into: Path) -> None:
    _run_as(server.system_user, [str(server.bin_directory / "pg_basebackup"), "-h",
                                 str(server.data_directory.parent / "socket"), "-p",
                                 str(server.port), "-U", server.user, "-D", str(into), "-Fp",
                                 "-X", "none", "-c", "fast"])


def tick(server: PostgresServer, count: int, *, pause: float = 0.02) -> None:
    """Commit `count` rows, one transaction each, a little apart."""
    statements = "".join(f"INSERT INTO ticks(note) VALUES ('tick'); SELECT pg_sleep({pause});\n"
                         for _ in range(count))
    server.psql("postgres", statements)


def archive_everything(server: PostgresServer, archive: Path) -> None:
    name = server.psql("postgres", "SELECT pg_walfile_name(pg_switch_wal());").strip()
    deadline = time.monotonic() + 60
    while not (archive / name).exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name} was not archived within 60 s")
        time.sleep(0.1)


def archived_cluster(server: PostgresServer, *, before: int = 3,
                     after: int = 25) -> ArchivedCluster:
    archive = start_archiving(server)
    server.psql("postgres", "CREATE TABLE ticks (id serial PRIMARY KEY, note text);")
    tick(server, before)
    base = owned_directory(server, "base", server.data_directory.parent)
    take_base_backup(server, base)
    tick(server, after // 2)
    server.psql("postgres", "SELECT pg_switch_wal();")  # commits spread over segments
    tick(server, after - after // 2)
    archive_everything(server, archive)
    rows = server.psql("postgres", "SELECT id, pg_xact_commit_timestamp(xmin) FROM ticks "
                                   "ORDER BY id;")
    commits = [(int(ident), datetime.fromisoformat(stamp)) for ident, stamp in
               (line.split("|") for line in rows.splitlines() if line)]
    return ArchivedCluster(server=server, archive=archive, base=base, commits=commits)


def copy_of(cluster: ArchivedCluster, source: Path, name: str) -> Path:
    """A copy of a directory (the archive, less what a test removes) the server can read."""
    target = owned_directory(cluster.server, name)
    for path in source.iterdir():
        shutil.copy2(path, target / path.name)
        os.chown(target / path.name, *cluster.owner)
    return target


def pg_ctl_status(server: PostgresServer, data_directory: Path) -> int:
    return subprocess.run([str(server.bin_directory / "pg_ctl"), "status", "-D",
                           str(data_directory)], user=server.system_user, capture_output=True,
                          check=False, cwd="/").returncode
