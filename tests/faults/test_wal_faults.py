"""`wal stream` under faults: S3 down then back, `kill -9` of pg_receivewal or of the stream
mid-segment, a crash between an upload and the local delete, a full spool disk, a server
restart. Each ends with nothing lost (tests/faults/wal_bed.py: the last commit's segment in
S3, and `verify --wal` finding every segment from the base backup to it, signed) and, where
the agent has something to say, one line naming the cause.

The PostgreSQL is the module's own (these tests restart it and kill its clients); each test
has its own slot, spool and bucket. The slot lost past the spool cap needs a server whose
max_slot_wal_keep_size is small: tests/faults/test_wal_slot_faults.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from testbed.faulty_s3 import Request, faulty_s3
from testbed.postgres import PostgresServer, _run_as, free_port, running_server
from testbed.s3 import S3Endpoint
from tests.e2e.test_wal_stream import receivers, state, wait_for
from tests.faults.wal_bed import WalBed, forward, lines_with, make_bed, tear_down

SEGMENT_BYTES = 16 * 1024 * 1024


@pytest.fixture(scope="module")
def primary() -> Iterator[PostgresServer]:
    with running_server() as server:
        yield server


@pytest.fixture
def bed(primary: PostgresServer, s3_endpoint: S3Endpoint, bucket: str,
        tmp_path: Path) -> Iterator[WalBed]:
    made = make_bed(primary, s3_endpoint, bucket, tmp_path)
    yield made
    tear_down(made)


def flushed_into_the_spool(bed: WalBed) -> None:
    """Commit, and wait until pg_receivewal has flushed it (the slot moved past it)."""
    bed.commit()
    written = bed.server.psql("postgres", "SELECT pg_current_wal_lsn();").strip()
    wait_for("the commits in the spool's .partial", lambda: bed.server.psql(
        "postgres", f"SELECT restart_lsn >= '{written}' FROM pg_replication_slots "
                    f"WHERE slot_name = '{bed.slot}';").strip() == "t")


def test_s3_down_for_a_while_then_back_the_spool_drains_with_no_gap(
        bed: WalBed, s3_endpoint: S3Endpoint) -> None:
    port = free_port()
    with faulty_s3(s3_endpoint.url, forward, port=port, hang_up=True) as proxy:
        stream = bed.start(AWS_ENDPOINT_URL_S3=proxy.url)
        wait_for("pg_receivewal", lambda: receivers(bed.slot))
        bed.base_backup()
        first = bed.switch()
        wait_for("WAL in S3", lambda: bed.in_s3(first))
    # S3 is down: its port refuses connections. WAL waits in the spool; the database writes.
    waiting = [bed.switch() for _ in range(3)]
    wait_for("the segments to wait in the spool",
             lambda: set(waiting) <= set(bed.ready_in_spool()))
    [alarm] = wait_for("the alarm", lambda: lines_with(stream, "WAL cannot reach S3"))
    assert "cannot reach S3" in alarm and f"it waits in {bed.spool}" in alarm
    assert state(bed.spool)["unarchived_since"] is not None
    with faulty_s3(s3_endpoint.url, forward, port=port, hang_up=True):  # S3 is back
        wait_for("the spool to drain", lambda: bed.ready_in_spool() == [])
        assert all(bed.in_s3(name) for name in waiting)
        assert lines_with(stream, "S3 takes WAL again")
        bed.assert_nothing_lost()
    assert stream.process.poll() is None, stream.stderr()
    assert state(bed.spool)["alarm"] is None


def test_kill_9_of_pg_receivewal_mid_segment_is_restarted_and_loses_nothing(
        bed: WalBed) -> None:
    stream = bed.start()
    [receiver] = wait_for("pg_receivewal", lambda: receivers(bed.slot))
    bed.base_backup()
    flushed_into_the_spool(bed)
    os.kill(receiver, signal.SIGKILL)
    wait_for("a new pg_receivewal", lambda: [pid for pid in receivers(bed.slot)
                                             if pid != receiver])
    bed.commit()
    bed.assert_nothing_lost()
    [line] = lines_with(stream, "pg_receivewal was killed by SIGKILL")
    assert "restarting" in line, line
    assert stream.process.poll() is None, stream.stderr()


def test_kill_9_of_wal_stream_mid_segment_then_a_restart_loses_nothing(bed: WalBed) -> None:
    stream = bed.start()
    wait_for("pg_receivewal", lambda: receivers(bed.slot))
    bed.base_backup()
    flushed_into_the_spool(bed)
    stream.process.kill()
    stream.process.wait()
    wait_for("pg_receivewal to die with it", lambda: receivers(bed.slot) == [])
    [partial] = bed.spool.glob("*.partial")  # the segment it was writing
    assert partial.stat().st_size == SEGMENT_BYTES
    bed.commit()  # while nothing receives: the slot keeps it on the server
    restarted = bed.start()
    wait_for("pg_receivewal", lambda: receivers(bed.slot))
    bed.assert_nothing_lost()
    [moved] = lines_with(restarted, f"moved {partial.name}")
    assert "the segment the last run was writing" in moved
    assert "resumes from the server's slot" in moved
    assert "ALARM" not in restarted.stderr()


def test_a_crash_between_upload_and_local_delete_is_a_success_on_restart(
        bed: WalBed, s3_endpoint: S3Endpoint) -> None:
    """The stream is killed on the HEAD that confirms an upload: S3 holds the segment and
    the spool still does. The next run uploads it again: equal content, no alarm."""
    crash: dict[str, Any] = {"puts": set()}

    def kill_on_confirm(request: Request) -> float | None:
        if "/wal/" not in request.path or "killed" in crash:
            return None
        if request.is_put_object:
            crash["puts"].add(request.path)
        elif request.method == "HEAD" and request.path in crash["puts"]:
            crash["killed"] = request.path.rsplit("/", 1)[1]
            os.kill(crash["pid"], signal.SIGKILL)
            return 2.0  # nobody is left to answer
        return None

    with faulty_s3(s3_endpoint.url, kill_on_confirm) as proxy:
        stream = bed.start(AWS_ENDPOINT_URL_S3=proxy.url)
        crash["pid"] = stream.process.pid
        wait_for("pg_receivewal", lambda: receivers(bed.slot))
        bed.base_backup()
        bed.switch()
        assert stream.process.wait(60) == -signal.SIGKILL
    segment = crash["killed"]
    assert bed.in_s3(segment) and segment in bed.ready_in_spool()  # in both places
    restarted = bed.start()
    wait_for(f"{segment} to leave the spool", lambda: segment not in bed.ready_in_spool())
    bed.assert_nothing_lost()
    assert lines_with(restarted, f"{segment} was already archived with the same content")
    assert "ALARM" not in restarted.stderr() and state(bed.spool)["alarm"] is None
    assert restarted.process.poll() is None, restarted.stderr()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 128 MiB file system of its own (tmpfs; the tests run as root): room for the
    segment being written and a few complete ones waiting for S3."""
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=128m,mode=0700", "tmpfs", str(disk)],
                   check=True)
    yield disk
    subprocess.run(["umount", "--lazy", str(disk)], check=True)


