"""A primary under an insert loop, its WAL streamed to S3 by `wal stream` and a base backup
taken by `base-backup`, both signed: the archive `restore --to-time` tests restore from, with
the commit time of every row (track_commit_timestamp) to compare each restore with."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest

from testbed.pitr import owned_directory
from testbed.postgres import PostgresServer, running_server
from testbed.s3 import S3Endpoint
from tests.conftest import AGENT, clean_environment, run_agent, signed

DATABASE = "shop"


@dataclass
class Archived:
    server: PostgresServer
    environment: dict[str, str]
    scratch: Path
    commits: dict[int, datetime]  # each order's id and its transaction's commit time
    window_start: datetime  # no earlier T is restorable (the base backup's end)
    stream: subprocess.Popen[bytes]  # `wal stream`, running

    def committed_by(self, moment: datetime) -> set[int]:
        return {id_ for id_, at in self.commits.items() if at <= moment}

    def orders(self, database: str) -> set[int]:
        text = self.server.psql(database, "SELECT id FROM orders;")
        return {int(line) for line in text.split()}


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


def start_streaming(server: PostgresServer, database: str, s3_endpoint: S3Endpoint,
                    bucket: str, work: Path) -> tuple[dict[str, str], subprocess.Popen[bytes]]:
    """`wal setup --yes`, then `wal stream` (WAL_MAX_DELAY 1 s, its log in work/stream.log)
    into `bucket`; return the agent's environment (signed) and the running stream."""
    spool = work / "spool"
    spool.mkdir(mode=0o700)
    (work / "backups").mkdir()
    environment = signed({**clean_environment(), **server.environment(database),
                          **s3_endpoint.environment(), "S3_BUCKET": bucket,
                          "BACKUP_DIR": str(work / "backups"), "WAL_SPOOL_DIR": str(spool),
                          "WAL_MAX_DELAY": "1s", "AWS_MAX_ATTEMPTS": "2"})
    setup = run_agent(["wal", "setup", "--yes"], environment)
    assert setup.returncode == 0, setup.stdout + setup.stderr
    with (work / "stream.log").open("wb") as log:
        stream = subprocess.Popen([str(AGENT), "wal", "stream"], env=environment,
                                  stdout=subprocess.DEVNULL, stderr=log)
    return environment, stream


@contextmanager
def streamed_archive(server: PostgresServer, s3_endpoint: S3Endpoint, work: Path,
                     bucket: str) -> Iterator[Archived]:
    """Stream `server`'s WAL into `bucket` while an insert loop writes for a few seconds
    after a base backup; yield the archive (the stream still running)."""
    s3_endpoint.create_bucket(bucket)
    server.psql("postgres", "ALTER SYSTEM SET track_commit_timestamp = on; "
                            "ALTER SYSTEM SET max_prepared_transactions = 5;")  # 2PC too
    server.restart()
    server.psql("postgres", f"CREATE DATABASE {DATABASE};")
    server.psql(DATABASE, "CREATE TABLE orders (id bigserial PRIMARY KEY, "
                          "at timestamptz NOT NULL);")
    environment, stream = start_streaming(server, DATABASE, s3_endpoint, bucket, work)
    try:
        based = run_agent(["base-backup", "--json"], environment)
        assert based.returncode == 0, based.stderr
        window_start = datetime.fromisoformat(
            json.loads(based.stdout)["end_time"])
        writer = Writer(server, database=DATABASE)
        writer.start()
        time.sleep(4)
        writer.stop.set()
        writer.join(10)
        rows = server.psql(DATABASE, "SELECT id, pg_xact_commit_timestamp(xmin) "
                                     "FROM orders;")
        commits = {int(id_): datetime.fromisoformat(at) for id_, at in
                   (line.split("|") for line in rows.split("\n") if line)}
        yield Archived(server=server, environment=environment,
                       scratch=owned_directory(server, "scratch"), commits=commits,
                       window_start=window_start, stream=stream)
    finally:
        stop(stream, work / "stream.log")


def stop(stream: subprocess.Popen[bytes], log: Path) -> None:
    """SIGTERM the stream; if it has not stopped within 60 s, have it print where it is
    (SIGUSR1: faulthandler) into its log, then kill it and fail with that."""
    stream.terminate()
    try:
        stream.wait(60)
    except subprocess.TimeoutExpired:
        stream.send_signal(signal.SIGUSR1)
        time.sleep(2)
        stream.kill()
        stream.wait(30)
        raise AssertionError("wal stream did not stop within 60 s of SIGTERM: "
                             + log.read_text()[-4000:]) from None


@contextmanager
def served_archive(s3_endpoint: S3Endpoint, tmp_path_factory: pytest.TempPathFactory,
                   name: str) -> Iterator[Archived]:
    """A fresh server and its streamed archive in bucket `name` (a module's fixture)."""
    with running_server() as server, streamed_archive(
            server, s3_endpoint, tmp_path_factory.mktemp(name), name) as archive:
        yield archive
