"""`restore --to-time T`: one database as it was at T, made into a backup the one proven
restore path reads.

The whole cluster is recovered as of T into a throwaway directory (restoring/cluster.py),
started once more as a private server (a socket only it and the agent can reach, trust
there alone, the source's commands and preload libraries off), and the database is dumped
from it into a backup in BACKUP_DIR's format inside a private scratch directory
(catalog/writing.py). `restore` then proves, builds and swaps that backup in exactly as any
other, and the scratch directory goes.

The dump is signed with a key made for this run alone, held in memory, and trusted only
when the base backup and every WAL file were proven with trusted signatures: what the
archive did not prove, the restore treats as an unsigned backup (its code runs only as the
restricted builder role).
"""

from __future__ import annotations

import contextlib
import logging
import os
import pwd
import shutil
import socket
import stat
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from backup_agent.catalog.writing import dump_into, write_sidecars
from backup_agent.keys.signing import public_key_text, sign
from backup_agent.model.errors import ConfigurationError, LocalStorageError, RestoreError
from backup_agent.model.naming import backup_name
from backup_agent.model.settings import Settings
from backup_agent.model.targets import RecoveryTarget
from backup_agent.physical.commands import session_options
from backup_agent.physical.server import PrivateServer
from backup_agent.restoring.archive_now import archive_now
from backup_agent.restoring.cluster import (
    RecoveredCluster,
    check_base_backups,
    recover_cluster,
)
from backup_agent.storage import local

log = logging.getLogger(__name__)

SCRATCH_PREFIX = "backup-agent-as-of-"


@dataclass(frozen=True)
class DatabaseAsOf:
    directory: Path  # the scratch BACKUP_DIR the made backup is in
    name: str  # the backup file's name in it
    trusted_key: str | None  # this run's public key, when base backup and WAL were proven
    recovered: RecoveredCluster


@contextlib.contextmanager
def database_as_of(settings: Settings, target: RecoveryTarget, *, scratch: Path | None,
                   clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                   allow_unsigned: bool = False) -> Iterator[DatabaseAsOf]:
    """Yield a backup of settings.postgres.database as of `target`; remove every file made
    for it afterwards. Raise a BackupAgentError when it cannot be made."""
    if scratch is not None:
        scratch = scratch.resolve()  # checked and used as one path: a link is not re-read
    owner = _server_owner(scratch)
    if scratch is not None:
        _check_scratch(scratch, owner)
    check_base_backups(settings, target, allow_unsigned=allow_unsigned)  # no key: refused
    archive_now(settings, target, clock(), required=True)  # raises before any change
    root = Path(tempfile.mkdtemp(prefix=SCRATCH_PREFIX, dir=scratch))
    try:
        root.chmod(0o711)  # the server's user passes through to its own directory only
        pgdata, dumps = root / "cluster", root / "backup"
        pgdata.mkdir(mode=0o700)
        os.chown(pgdata, *owner)
        dumps.mkdir(mode=0o700)
        recovered = recover_cluster(settings, target, pgdata, owner,
                                    allow_unsigned=allow_unsigned)
        key = Ed25519PrivateKey.generate() if recovered.trusted else None
        moment = recovered.reached.last_commit or clock()
        name = backup_name(moment)
        with PrivateServer(settings.postgres.bin_directory, pgdata, {}, owner=owner) as server:
            role = server.wait_until_ready()
            _check_database(server, settings.postgres.database, target)
            _release_prepared(server, settings.postgres.database)
            # pg_dump and psql connect as the superuser: the cluster's own role and
            # database settings (event_triggers, preload libraries) must not outrank the
            # command line's there, as they would without the client's options.
            private = replace(settings, encrypt_to=(), postgres=replace(
                settings.postgres, host=str(server.socket_directory), port=server.port,
                user=role, password=None, container=None,
                options=session_options(server.major)))
            with local.temporary_file(dumps, name) as (temporary, handle):
                dumped = dump_into(private, handle)
                os.fsync(handle.fileno())
                write_sidecars(private, dumps, name, dumped, started=moment, finished=clock(),
                               hostname=socket.gethostname(),
                               sign=partial(sign, key) if key is not None else None)
                local.publish(temporary, dumps / name)
            server.stop()
        shutil.rmtree(pgdata)  # its room is the restore's spool's now
        yield DatabaseAsOf(directory=dumps, name=name,
                           trusted_key=public_key_text(key) if key is not None else None,
                           recovered=recovered)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _server_owner(scratch: Path | None) -> tuple[int, int]:
    """Who runs the throwaway server: the agent's own user; as root (PostgreSQL refuses to
    run as root) the owner of --scratch, else the `postgres` user."""
    if scratch is not None and not scratch.is_dir():
        raise ConfigurationError(f"--scratch {scratch} is not a directory: create it (room for "
                                 "a copy of the whole cluster)")
    if os.geteuid() != 0:
        return os.geteuid(), os.getegid()
    if scratch is not None and (status := scratch.stat()).st_uid != 0:
        return status.st_uid, status.st_gid
    with contextlib.suppress(KeyError):
        entry = pwd.getpwnam("postgres")
        return entry.pw_uid, entry.pw_gid
    raise ConfigurationError("restore --to-time runs a throwaway PostgreSQL, which refuses to "
                             "run as root, and this machine has no `postgres` user: pass "
                             "--scratch DIR owned by the user to run it (e.g. install -d -o "
                             "USER -m 700 /var/tmp/pitr)")


def _check_scratch(scratch: Path, owner: tuple[int, int]) -> None:
    """Raise LocalStorageError when anyone but the agent and the server's user may rename
    what the agent makes in --scratch: they could put their own directory in its place and
    change the recovered cluster between its proof and the dump the one-run key signs."""
    status = scratch.stat()
    if status.st_uid not in (0, os.geteuid(), owner[0]):
        raise LocalStorageError(f"--scratch {scratch} belongs to uid {status.st_uid}, another "
                                "user, who could replace what the agent makes in it: use a "
                                f"directory of this user's (install -d -m 700 DIR)")
    if status.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not status.st_mode & stat.S_ISVTX:
        raise LocalStorageError(f"--scratch {scratch} is writable by other users, who could "
                                "replace what the agent makes in it: chmod 700 it or use "
                                "another directory")


def _check_database(server: PrivateServer, database: str, target: RecoveryTarget) -> None:
    row = server.query("SELECT array_agg(datname::text) FROM pg_catalog.pg_database")
    names = list(row[0]) if row and row[0] else []
    if database not in names:
        raise ConfigurationError(f"database {database} did not exist as of "
                                 f"{target.describe()} (the cluster then held "
                                 f"{', '.join(sorted(names))}): nothing was restored; set "
                                 "POSTGRES_DB to one of them or choose another time")


def _release_prepared(server: PrivateServer, database: str) -> None:
    import psycopg

    try:
        with server.connect_to(database) as connection:
            if rolled_back := server.rollback_prepared(connection):
                log.info("rolled back %d transaction(s) left prepared at T in the throwaway "
                         "cluster: their locks would hold up pg_dump", rolled_back)
    except psycopg.Error as error:
        raise RestoreError(f"could not roll back the transactions left prepared in "
                           f"{database} in the throwaway cluster: {error}") from None
