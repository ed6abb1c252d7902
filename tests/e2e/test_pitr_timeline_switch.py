"""A production PITR makes a new timeline: the restored cluster becomes the primary, `wal
setup` gives it a new slot, `wal stream` stores its `.history` and its segments, and a later
`restore-cluster --to-time latest` follows the new timeline from the old base backup.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from backup_agent.model.wal_positions import parse_lsn
from backup_agent.physical.server import PrivateServer
from testbed.pitr import owned_directory
from testbed.postgres import PostgresServer, running_server
from testbed.s3 import S3Endpoint
from tests.conftest import AGENT, run_agent
from tests.streamed_archive import DATABASE, stop, streamed_archive


def _stream(environment: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as handle:
        return subprocess.Popen([str(AGENT), "wal", "stream"], env=environment,
                                stdout=subprocess.DEVNULL, stderr=handle)


def _wait_until_archived(environment: dict[str, str], written: str) -> None:
    """Until the stream's state says S3 holds timeline 2's WAL up to LSN `written`
    (WAL_MAX_DELAY is 1 s). Not "lag 0 and last file 00000002…": the .history is uploaded
    first, before the stream has measured anything."""
    state_file = Path(environment["WAL_SPOOL_DIR"]) / ".backup-agent" / "state.json"
    deadline = time.monotonic() + 60
    state: dict[str, object] = {}
    while time.monotonic() < deadline:
        if state_file.exists():
            state = json.loads(state_file.read_text())
            through = state.get("archived_through")
            if state.get("timeline") == 2 and isinstance(through, str) and \
                    parse_lsn(through) >= parse_lsn(written):
                return
        time.sleep(0.5)
    raise AssertionError(f"timeline 2's WAL did not reach S3 within 60 s: {state}")


def _pg_ctl(server: PostgresServer, *arguments: str) -> None:
    subprocess.run([str(server.bin_directory / "pg_ctl"), "-D", str(server.data_directory),
                    *arguments], user=server.system_user, capture_output=True, check=True,
                   cwd="/")


def _start_on(server: PostgresServer, restored: Path) -> None:
    """Production after a PITR: the restored directory becomes the (stopped) server's,
    started as the primary on the same address."""
    server.data_directory.rename(server.data_directory.with_name(
        f"data.before-{restored.name}"))
    restored.rename(server.data_directory)
    options = (f"-h 127.0.0.1 -p {server.port} -k {server.data_directory.parent / 'socket'} "
               "-c fsync=off")
    _pg_ctl(server, "-w", "-t", "60", "-l", str(server.data_directory.parent / "server.log"),
            "-o", options, "start")


def test_restore_follows_the_timeline_a_production_pitr_made(
        s3_endpoint: S3Endpoint, tmp_path: Path) -> None:
    with running_server() as server:
        _switch_and_follow(server, s3_endpoint, tmp_path)


def _switch_and_follow(server: PostgresServer, s3_endpoint: S3Endpoint, tmp_path: Path) -> None:
    (tmp_path / "first").mkdir()
    with streamed_archive(server, s3_endpoint, tmp_path / "first",
                          "test-timeline-switch") as archived:
        moments = sorted(archived.commits.values())
        target = moments[len(moments) // 2]
        kept = archived.committed_by(target)
        environment = archived.environment
    # Production is stopped and restored as of `target`: it starts on timeline 2.
    _pg_ctl(server, "-m", "fast", "-w", "stop")
    restored = owned_directory(server, "restored", server.data_directory.parent)
    first = run_agent(["restore-cluster", "--to-time", target.isoformat(), "--pgdata",
                       str(restored)], environment)
    assert first.returncode == 0, first.stdout + first.stderr
    _start_on(server, restored)
    assert archived.orders(DATABASE) == kept
    setup = run_agent(["wal", "setup", "--yes"], environment)  # a restored cluster has no slot
    assert setup.returncode == 0, setup.stdout + setup.stderr
    stream = _stream(environment, tmp_path / "second-stream.log")
    try:
        server.psql(DATABASE, "INSERT INTO orders (id, at) SELECT 100000 + g, clock_timestamp()"
                              " FROM generate_series(1, 5) AS g;")
        after = archived.orders(DATABASE)
        _wait_until_archived(environment, server.psql(
            "postgres", "SELECT pg_current_wal_lsn();").strip())
    finally:
        stop(stream, tmp_path / "second-stream.log")
    listing = run_agent(["verify", "--wal", "--json"], environment)
    assert listing.returncode == 0, listing.stdout + listing.stderr  # no false gap across it
    assert json.loads(listing.stdout)["wal"]["clusters"][0]["timelines"] == [1, 2]

    _pg_ctl(server, "-m", "fast", "-w", "stop")  # the server is lost; S3 has everything
    again = owned_directory(server, "again", server.data_directory.parent)
    second = run_agent(["restore-cluster", "--to-time", "latest", "--pgdata", str(again),
                        "--json"], environment)
    assert second.returncode == 0, second.stdout + second.stderr
    owner = (again.stat().st_uid, again.stat().st_gid)
    with PrivateServer(server.bin_directory, again, {}, owner=owner) as private:
        private.wait_until_ready()
        row = private.query("SELECT pg_is_in_recovery()")
        private.stop()
    assert row == (False,)
    _start_on(server, again)
    assert archived.orders(DATABASE) == after  # timeline 2's rows, none of timeline 1's after T
    _drill_across_the_switch(environment, s3_endpoint)


def _drill_across_the_switch(environment: dict[str, str], s3_endpoint: S3Endpoint) -> None:
    """The drill restores moments on both sides of the switch exactly; without timeline 2's
    `.history` file it cannot follow the switch, and says so before restoring anything."""
    drill = run_agent(["drill", "--targets", "2", "--json"], environment)
    assert drill.returncode == 0, drill.stdout + drill.stderr
    assert json.loads(drill.stdout)["drill"]["exact"] == 2
    client = s3_endpoint.client()
    bucket = environment["S3_BUCKET"]
    history = [item["Key"] for item in client.list_objects_v2(Bucket=bucket)["Contents"]
               if item["Key"].endswith("00000002.history")]
    assert len(history) == 1, history
    client.delete_object(Bucket=bucket, Key=history[0])
    for command in (["verify", "--wal"], ["drill", "--targets", "2"]):
        result = run_agent(command, environment)
        assert result.returncode == 8, result.stdout + result.stderr
        assert "history" in (result.stdout + result.stderr).lower(), result.stdout