def fill(ballast: Path, stop: threading.Event) -> None:
    with ballast.open("wb", buffering=0) as filler:
        while not stop.is_set():
            try:
                filler.write(b"\1" * 65536)
            except OSError:
                time.sleep(0.02)


def test_a_full_spool_disk_is_one_line_naming_it_and_the_stream_resumes_without_loss(
        small_disk: Path, bed: WalBed) -> None:  # the disk outlives the stream
    bed.spool = small_disk / "spool"
    bed.spool.mkdir(mode=0o700)
    stream = bed.start()
    wait_for("pg_receivewal", lambda: receivers(bed.slot))
    bed.base_backup()
    flushed_into_the_spool(bed)
    # Something else fills the disk, and takes whatever the uploads free, until the stream
    # finds no room for a segment.
    ballast, stop = small_disk / "ballast", threading.Event()
    hog = threading.Thread(target=fill, args=(ballast, stop), daemon=True)
    hog.start()
    try:
        alarm = wait_for("the alarm", lambda: bed.switch() and lines_with(
            stream, "ALARM: the WAL spool's disk is full"))
    finally:
        stop.set()
        hog.join()
    [line] = alarm
    assert str(bed.spool) in line and "No space left on device" in line, line
    assert receivers(bed.slot) == []  # it stopped taking WAL (its state cannot be written)
    bed.commit()  # the database takes writes: the slot keeps its WAL
    ballast.unlink()  # space returns
    bed.assert_nothing_lost()
    assert stream.process.poll() is None, stream.stderr()
    assert receivers(bed.slot)


def test_a_server_restart_while_streaming_loses_nothing(bed: WalBed) -> None:
    """Down long enough for the stream to notice (a restart with a slow shutdown, a
    reboot): it waits for the server, as an operator expects of a service, and goes on."""
    stream = bed.start()
    [receiver] = wait_for("pg_receivewal", lambda: receivers(bed.slot))
    bed.base_backup()
    flushed_into_the_spool(bed)
    server = bed.server
    # The command line it was started with (pg_ctl restart reuses it the same way).
    options = (server.data_directory / "postmaster.opts").read_text().split(None, 1)[1]
    pg_ctl = [str(server.bin_directory / "pg_ctl"), "-D", str(server.data_directory), "-w"]
    _run_as(server.system_user, [*pg_ctl, "-m", "fast", "stop"])
    wait_for("the stream to find the server gone",
             lambda: lines_with(stream, "the server does not answer"))
    _run_as(server.system_user, [*pg_ctl, "-l", str(server.data_directory.parent / "server.log"),
                                 "-o", options.strip(), "start"])
    bed.commit()
    wait_for("pg_receivewal to reconnect", lambda: [pid for pid in receivers(bed.slot)
                                                    if pid != receiver])
    bed.assert_nothing_lost()
    assert stream.process.poll() is None, stream.stderr()
    assert lines_with(stream, "pg_receivewal exited 1")
    assert "ALARM" not in stream.stderr()
