"""`restore --to-time T` attacked at the seams of the throwaway cluster: what runs in it
besides the agent while it is up (its own background workers), and what that does to the
dump the one-run key signs and to the servers around it.

The archive is the one `tests/streamed_archive.py` streams (PostgreSQL 18, moto).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from backup_agent.model.settings import S3Settings
from backup_agent.storage.s3 import S3Store
from testbed.postgres import PostgresServer, running_server
from testbed.s3 import S3Endpoint
from tests.conftest import run_agent
from tests.streamed_archive import DATABASE, Archived, served_archive


@pytest.fixture(scope="module")
def archived(s3_endpoint: S3Endpoint,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[Archived]:
    with served_archive(s3_endpoint, tmp_path_factory, "test-restore-to-time-seams") as archive:
        yield archive


@pytest.fixture
def publisher() -> Iterator[PostgresServer]:
    with running_server() as server:
        server.psql("postgres", "ALTER SYSTEM SET wal_level = logical;")
        server.restart()
        server.psql("postgres", "CREATE TABLE feed (id int PRIMARY KEY); "
                                "CREATE PUBLICATION feed FOR TABLE feed;")
        yield server


def test_a_planted_base_backup_of_another_cluster_does_not_stop_restore_to_time(
        archived: Archived, s3_endpoint: S3Endpoint, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the writer's AWS key, one object under `base/<another system identifier>/`
    (nothing signed it) made the bucket hold "base backups of 2 clusters", and `restore
    --to-time`, which has no --system-identifier to choose, refused every time: a planted
    descriptor is passed over everywhere else ("planting one must not stop every
    restore")."""
    for variable, value in s3_endpoint.environment().items():
        monkeypatch.setenv(variable, value)
    store = S3Store(S3Settings(bucket=archived.environment["S3_BUCKET"]))
    store.put_bytes(f"{store.prefix}base/7000000000000000001/20240101T000000Z/descriptor.json",
                    b"{}", action="plant")
    result = run_agent(["restore", "--to-time", "latest", "--scratch", str(archived.scratch),
                        "--dry-run"], archived.environment)
    assert result.returncode == 0, result.stdout + result.stderr


def _wait(server: PostgresServer, database: str, sql: str, expected: str) -> None:
    deadline = time.monotonic() + 60
    while server.psql(database, sql).strip() != expected:
        assert time.monotonic() < deadline, f"{sql} never returned {expected!r}"
        time.sleep(0.2)


def test_a_subscription_at_t_does_not_replicate_into_the_throwaway_cluster(
        archived: Archived, publisher: PostgresServer) -> None:
    """A subscription enabled at T is in the recovered cluster too, and the throwaway
    server started it: its logical replication launcher connected to the publisher with the
    subscription's connection string, took the slot (production's, stopped after T) and
    applied what was published after T into the database pg_dump then read. The signed
    dump held rows that were never there at T, and the publisher's slot moved on past
    changes production's own subscription never received."""
    server = archived.server
    server.psql(DATABASE, f"""
        CREATE TABLE feed (id int PRIMARY KEY);
        CREATE SUBSCRIPTION feed CONNECTION 'host={publisher.host} port={publisher.port}
            user={publisher.user} password={publisher.password} dbname=postgres'
            PUBLICATION feed;""")
    try:
        _wait(publisher, "postgres", "SELECT count(*) FROM pg_replication_slots "
                                     "WHERE active AND slot_name = 'feed';", "1")
        time.sleep(1.5)
        moment = datetime.now(UTC)
        time.sleep(1.5)
        server.psql(DATABASE, "ALTER SUBSCRIPTION feed DISABLE;")  # after T
        _wait(publisher, "postgres", "SELECT count(*) FROM pg_replication_slots "
                                     "WHERE active AND slot_name = 'feed';", "0")
        publisher.psql("postgres", "INSERT INTO feed SELECT generate_series(1, 3);")
        confirmed = publisher.psql("postgres", "SELECT confirmed_flush_lsn FROM "
                                               "pg_replication_slots WHERE slot_name = 'feed';")
        result = run_agent(["restore", "--to-time", moment.isoformat(), "--scratch",
                            str(archived.scratch), "--target-db", "shop_feed", "--yes"],
                           archived.environment)
        assert result.returncode == 0, result.stdout + result.stderr
        assert server.psql("shop_feed", "SELECT count(*) FROM feed;").strip() == "0", (
            "the signed dump holds rows published after T")
        assert publisher.psql("postgres", "SELECT confirmed_flush_lsn FROM pg_replication_slots"
                                          " WHERE slot_name = 'feed';") == confirmed, (
            "the throwaway cluster consumed the publisher's slot")
    finally:
        server.psql(DATABASE, "ALTER SUBSCRIPTION feed DISABLE; "
                              "ALTER SUBSCRIPTION feed SET (slot_name = NONE); "
                              "DROP SUBSCRIPTION feed; DROP TABLE feed;", check=False)
        server.psql("postgres", "DROP DATABASE IF EXISTS shop_feed WITH (FORCE);",
                    check=False)
