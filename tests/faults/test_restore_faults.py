"""Real faults injected into real restores: the original database always survives."""

from __future__ import annotations

import gzip
import hashlib
import os
import signal
import time
from pathlib import Path

import psutil
import pytest

from testbed.postgres import PostgresServer
from testbed.sample_data import fingerprint
from tests.conftest import docker_calls, make_backup, run_agent
from tests.faults.conftest import finish, freeze, start_agent, thaw
from tests.faults.table import expect


def state(pg_server: PostgresServer, database: str) -> tuple[set[str], dict[str, str]]:
    return pg_server.database_names(), fingerprint(pg_server, database)


def wait_until_restoring(pg_server: PostgresServer, database: str) -> None:
    """Return once the agent is connected to the database being built (its own sessions:
    no psql runs a restore)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        connected = pg_server.psql("postgres", "SELECT count(*) FROM pg_stat_activity "
                                               f"WHERE datname LIKE '{database}_restore_%';")
        if int(connected) > 0:
            return
        time.sleep(0.005)
    raise AssertionError("the restore never connected")


def test_server_restarted_during_the_restore(agent_env: dict[str, str],
                                             pg_server: PostgresServer, database: str) -> None:
    make_backup(agent_env)
    before = state(pg_server, database)
    agent = start_agent(["restore", "latest", "--yes"], agent_env)
    wait_until_restoring(pg_server, database)
    process = psutil.Process(agent.pid)
    freeze(process)  # mid-build: its next statement meets a server that restarted
    pg_server.restart()
    thaw(process)
    result = finish(agent)
    expect(result, "PostgreSQL restarted during the restore")
    assert state(pg_server, database) == before


def test_sigterm_during_the_restore(agent_env: dict[str, str], docker_shim: dict[str, str],
                                    pg_server: PostgresServer, database: str) -> None:
    make_backup(agent_env)
    environment = {**agent_env, **docker_shim, "APP_CONTAINERS": "web"}
    before = state(pg_server, database)
    agent = start_agent(["restore", "latest", "--yes"], environment)
    wait_until_restoring(pg_server, database)
    process = psutil.Process(agent.pid)
    freeze(process)
    os.kill(agent.pid, signal.SIGTERM)  # delivered as it goes on
    thaw(process)
    result = finish(agent)
    expect(result, "SIGTERM during the restore")
    assert state(pg_server, database) == before
    calls = [call[0] for call in docker_calls(environment)]
    assert calls.count("stop") == calls.count("start")  # none stopped, or all started again


def write_backup_file(backup_dir: Path, name: str, content: bytes) -> Path:
    """A file with a backup's name and a *correct* .sha256, so only its content is wrong."""
    path = backup_dir / name
    path.write_bytes(content)
    (backup_dir / f"{name}.sha256").write_text(
        f"{hashlib.sha256(content).hexdigest()}  {name}\n")
    return path


BAD_CONTENT = {
    "not-gzip": b"-- PostgreSQL database dump\nCREATE TABLE evil ();\n",
    "gzip-not-a-dump": gzip.compress(b"hello, I am not SQL at all\n"),
    "empty": b"",
    "one-huge-line": gzip.compress(b"x" * (64 * 1024 * 1024)),
}


@pytest.mark.parametrize("kind", sorted(BAD_CONTENT))
def test_bad_files_are_refused_with_one_line_and_touch_nothing(
        kind: str, agent_env: dict[str, str], backup_dir: Path, pg_server: PostgresServer,
        database: str) -> None:
    path = write_backup_file(backup_dir, "db_backup_20260301_020000.sql.gz", BAD_CONTENT[kind])
    before = state(pg_server, database)
    result = run_agent(["restore", str(path), "--yes", "--allow-unsigned"], agent_env)
    expect(result, "not gzip, gzip but not a dump, empty file, one huge line")
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and "refusing the backup" in errors[0], result.stderr
    assert "Traceback" not in result.stderr
    assert state(pg_server, database) == before
