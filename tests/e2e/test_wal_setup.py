"""`backup-agent wal setup`: every server change printed, applied only with --yes, and then
enough for an unprivileged role to run `wal stream`."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from testbed.postgres import PostgresServer
from testbed.s3 import S3Endpoint
from tests.conftest import AGENT, run_agent

_roles = itertools.count(1)


@pytest.fixture
def agent_role(pg_server: PostgresServer, database: str) -> Iterator[str]:
    name = f"wal_agent_{os.getpid()}_{next(_roles)}"
    pg_server.psql("postgres", f"CREATE ROLE {name} LOGIN PASSWORD 'agent-secret-pw';")
    yield name
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and pg_server.psql(
            "postgres", f"SELECT 1 FROM pg_replication_slots WHERE slot_name = '{name}' "
                        "AND active;").strip():
        time.sleep(0.2)
    pg_server.psql(database, f"REVOKE EXECUTE ON FUNCTION pg_switch_wal() FROM {name};")
    pg_server.psql("postgres", f"""
        SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots
         WHERE slot_name = '{name}';
        DROP ROLE {name};
        ALTER SYSTEM RESET max_slot_wal_keep_size;
        SELECT pg_reload_conf();""")


def test_setup_prints_each_change_then_applies_them_with_yes(
        agent_env: dict[str, str], agent_role: str, pg_server: PostgresServer,
        database: str) -> None:
    environment = {**agent_env, "WAL_SLOT": agent_role}
    dry = run_agent(["wal", "setup", "--for-role", agent_role], environment)
    assert dry.returncode == 0, dry.stderr
    assert f"[to do] role {agent_role} may open replication connections" in dry.stdout
    assert f'ALTER ROLE "{agent_role}" REPLICATION;' in dry.stdout
    assert "GRANT EXECUTE ON FUNCTION pg_catalog.pg_switch_wal()" in dry.stdout
    assert f"pg_create_physical_replication_slot('{agent_role}', true)" in dry.stdout
    assert "host  replication" in dry.stdout and "[Service]" in dry.stdout
    assert "Nothing was changed" in dry.stdout
    assert not pg_server.psql("postgres", "SELECT 1 FROM pg_replication_slots WHERE "
                                          f"slot_name = '{agent_role}';").strip()

    applied = run_agent(["wal", "setup", "--for-role", agent_role, "--yes"], environment)
    assert applied.returncode == 0, applied.stderr
    assert applied.stdout.count("[ done]") == 4, applied.stdout
    # The grant is on the function in POSTGRES_DB, where the stream's session connects.
    facts = pg_server.psql(database, f"""
        SELECT r.rolreplication, has_function_privilege(r.oid, 'pg_switch_wal()', 'EXECUTE'),
               current_setting('max_slot_wal_keep_size'),
               (SELECT restart_lsn IS NOT NULL FROM pg_replication_slots
                 WHERE slot_name = '{agent_role}')
          FROM pg_roles r WHERE rolname = '{agent_role}';""").strip()
    assert facts == "t|t|8GB|t"

    again = run_agent(["wal", "setup", "--for-role", agent_role], environment)
    assert again.returncode == 0 and "to do" not in again.stdout
    assert "Nothing was changed" not in again.stdout


def test_after_setup_an_unprivileged_role_streams_wal(
        agent_env: dict[str, str], agent_role: str, pg_server: PostgresServer,
        database: str, s3_endpoint: S3Endpoint, bucket: str, tmp_path: Path) -> None:
    applied = run_agent(["wal", "setup", "--for-role", agent_role, "--yes"],
                        {**agent_env, "WAL_SLOT": agent_role})
    assert applied.returncode == 0, applied.stderr
    spool = tmp_path / "spool"
    spool.mkdir(mode=0o700)
    environment = {**agent_env, "WAL_SLOT": agent_role, "WAL_SPOOL_DIR": str(spool),
                   "WAL_MAX_DELAY": "1s", "POSTGRES_USER": agent_role,
                   "POSTGRES_PASSWORD": "agent-secret-pw"}
    with (tmp_path / "stream.log").open("wb") as log:
        stream = subprocess.Popen([str(AGENT), "wal", "stream"], env=environment,
                                  stdout=subprocess.DEVNULL, stderr=log)
    try:
        pg_server.psql(database, "CREATE TABLE probe AS SELECT generate_series(1, 10) AS n;")
        deadline = time.monotonic() + 30
        keys: list[str] = []
        while time.monotonic() < deadline and not keys and stream.poll() is None:
            answer = s3_endpoint.client().list_objects_v2(Bucket=bucket, Prefix="backups/wal/")
            keys = [item["Key"] for item in answer.get("Contents", [])]
            time.sleep(0.3)
        assert keys, (tmp_path / "stream.log").read_text()
    finally:
        stream.send_signal(signal.SIGTERM)
        stream.wait(timeout=30)
    assert "agent-secret-pw" not in (tmp_path / "stream.log").read_text()
