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
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from backup_agent.physical.server import PrivateServer
from testbed.pitr import owned_directory
from testbed.postgres import PostgresServer, running_server
from testbed.s3 import S3Endpoint
from tests.conftest import run_agent
from tests.streamed_archive import Writer, start_streaming

RPO = timedelta(seconds=60)


@pytest.fixture
def primary() -> Iterator[PostgresServer]:
    with running_server() as server:
        server.psql("postgres", "CREATE TABLE orders (id bigserial PRIMARY KEY, "
                            "at timestamptz NOT NULL);")
        yield server


def test_a_killed_primary_comes_back_from_s3_alone(
        primary: PostgresServer, s3_endpoint: S3Endpoint, bucket: str,
        tmp_path: Path) -> None:
    environment, stream = start_streaming(primary, "postgres", s3_endpoint, bucket, tmp_path)
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
