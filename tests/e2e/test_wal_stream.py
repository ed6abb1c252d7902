"""`backup-agent wal stream` with the real pg_receivewal against the test PostgreSQL 18.

Each test has its own physical slot, spool and bucket; WAL_MAX_DELAY is 1s so that a
forced segment switch comes quickly.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from testbed.postgres import PostgresServer
from testbed.s3 import S3Endpoint
from tests.conftest import AGENT, make_backup, run_agent, signed

_slots = itertools.count(1)
WAIT_SECONDS = 60


def wait_for(what: str, condition: Callable[[], Any], seconds: float = WAIT_SECONDS) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"waited {seconds}s for {what}")


@pytest.fixture
def slot(pg_server: PostgresServer) -> Iterator[str]:
    name = f"test_slot_{os.getpid()}_{next(_slots)}"
    pg_server.psql("postgres", f"SELECT pg_create_physical_replication_slot('{name}', true);")
    yield name
    wait_for("the slot to be released", lambda: slot_active(pg_server, name) is False, 30)
    pg_server.psql("postgres", f"SELECT pg_drop_replication_slot('{name}');")


def slot_active(pg_server: PostgresServer, name: str) -> bool | None:
    answer = pg_server.psql("postgres", "SELECT active FROM pg_replication_slots "
                                        f"WHERE slot_name = '{name}';").strip()
    return None if not answer else answer == "t"


@pytest.fixture
def spool(tmp_path: Path) -> Path:
    directory = tmp_path / "spool"
    directory.mkdir(mode=0o700)
    return directory


@pytest.fixture
def wal_env(agent_env: dict[str, str], slot: str, spool: Path) -> dict[str, str]:
    return {**agent_env, "WAL_SLOT": slot, "WAL_SPOOL_DIR": str(spool), "WAL_MAX_DELAY": "1s",
            "S3_PREFIX": "backups/"}


def receivers(slot: str) -> list[int]:
    """The pids of every pg_receivewal running on `slot`."""
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"pg_receivewal") and slot.encode() in argv:
            found.append(int(entry.name))
    return found


class Streaming:
    def __init__(self, environment: dict[str, str], log: Path) -> None:
        self.log = log
        with log.open("wb") as stderr:
            self.process = subprocess.Popen([str(AGENT), "wal", "stream"], env=environment,
                                            stdout=subprocess.DEVNULL, stderr=stderr)

    def stderr(self) -> str:
        return self.log.read_text()


@pytest.fixture
def streaming(wal_env: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., Streaming]]:
    started: list[Streaming] = []

    def start(**overrides: str) -> Streaming:
        stream = Streaming({**wal_env, **overrides}, tmp_path / f"stream-{len(started)}.log")
        started.append(stream)
        return stream

    yield start
    for stream in started:
        if stream.process.poll() is None:
            stream.process.kill()
            stream.process.wait()


def archived(s3_endpoint: S3Endpoint, bucket: str) -> list[str]:
    answer = s3_endpoint.client().list_objects_v2(Bucket=bucket, Prefix="backups/wal/")
    return [item["Key"] for item in answer.get("Contents", [])]


def state(spool: Path) -> dict[str, Any]:
    path = spool / ".backup-agent" / "state.json"
    return json.loads(path.read_text()) if path.exists() else {}


def write_some_wal(pg_server: PostgresServer, database: str) -> None:
    pg_server.psql(database, "CREATE TABLE IF NOT EXISTS wal_probe (n int); "
                             "INSERT INTO wal_probe SELECT generate_series(1, 100);")


def test_a_small_write_reaches_s3_within_the_max_delay_signed_and_provable(
        streaming: Callable[..., Streaming], pg_server: PostgresServer, database: str,
        s3_endpoint: S3Endpoint, bucket: str, wal_env: dict[str, str], slot: str,
        spool: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stream = streaming()
    wait_for("pg_receivewal", lambda: receivers(slot))
    write_some_wal(pg_server, database)
    keys = wait_for("a segment in S3", lambda: archived(s3_endpoint, bucket), 30)
    assert stream.process.poll() is None, stream.stderr()
    system_identifier = pg_server.psql(
        "postgres", "SELECT system_identifier FROM pg_control_system();").strip()
    assert keys[0].startswith(f"backups/wal/{system_identifier}/00000001/")
    recorded = wait_for("the state", lambda: state(spool).get("last_segment"))
    # Listed again: more segments may have been archived since the first listing.
    assert recorded in [key.rsplit("/", 1)[1] for key in archived(s3_endpoint, bucket)]

    # Read back with the format's own decoder: signed by the server's key, 16 MiB, proven.
    from functools import partial

    from backup_agent.keys.signing import signer
    from backup_agent.model.settings import S3Settings
    from backup_agent.storage.s3 import S3Store
    from backup_agent.wal.prove import fetch_proven

    for variable, value in s3_endpoint.environment().items():
        monkeypatch.setenv(variable, value)
    store = S3Store(S3Settings(bucket=bucket, prefix="backups/"))
    vouch = partial(signer, trusted=[signed({})["TRUSTED_SIGNING_KEYS"]])
    facts = fetch_proven(store, keys[0].removeprefix("backups/"), tmp_path / "segment",
                         vouch=lambda document, text: vouch(document, text))
    assert facts.size == 16 * 1024 * 1024

    # `status` shows what the stream recorded.
    make_backup(wal_env)
    report = json.loads(run_agent(["status", "--json"], wal_env).stdout)
    wal = report["wal"]
    assert wal["slot_name"] == slot and wal["slot"] == "active", wal
    assert wal["receiver"] == "running" and wal["last_segment"] and wal["problem"] is None
    assert wal["lag_seconds"] >= 0 and wal["lag_bytes"] >= 0

    # Stopped, it says so at once (not after minutes of silence) and frees its slot...
    stream.process.send_signal(signal.SIGTERM)
    assert stream.process.wait(timeout=30) == 130, stream.stderr()
    last = state(spool)["last_segment"]
    stopped = json.loads(run_agent(["status", "--json"], wal_env).stdout)["wal"]
    assert (stopped["receiver"], stopped["slot"]) == ("stopped", "inactive"), stopped
    assert "the WAL stream stopped at" in stopped["problem"]
    # ...and started again, it still names the last segment S3 holds, before any new one.
    again = streaming()
    wait_for("the restarted stream's state", lambda: state(spool).get("pid") == again.process.pid)
    assert state(spool)["last_segment"] >= last


def test_sigterm_stops_it_cleanly_with_its_receiver(
        streaming: Callable[..., Streaming], pg_server: PostgresServer, slot: str) -> None:
    stream = streaming()
    wait_for("pg_receivewal", lambda: receivers(slot))
    wait_for("the slot to be active", lambda: slot_active(pg_server, slot))
    stream.process.send_signal(signal.SIGTERM)
    assert stream.process.wait(timeout=30) == 130, stream.stderr()
    assert receivers(slot) == []
    assert "stopped by signal SIGTERM" in stream.stderr()
    assert "waits in WAL_SPOOL_DIR" in stream.stderr()  # not a backup's "nothing published"
    assert "Traceback" not in stream.stderr()


def test_a_second_stream_on_the_same_spool_touches_nothing(
        streaming: Callable[..., Streaming], slot: str, spool: Path) -> None:
    first = streaming()
    wait_for("pg_receivewal", lambda: receivers(slot))
    wait_for("its .partial", lambda: list(spool.glob("*.partial")))
    second = streaming()
    assert second.process.wait(timeout=30) == 6, second.stderr()
    assert "holds the lock on" in second.stderr() and "wal stream" in second.stderr()
    # The first's live .partial was not set aside, and it still streams.
    aside = spool / ".backup-agent" / "aside"
    assert not aside.exists() or not list(aside.iterdir())
    assert first.process.poll() is None, first.stderr()


def test_a_missing_spool_is_named_not_made(streaming: Callable[..., Streaming],
                                           tmp_path: Path) -> None:
    missing = tmp_path / "not-mounted"  # a volume that is not there: never made with umask
    stream = streaming(WAL_SPOOL_DIR=str(missing))
    assert stream.process.wait(timeout=60) == 2, stream.stderr()
    assert "is not a writable directory" in stream.stderr() and not missing.exists()


def test_kill_9_leaves_no_orphan_receiver_holding_the_slot(
        streaming: Callable[..., Streaming], pg_server: PostgresServer, slot: str) -> None:
    stream = streaming()
    wait_for("pg_receivewal", lambda: receivers(slot))
    stream.process.kill()
    stream.process.wait()
    wait_for("pg_receivewal to die with its parent", lambda: receivers(slot) == [], 15)
    wait_for("the slot to be released", lambda: slot_active(pg_server, slot) is False, 15)


def test_an_odd_sized_partial_from_a_crash_is_set_aside_not_fed_to_the_receiver(
        streaming: Callable[..., Streaming], pg_server: PostgresServer, database: str,
        s3_endpoint: S3Endpoint, bucket: str, slot: str, spool: Path) -> None:
    current = pg_server.psql("postgres", "SELECT pg_walfile_name(restart_lsn) FROM "
                                         f"pg_replication_slots WHERE slot_name = '{slot}';")
    torn = spool / f"{current.strip()}.partial"
    torn.write_bytes(b"\0" * 12345)  # what a crash while creating the file can leave
    stream = streaming()
    wait_for("pg_receivewal", lambda: receivers(slot))
    write_some_wal(pg_server, database)
    wait_for("a segment in S3", lambda: archived(s3_endpoint, bucket), 30)
    aside = list((spool / ".backup-agent" / "aside").iterdir())
    assert [path.name.split(".partial")[0] for path in aside] == [current.strip()]
    assert aside[0].stat().st_size == 12345
    assert "not a whole segment" in stream.stderr()


def test_past_the_spool_cap_it_stops_taking_wal_and_alarms(
        streaming: Callable[..., Streaming], pg_server: PostgresServer, database: str,
        slot: str, spool: Path) -> None:
    # S3 unreachable: segments pile up in the spool.
    stream = streaming(AWS_ENDPOINT_URL_S3="http://127.0.0.1:9", AWS_MAX_ATTEMPTS="1",
                       WAL_SPOOL_MAX="64MiB")
    wait_for("pg_receivewal", lambda: receivers(slot))
    for _ in range(5):
        write_some_wal(pg_server, database)
        pg_server.psql(database, "SELECT pg_switch_wal();")
    paused = wait_for("the stream to pause",
                      lambda: state(spool) if state(spool).get("receiver") == "paused" else None)
    assert "WAL_SPOOL_MAX" in paused["alarm"]
    assert receivers(slot) == []
    assert stream.process.poll() is None  # it keeps running, retrying S3
    assert "ALARM: the WAL spool" in stream.stderr()
    stream.process.send_signal(signal.SIGTERM)
    stream.process.wait(timeout=30)


def test_a_missing_slot_is_one_line_naming_wal_setup(
        wal_env: dict[str, str]) -> None:
    result = subprocess.run([str(AGENT), "wal", "stream"],
                            env={**wal_env, "WAL_SLOT": "no_such_slot"}, capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 3
    assert result.stderr.strip().splitlines()[-1] == (
        "backup-agent: error: the replication slot 'no_such_slot' does not exist: run "
        "`backup-agent wal setup --yes` (or fix WAL_SLOT)")


def test_no_aws_credentials_is_a_configuration_error_not_an_endless_alarm(
        wal_env: dict[str, str]) -> None:
    environment = {name: value for name, value in wal_env.items()
                   if name not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    result = subprocess.run([str(AGENT), "wal", "stream"], env=environment,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2, result.stderr
    assert "no AWS credentials" in result.stderr and "Traceback" not in result.stderr


def test_status_fails_when_wal_waits_for_s3_past_three_times_the_max_delay(
        streaming: Callable[..., Streaming], pg_server: PostgresServer, database: str,
        wal_env: dict[str, str], slot: str, spool: Path) -> None:
    """S3 unreachable: the WAL waits in the spool, and `status` (exit 11) says so."""
    make_backup(wal_env)  # a fresh dump backup: only the WAL can make status fail
    unreachable = {"AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9", "AWS_MAX_ATTEMPTS": "1"}
    stream = streaming(**unreachable)
    wait_for("pg_receivewal", lambda: receivers(slot))
    write_some_wal(pg_server, database)
    wait_for("WAL to be waiting", lambda: state(spool).get("unarchived_since"))
    time.sleep(3.5)  # 3 x WAL_MAX_DELAY (1s)
    assert stream.process.poll() is None, stream.stderr()
    result = run_agent(["status", "--json"], wal_env)
    assert result.returncode == 11, result.stdout + result.stderr
    error = json.loads(result.stdout)["error"]
    assert "point-in-time recovery is behind" in error and "not in S3 yet" in error
    assert "cannot reach S3" in error  # the stream's own alarm names the cause


def test_status_shows_the_restorable_window_from_the_oldest_base_backup(
        streaming: Callable[..., Streaming], pg_server: PostgresServer, database: str,
        wal_env: dict[str, str], slot: str, spool: Path) -> None:
    stream = streaming()
    wait_for("pg_receivewal", lambda: receivers(slot))
    based = run_agent(["base-backup", "--json"], wal_env)
    assert based.returncode == 0, based.stderr
    ended = datetime.fromisoformat(json.loads(based.stdout)["end_time"])
    write_some_wal(pg_server, database)
    wait_for("WAL after the base backup in S3", lambda: (
        uploaded := state(spool).get("last_uploaded_at")) and
        datetime.fromisoformat(uploaded) >= ended)
    make_backup(wal_env)
    result = run_agent(["status", "--json"], wal_env)
    assert result.returncode == 0, result.stdout + result.stderr
    window = json.loads(result.stdout)["wal"]["window"]
    assert datetime.fromisoformat(window["start"]) == ended
    assert window["end"] is not None and datetime.fromisoformat(window["end"]) >= ended
    assert stream.process.poll() is None, stream.stderr()


def test_a_slot_made_again_while_the_stream_was_stopped_is_a_hole_it_takes_a_base_backup_after(
        streaming: Callable[..., Streaming], pg_server: PostgresServer, database: str,
        wal_env: dict[str, str], slot: str, spool: Path) -> None:
    """The stream stopped; the slot went while it was (a DBA dropped it to free pg_wal, a
    failover left it behind) and `wal setup` made it again, reserving WAL from then on. The
    restarted stream carried over what the last run archived, took WAL from the new slot,
    and `status` went on saying every moment since the oldest base backup was restorable,
    across WAL nobody archived. It is a lost slot: a new base backup after the hole."""
    stream = streaming()
    wait_for("pg_receivewal", lambda: receivers(slot))
    assert run_agent(["base-backup"], wal_env).returncode == 0
    write_some_wal(pg_server, database)
    wait_for("a segment in S3", lambda: state(spool).get("archived_through"))
    stream.process.terminate()
    stream.process.wait(60)
    wait_for("the slot to be released", lambda: slot_active(pg_server, slot) is False)
    pg_server.psql("postgres", f"SELECT pg_drop_replication_slot('{slot}');")
    for _ in range(3):
        write_some_wal(pg_server, database)
        pg_server.psql("postgres", "SELECT pg_switch_wal();")
    pg_server.psql("postgres", "CHECKPOINT;")  # a new physical slot reserves from its redo
    made = datetime.now(UTC)
    pg_server.psql("postgres", f"SELECT pg_create_physical_replication_slot('{slot}', true);")
    stream = streaming()
    write_some_wal(pg_server, database)
    wait_for("WAL from the new slot in S3", lambda: (
        uploaded := state(spool).get("last_uploaded_at")) and
        datetime.fromisoformat(uploaded) > made)
    deadline = time.monotonic() + 30
    while not state(spool).get("restorable_from") and time.monotonic() < deadline:
        time.sleep(0.2)
    make_backup(wal_env)
    result = run_agent(["status", "--json"], wal_env)
    start = (json.loads(result.stdout).get("wal") or {}).get("window", {}).get("start")
    assert result.returncode != 0 or (start and datetime.fromisoformat(start) > made), (
        f"status claims every moment since {start} restorable across the hole: "
        + result.stdout)
    assert stream.process.poll() is None, stream.stderr()
