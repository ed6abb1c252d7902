"""Recovery of a base backup to a moment, with real PostgreSQL 18 binaries: exact to the
commit, promoted, shut down cleanly, ready to start; refused outside the window; a hole is
a hole."""

from __future__ import annotations

import random
import re
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from backup_agent.model.errors import (
    ConfigurationError,
    RestoreError,
    ToolMissingError,
    VerificationError,
)
from backup_agent.model.targets import RecoveryTarget
from backup_agent.model.wal_positions import segment_name as segment_file
from backup_agent.physical.base_source import local_base_backup
from backup_agent.physical.handout import LocalWal
from backup_agent.physical.inspect import control_facts, refuse_incompatible
from backup_agent.physical.recovery import Recovery, recover
from backup_agent.physical.server import PrivateServer
from backup_agent.physical.wal_files import SEGMENT_NAME
from backup_agent.physical.window import restorable_window
from testbed.pitr import ArchivedCluster, archived_cluster, copy_of, owned_directory
from testbed.postgres import running_server
from testbed.postgres16 import pg16_bin_directory

SEGMENT_BYTES = 16 * 1024 * 1024


@pytest.fixture(scope="module")
def cluster() -> Iterator[ArchivedCluster]:
    with running_server() as server:
        yield archived_cluster(server)


def restored(cluster: ArchivedCluster, target: RecoveryTarget, *, wal: Path | None = None,
             timeout: float = 120) -> tuple[Path, object]:
    directory = owned_directory(cluster.server, "restored")
    base = local_base_backup(cluster.base)
    base.extract_into(directory, cluster.owner)
    wal_directory = wal or copy_of(cluster, cluster.archive, "wal")
    reached = recover(Recovery(data_directory=directory, wal_directory=wal_directory,
                               target=target, timeline=1,
                               bin_directory=cluster.server.bin_directory, owner=cluster.owner,
                               timeout_seconds=timeout, file_wait_seconds=30),
                      LocalWal(wal_directory))
    return directory, reached


def rows_and_role(cluster: ArchivedCluster, directory: Path) -> tuple[list[int], bool]:
    """Start the restored directory as it is (no recovery settings) and read it."""
    with PrivateServer(cluster.server.bin_directory, directory, {},
                       owner=cluster.owner) as server:
        for _ in range(300):
            if (row := server.query("SELECT pg_is_in_recovery(), "
                                    "array_agg(id ORDER BY id) FROM public.ticks")) is not None:
                break
            time.sleep(0.1)
        assert row is not None, server.log_text()
        server.stop()
    return list(row[1]), bool(row[0])


def after_base(cluster: ArchivedCluster) -> list[tuple[int, datetime]]:
    return cluster.commits[3:-1]  # the first three are in the base backup


def test_recovery_to_a_time_has_every_commit_up_to_it_and_none_after(
        cluster: ArchivedCluster) -> None:
    chooser = random.Random()  # noqa: S311 - test data
    picks = chooser.sample(after_base(cluster), 3)
    for index, (ident, moment) in enumerate(picks):
        next_moment = dict(cluster.commits)[ident + 1]
        # Exactly at a commit (inclusive) or between two commits.
        target = moment if index == 0 else moment + (next_moment - moment) / 2
        directory, reached = restored(cluster, RecoveryTarget(moment=target))
        rows, in_recovery = rows_and_role(cluster, directory)
        assert rows == list(range(1, ident + 1)), (target, reached)
        assert not in_recovery  # a primary, on its new timeline
        assert reached.last_commit == moment and reached.timeline == "00000002"  # type: ignore[attr-defined]
        assert not (directory / "recovery.signal").exists()


def test_latest_recovers_everything_the_archive_holds(cluster: ArchivedCluster) -> None:
    directory, _reached = restored(cluster, RecoveryTarget(moment=None))
    rows, in_recovery = rows_and_role(cluster, directory)
    assert rows == [ident for ident, _moment in cluster.commits] and not in_recovery


def test_a_missing_segment_in_the_middle_is_a_hole_not_the_end(cluster: ArchivedCluster) -> None:
    wal = copy_of(cluster, cluster.archive, "wal-with-hole")
    segments = sorted(path.name for path in wal.iterdir() if SEGMENT_NAME.match(path.name))
    base = local_base_backup(cluster.base)
    first = segment_file(1, base.end_lsn // SEGMENT_BYTES, SEGMENT_BYTES)
    middle = next(name for name in segments if name > first)
    (wal / middle).unlink()
    with pytest.raises(RestoreError, match=f"{middle} is missing .* the archive has a hole"):
        restored(cluster, RecoveryTarget(moment=None), wal=wal)


def window_of(cluster: ArchivedCluster) -> tuple[datetime, datetime]:
    base = local_base_backup(cluster.base)
    segments = sorted(path.name for path in cluster.archive.iterdir()
                      if SEGMENT_NAME.match(path.name))
    window = restorable_window(
        cluster.server.bin_directory, base, base_wal=cluster.archive,
        base_segments=(segment_file(1, base.start_lsn // SEGMENT_BYTES, SEGMENT_BYTES),
                       segment_file(1, base.end_lsn // SEGMENT_BYTES, SEGMENT_BYTES)),
        tail_wal=cluster.archive, tail_segments=segments[-3:])
    assert window.earliest is not None and window.latest is not None
    return window.earliest, window.latest


def test_the_window_runs_from_the_base_backup_to_the_last_archived_commit(
        cluster: ArchivedCluster) -> None:
    earliest, latest = window_of(cluster)
    assert cluster.commits[2][1] <= earliest < cluster.commits[3][1]
    assert latest == cluster.commits[-1][1]


@pytest.mark.parametrize("where", ["before", "after"])
def test_a_time_outside_the_window_is_refused_naming_it(cluster: ArchivedCluster,
                                                        where: str) -> None:
    from backup_agent.model.targets import Window

    earliest, latest = window_of(cluster)
    moment = earliest - timedelta(seconds=5) if where == "before" else latest
    with pytest.raises(ConfigurationError, match=f"{where} .*restorable window is from "
                                                 f"{re.escape(earliest.isoformat())}"):
        Window(earliest=earliest, latest=latest).check(RecoveryTarget(moment=moment))


def test_a_base_backup_these_binaries_cannot_run_is_refused_before_anything_starts(
        cluster: ArchivedCluster) -> None:
    directory = owned_directory(cluster.server, "refused")
    local_base_backup(cluster.base).extract_into(directory, cluster.owner)
    binaries = cluster.server.bin_directory
    facts = control_facts(binaries, directory)
    refuse_incompatible(binaries, directory, facts, system_identifier=facts.system_identifier)
    with pytest.raises(ToolMissingError, match="is PostgreSQL 18, these binaries are 16"):
        refuse_incompatible(pg16_bin_directory(), directory, facts, system_identifier=None)
    with pytest.raises(VerificationError, match="its descriptor 42"):
        refuse_incompatible(binaries, directory, facts, system_identifier="42")
    # pg_control as a machine of the other byte order wrote it: pg_control_version swapped.
    control = directory / "global" / "pg_control"
    data = bytearray(control.read_bytes())
    data[8:12] = data[8:12][::-1]
    control.write_bytes(bytes(data))
    foreign = control_facts(binaries, directory)
    with pytest.raises(ToolMissingError, match="another CPU architecture"):
        refuse_incompatible(binaries, directory, foreign, system_identifier=None)
