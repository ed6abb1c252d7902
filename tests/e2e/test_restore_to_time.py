"""`restore --to-time T`: one database as of T into the running server, from S3 alone.

One primary under an insert loop, its WAL streamed by `wal stream` and a base backup by
`base-backup`, both signed, in moto. Each restore is compared with the commit timestamps
the primary itself recorded (track_commit_timestamp): every row committed at or before T
is there, none after.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from testbed.pitr import owned_directory
from testbed.postgres import PostgresServer, running_server
from testbed.s3 import S3Endpoint
from tests.conftest import AGENT, clean_environment, run_agent, signed
from tests.e2e.test_pitr_from_s3 import Writer

DATABASE = "shop"


@dataclass
class Archived:
    server: PostgresServer
    environment: dict[str, str]
    scratch: Path
    commits: dict[int, datetime]  # each order's id and its transaction's commit time
    window_start: datetime  # no earlier T is restorable (the base backup's end)

    def committed_by(self, moment: datetime) -> set[int]:
        return {id_ for id_, at in self.commits.items() if at <= moment}

    def orders(self, database: str) -> set[int]:
        text = self.server.psql(database, "SELECT id FROM orders;")
        return {int(line) for line in text.split()}


@pytest.fixture(scope="module")
def archived(s3_endpoint: S3Endpoint,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[Archived]:
    work = tmp_path_factory.mktemp("to-time")
    bucket = "test-restore-to-time"
    s3_endpoint.create_bucket(bucket)
    with running_server() as server:
        server.psql("postgres", "ALTER SYSTEM SET track_commit_timestamp = on;")
        server.restart()
        server.psql("postgres", f"CREATE DATABASE {DATABASE};")
        server.psql(DATABASE, "CREATE TABLE orders (id bigserial PRIMARY KEY, "
                              "at timestamptz NOT NULL);")
        spool = work / "spool"
        spool.mkdir(mode=0o700)
        (work / "backups").mkdir()
        environment = signed({**clean_environment(), **server.environment(DATABASE),
                              **s3_endpoint.environment(), "S3_BUCKET": bucket,
                              "BACKUP_DIR": str(work / "backups"), "WAL_SPOOL_DIR": str(spool),
                              "WAL_MAX_DELAY": "1s", "AWS_MAX_ATTEMPTS": "2"})
        setup = run_agent(["wal", "setup", "--yes"], environment)
        assert setup.returncode == 0, setup.stdout + setup.stderr
        with (work / "stream.log").open("wb") as log:
            stream = subprocess.Popen([str(AGENT), "wal", "stream"], env=environment,
                                      stdout=subprocess.DEVNULL, stderr=log)
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
                           window_start=window_start)
        finally:
            stream.terminate()
            stream.wait(30)


def _to_time(archived: Archived, moment: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return run_agent(["restore", "--to-time", moment, "--scratch", str(archived.scratch),
                      "--yes", "--json", *extra], archived.environment)


def test_one_database_as_of_random_moments_swapped_in_exactly(archived: Archived) -> None:
    moments = sorted(archived.commits.values())
    for moment in secrets.SystemRandom().sample(moments[len(moments) // 10:-2], 3):
        target = moment + timedelta(microseconds=secrets.choice([0, 1, 300]))
        result = _to_time(archived, target.isoformat())
        assert result.returncode == 0, result.stdout + result.stderr
        data = json.loads(result.stdout)
        assert archived.orders(DATABASE) == archived.committed_by(target), target
        assert data["last_commit"] is not None
        assert datetime.fromisoformat(data["last_commit"]) <= target
        # the previous database is kept, whole, for rollback
        assert archived.orders(data["previous_database"]) == set(archived.commits)
        archived.server.psql("postgres", f"DROP DATABASE {DATABASE} WITH (FORCE); ALTER DATABASE "
                                         f"{data['previous_database']} RENAME TO {DATABASE};")


def test_beside_the_database_with_target_db_nothing_is_replaced(archived: Archived) -> None:
    target = sorted(archived.commits.values())[len(archived.commits) // 2]
    result = _to_time(archived, target.isoformat().replace("+00:00", "Z"), "--target-db",
                      "shop_at_t")
    assert result.returncode == 0, result.stdout + result.stderr
    assert archived.orders("shop_at_t") == archived.committed_by(target)
    assert archived.orders(DATABASE) == set(archived.commits)
    archived.server.psql("postgres", "DROP DATABASE shop_at_t;")


def test_a_dry_run_recovers_and_proves_but_changes_nothing(archived: Archived) -> None:
    target = sorted(archived.commits.values())[len(archived.commits) // 3]
    before = archived.server.psql("postgres", "SELECT datname FROM pg_database ORDER BY 1;")
    result = run_agent(["restore", "--to-time", target.isoformat(), "--scratch",
                        str(archived.scratch), "--dry-run"], archived.environment)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "recovered as of" in result.stderr and "dry run" in result.stderr
    assert archived.server.psql("postgres", "SELECT datname FROM pg_database ORDER BY 1;") \
        == before
    assert not list(archived.scratch.iterdir())  # the throwaway cluster is gone


def test_latest_closes_the_current_segment_and_brings_back_everything(
        archived: Archived) -> None:
    archived.server.psql(DATABASE, "INSERT INTO orders (at) VALUES (clock_timestamp());")
    every = archived.orders(DATABASE)
    result = _to_time(archived, "latest", "--target-db", "shop_latest")
    assert result.returncode == 0, result.stdout + result.stderr
    assert archived.orders("shop_latest") == every
    archived.server.psql("postgres", "DROP DATABASE shop_latest;")
    archived.server.psql(DATABASE, f"DELETE FROM orders WHERE id > {max(archived.commits)};")


@pytest.mark.parametrize("when", ["future", "before the window", "no offset"])
def test_a_time_it_cannot_restore_is_refused_up_front(archived: Archived, when: str) -> None:
    moment = {"future": (datetime.now().astimezone() + timedelta(hours=1)).isoformat(),
              "before the window": (archived.window_start - timedelta(hours=1)).isoformat(),
              "no offset": "2026-12-02T14:03:00"}[when]
    result = _to_time(archived, moment)
    assert result.returncode == (9 if when == "before the window" else 2), result.stdout
    error = json.loads(result.stdout)["error"]
    assert {"future": "in the future", "before the window": "base backup",
            "no offset": "no UTC offset"}[when] in error
    assert archived.orders(DATABASE) == set(archived.commits)
    assert not list(archived.scratch.iterdir())
