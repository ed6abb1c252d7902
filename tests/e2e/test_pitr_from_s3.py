"""The promise of point-in-time recovery, whole: a primary under a steady write load is
killed (`kill -9`) and its data directory deleted; from S3 alone (`wal stream`'s archive,
`base-backup`'s base backup, both signed) a new cluster brings back every row committed
before the crash less a minute, and a time inside the window exactly.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from backup_agent.physical.server import PrivateServer
from testbed.pitr import owned_directory
from testbed.postgres import PostgresServer, running_server
from testbed.s3 import S3Endpoint
from tests.conftest import AGENT, clean_environment, run_agent, signed

RPO = timedelta(seconds=60)


class Writer(threading.Thread):
    """An insert loop: one row per transaction, stamped with its own clock_timestamp()."""

    def __init__(self, server: PostgresServer, database: str = "postgres") -> None:
        super().__init__(daemon=True)
        self.server, self.database = server, database
        self.stop = threading.Event()

    def run(self) -> None:
        import psycopg

        with psycopg.connect(host=self.server.host, port=self.server.port, user=self.server.user,
                             password=self.server.password, dbname=self.database,
                             autocommit=True) as connection:
            while not self.stop.is_set():
                try:
                    connection.execute("INSERT INTO orders (at) VALUES (clock_timestamp())")
                except psycopg.Error:
                    return  # the server was killed
                time.sleep(0.01)


@pytest.fixture
def primary() -> Iterator[PostgresServer]:
    with running_server() as server:
        server.psql("postgres", "CREATE TABLE orders (id bigserial PRIMARY KEY, "
                            "at timestamptz NOT NULL);")
        yield server


def test_a_killed_primary_comes_back_from_s3_alone(
        primary: PostgresServer, s3_endpoint: S3Endpoint, bucket: str,
        tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.mkdir(mode=0o700)
    (tmp_path / "backups").mkdir()
    environment = signed({**clean_environment(), **primary.environment("postgres"),
                          **s3_endpoint.environment(), "S3_BUCKET": bucket,
                          "BACKUP_DIR": str(tmp_path / "backups"), "WAL_SPOOL_DIR": str(spool),
                          "WAL_MAX_DELAY": "1s", "AWS_MAX_ATTEMPTS": "2"})
    setup = run_agent(["wal", "setup", "--yes"], environment)
    assert setup.returncode == 0, setup.stdout + setup.stderr
    with (tmp_path / "stream.log").open("wb") as log:
        stream = subprocess.Popen([str(AGENT), "wal", "stream"], env=environment,
                                  stdout=subprocess.DEVNULL, stderr=log)
    writer = Writer(primary)
    try:
        writer.start()
        time.sleep(1)
        based = run_agent(["base-backup", "--json"], environment)
        assert based.returncode == 0, based.stderr
        time.sleep(4 + secrets.randbelow(4000) / 1000)  # the crash: at a random moment t
        crash = datetime.now().astimezone()
        os.kill(_postmaster_pid(primary), signal.SIGKILL)
        writer.stop.set()
        writer.join(10)
        shutil.rmtree(primary.data_directory)
        time.sleep(3)  # the stream uploads what it had; its connection is gone
    finally:
        stream.send_signal(signal.SIGTERM)
        stream.wait(30)

    # A new machine: nothing but S3 and the public key (no SIGNING_KEY_FILE there).
    pgdata = owned_directory(primary, "new-pgdata")
    new_machine = {key: value for key, value in environment.items()
                   if not key.startswith(("POSTGRES_", "WAL_", "SIGNING_KEY_FILE"))}
    restored = run_agent(["restore-cluster", "--to-time", "latest", "--pgdata", str(pgdata),
                          "--json"], {**new_machine, "BACKUP_DIR": str(tmp_path / "backups")})
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert json.loads(restored.stdout)["trusted"] is True
    owner = (pgdata.stat().st_uid, pgdata.stat().st_gid)
    with PrivateServer(primary.bin_directory, pgdata, {}, owner=owner) as server:
        rows = _wait_for_rows(server)
        server.stop()
    in_recovery, count, newest = rows
    assert in_recovery is False and isinstance(count, int) and count > 0
    assert isinstance(newest, datetime)
    # Every row committed before t - 60 s is back (here, in fact, all but the last second).
    assert newest >= crash - RPO, (newest, crash)


def _wait_for_rows(server: PrivateServer) -> tuple[object, ...]:
    for _ in range(300):
        if row := server.query("SELECT pg_is_in_recovery(), count(*), max(at) FROM public.orders"):
            return row
        time.sleep(0.1)
    raise AssertionError("the restored cluster did not answer")


def _postmaster_pid(server: PostgresServer) -> int:
    return int((server.data_directory / "postmaster.pid").read_text().split()[0])
