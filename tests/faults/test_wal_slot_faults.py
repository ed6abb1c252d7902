"""S3 down past the spool cap: the slot is lost, never the database; once S3 is back the
stream makes the slot again and takes a new base backup, and from then on nothing is lost.

A PostgreSQL of its own with max_slot_wal_keep_size = 32MB (a setting of the whole server),
WAL_SPOOL_MAX = 64MiB, and S3 behind a proxy whose port is closed, then opened again.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from backup_agent.physical.server import PrivateServer
from testbed.faulty_s3 import faulty_s3
from testbed.pitr import owned_directory
from testbed.postgres import PostgresServer, free_port, running_server
from testbed.s3 import S3Endpoint
from tests.conftest import make_backup, run_agent
from tests.e2e.test_wal_stream import receivers, state, wait_for
from tests.faults.wal_bed import forward, lines_with, make_bed, tear_down


@pytest.fixture
def capped() -> Iterator[PostgresServer]:
    with running_server() as server:
        server.psql("postgres", "ALTER SYSTEM SET max_slot_wal_keep_size = '32MB';"
                                "SELECT pg_reload_conf();")
        yield server


def slot_status(server: PostgresServer, slot: str) -> str:
    return server.psql("postgres", "CHECKPOINT; SELECT wal_status FROM pg_replication_slots "
                                   f"WHERE slot_name = '{slot}';").strip()


def test_s3_down_past_the_spool_cap_costs_the_slot_then_a_new_base_backup_restores(
        capped: PostgresServer, s3_endpoint: S3Endpoint, bucket: str, tmp_path: Path) -> None:
    bed = make_bed(capped, s3_endpoint, bucket, tmp_path, WAL_SPOOL_MAX="64MiB")
    port = free_port()
    try:
        with faulty_s3(s3_endpoint.url, forward, port=port, hang_up=True) as proxy:
            stream = bed.start(AWS_ENDPOINT_URL_S3=proxy.url)
            wait_for("pg_receivewal", lambda: receivers(bed.slot))
            bed.base_backup()
            make_backup(bed.environment)  # a fresh dump: `status` can fail on the WAL alone
        # S3 is down: the spool fills to its cap and the stream stops taking WAL; the
        # server keeps WAL for the slot up to 32MB, then drops the slot, not the database.
        wait_for("the stream to stop taking WAL",
                 lambda: bed.switch() and state(bed.spool).get("receiver") == "paused")
        wait_for("the slot to be lost", lambda: bed.switch() and
                 slot_status(capped, bed.slot) == "lost")
        bed.commit()  # the database is up and writable
        [alarm] = wait_for("the alarm", lambda: lines_with(stream, "ALARM: the replication slot"))
        assert f"'{bed.slot}' was lost" in alarm and "makes the slot again" in alarm, alarm
        status = run_agent(["status", "--json"], bed.environment)
        assert status.returncode == 11, status.stdout + status.stderr
        assert "replication slot was lost" in json.loads(status.stdout)["error"]
        assert stream.process.poll() is None, stream.stderr()

        with faulty_s3(s3_endpoint.url, forward, port=port, hang_up=True):  # S3 is back
            rebased = wait_for("a new base backup",
                               lambda: state(bed.spool).get("restorable_from"), 120)
            assert slot_status(capped, bed.slot) in ("reserved", "extended")
            [made] = lines_with(stream, f"made the replication slot '{bed.slot}' again")
            assert "new base backup" in made
            bed.commit()
            last = bed.switch()
            wait_for(f"{last} in S3", lambda: bed.in_s3(last))
        rows = bed.orders()
    finally:
        tear_down(bed)

    # The hole is named, and ends where the new base backup restores again.
    code, report = bed.verify()
    assert code == 8, report
    [gap] = [finding for finding in report["wal"]["findings"] if finding["kind"] == "gap"]
    assert datetime.fromisoformat(gap["window"]["end"]) == datetime.fromisoformat(rebased)
    status = run_agent(["status", "--json"], bed.environment)
    assert json.loads(status.stdout)["wal"]["window"]["start"] == rebased
    # From S3 alone, `latest` brings back every row: those of the outage too.
    pgdata = owned_directory(capped, "restored")
    restored = run_agent(["restore-cluster", "--to-time", "latest", "--pgdata", str(pgdata),
                          "--json"], bed.environment)
    assert restored.returncode == 0, restored.stdout + restored.stderr
    owner = (pgdata.stat().st_uid, pgdata.stat().st_gid)
    with PrivateServer(capped.bin_directory, pgdata, {}, owner=owner) as server:
        counted = wait_for("the restored cluster", lambda: server.query(
            "SELECT count(*) FROM public.orders"))
        server.stop()
    assert counted == (rows,)
