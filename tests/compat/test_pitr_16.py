"""Recovery to a moment with PostgreSQL 16.2's binaries (pgserver): exact to the commit."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from backup_agent.model.targets import RecoveryTarget
from backup_agent.physical.base_source import local_base_backup
from backup_agent.physical.handout import LocalWal
from backup_agent.physical.recovery import Recovery, recover
from backup_agent.physical.server import PrivateServer
from testbed.pitr import ArchivedCluster, archived_cluster, copy_of, owned_directory
from testbed.postgres16 import running_server_16
from testbed.s3 import S3Endpoint
from tests.conftest import run_agent
from tests.streamed_archive import DATABASE, streamed_archive


@pytest.fixture(scope="module")
def cluster() -> Iterator[ArchivedCluster]:
    with running_server_16() as server:
        yield archived_cluster(server)


def test_recovery_on_16_has_every_commit_up_to_the_time_and_none_after(
        cluster: ArchivedCluster) -> None:
    ident, moment = random.Random().choice(cluster.commits[4:-1])  # noqa: S311 - test data
    following = dict(cluster.commits)[ident + 1]
    target = moment + (following - moment) / 3
    directory = owned_directory(cluster.server, "restored")
    local_base_backup(cluster.base).extract_into(directory, cluster.owner)
    wal = copy_of(cluster, cluster.archive, "wal")
    reached = recover(Recovery(data_directory=directory, wal_directory=wal,
                               target=RecoveryTarget(moment=target), timeline=1,
                               bin_directory=cluster.server.bin_directory, owner=cluster.owner,
                               timeout_seconds=120, file_wait_seconds=30), LocalWal(wal))
    assert reached.last_commit == moment
    with PrivateServer(cluster.server.bin_directory, directory, {},
                       owner=cluster.owner) as server:
        for _ in range(300):
            if (row := server.query("SELECT pg_is_in_recovery(), array_agg(id ORDER BY id) "
                                    "FROM public.ticks")) is not None:
                break
            time.sleep(0.1)
        server.stop()
    assert row is not None and row[0] is False and list(row[1]) == list(range(1, ident + 1))


def test_one_database_as_of_five_moments_on_16(s3_endpoint: S3Endpoint,
                                              tmp_path: Path) -> None:
    """`restore --to-time` end to end on 16.2: wal stream, base-backup, the throwaway cluster,
    its dump and the swap all with 16's binaries."""
    with running_server_16() as server, streamed_archive(
            server, s3_endpoint, tmp_path, "test-restore-to-time-16") as archived:
        moments = sorted(archived.commits.values())
        for moment in random.Random().sample(moments[len(moments) // 10:-2], 5):  # noqa: S311
            result = run_agent(["restore", "--to-time", moment.isoformat(), "--scratch",
                                str(archived.scratch), "--yes", "--json"],
                               archived.environment)
            assert result.returncode == 0, result.stdout + result.stderr
            assert archived.orders(DATABASE) == archived.committed_by(moment), moment
            previous = json.loads(result.stdout)["previous_database"]
            assert archived.orders(previous) == set(archived.commits)
            server.psql("postgres", f"DROP DATABASE {DATABASE} WITH (FORCE); "
                                    f"ALTER DATABASE {previous} RENAME TO {DATABASE};")
