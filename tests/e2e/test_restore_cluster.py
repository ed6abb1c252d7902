"""`backup-agent restore-cluster`: the whole cluster as of T, WAL from S3 proven on the way."""

from __future__ import annotations

import json
import pwd
from collections.abc import Iterator
from pathlib import Path

import pytest

from backup_agent.physical.server import PrivateServer
from testbed.pitr import ArchivedCluster, archived_cluster, owned_directory
from testbed.postgres import running_server
from testbed.s3 import S3Endpoint
from tests.conftest import clean_environment, run_agent
from tests.pitr_archive import uploaded_archive


@pytest.fixture(scope="module")
def cluster() -> Iterator[ArchivedCluster]:
    with running_server() as server:
        yield archived_cluster(server)


@pytest.fixture
def environment(cluster: ArchivedCluster, s3_endpoint: S3Endpoint, bucket: str,
                monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The archive's WAL uploaded to `bucket` by the uploader, signed by the server's key."""
    return uploaded_archive(cluster, s3_endpoint, bucket, monkeypatch)


def test_a_cluster_restores_as_of_a_time_from_the_archive_in_s3(
        cluster: ArchivedCluster, environment: dict[str, str]) -> None:
    ident, moment = cluster.commits[-6]
    pgdata = owned_directory(cluster.server, "pgdata")
    # --pgdata relative to where the command runs (the server itself runs from /)
    result = run_agent(["restore-cluster", "--to-time", moment.isoformat(), "--pgdata",
                        pgdata.name, "--base-backup", str(cluster.base), "--json"], environment,
                       cwd=pgdata.parent)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["last_commit"] == moment.isoformat() and report["trusted"] is False
    # How to start it: as the directory's owner, with this major's pg_ctl.
    owner = pwd.getpwuid(cluster.owner[0]).pw_name
    assert f"start it as {owner}: " in result.stderr, result.stderr
    assert f"pg_ctl -D {pgdata} start" in result.stderr
    with PrivateServer(cluster.server.bin_directory, pgdata, {}, owner=cluster.owner) as server:
        import time

        for _ in range(300):
            if (row := server.query("SELECT pg_is_in_recovery(), max(id) FROM public.ticks")):
                break
            time.sleep(0.1)
        server.stop()
    assert row == (False, ident)


def test_a_system_identifier_that_is_not_a_number_is_a_usage_error(tmp_path: Path) -> None:
    result = run_agent(["restore-cluster", "--to-time", "latest", "--pgdata", str(tmp_path),
                        "--system-identifier", "abc"], clean_environment())
    assert result.returncode == 2 and "is not a system identifier" in result.stderr


@pytest.mark.parametrize(("to_time", "message"), [
    ("2026-12-02 21:05:09", "has no UTC offset"),
    ("latest-ish", "is not a time"),
])
def test_a_bad_time_is_one_line_and_exit_2(cluster: ArchivedCluster, to_time: str,
                                           message: str, tmp_path: Path) -> None:
    result = run_agent(["restore-cluster", "--to-time", to_time, "--pgdata", str(tmp_path),
                        "--base-backup", str(cluster.base)], clean_environment())
    assert result.returncode == 2 and message in result.stderr
    assert "Traceback" not in result.stderr


def test_a_time_after_the_last_commit_is_refused_and_the_directory_left_empty(
        cluster: ArchivedCluster, environment: dict[str, str]) -> None:
    pgdata = owned_directory(cluster.server, "pgdata")
    late = cluster.commits[-1][1].isoformat()
    result = run_agent(["restore-cluster", "--to-time", late, "--pgdata", str(pgdata),
                        "--base-backup", str(cluster.base)], environment)
    assert result.returncode == 2, result.stderr
    assert "at or after the last archived commit" in result.stderr
    assert "use --to-time latest" in result.stderr and not list(pgdata.iterdir())
