"""`doctor`'s point-in-time recovery checks, against a real server: not set up (one line,
no failure), each piece missing, then a streaming set-up that passes, a stream that stopped
reporting and a slot the server dropped."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from backup_agent.model.errors import ConfigurationError
from backup_agent.model.settings import resolve_settings
from backup_agent.postgres.replication import probe_replication
from backup_agent.wal.spool import read_state, write_state
from testbed.postgres import PostgresServer
from tests.conftest import DOCKER_CONTAINER, docker_calls, run_agent
from tests.e2e.test_wal_setup import (  # noqa: F401 - agent_role: the fixture
    agent_role,
    apply_setup,
    role_environment,
    streaming,
)

PITR_CHECKS = ["wal-role", "wal-replication", "wal-slot", "wal-slot-cap", "wal-stream",
               "wal-lag"]


def doctor(environment: dict[str, str]) -> tuple[dict[str, tuple[bool, str]], str]:
    result = run_agent(["doctor", "--json"], environment)
    checks = {check["name"]: (check["passed"], check["detail"])
              for check in json.loads(result.stdout)["checks"]}
    return checks, run_agent(["doctor"], environment).stdout


def test_doctor_says_once_that_pitr_is_not_set_up(agent_env: dict[str, str],
                                                  tmp_path: Path) -> None:
    environment = {**agent_env, "S3_BUCKET": "", "WAL_SLOT": "no_such_slot",
                   "WAL_SPOOL_DIR": str(tmp_path / "spool")}
    checks, text = doctor(environment)
    assert checks["pitr"][0] is True, checks["pitr"]
    assert "point-in-time recovery is not set up here" in checks["pitr"][1]
    assert not set(PITR_CHECKS) & set(checks)
    assert "PASS  pitr" in text


def test_doctor_names_each_missing_piece_and_its_fix(
        agent_env: dict[str, str], agent_role: str, pg_server: PostgresServer,  # noqa: F811
        tmp_path: Path) -> None:
    # Only the slot, made by hand: PITR is in use, nothing else is set up.
    pg_server.psql("postgres", f"SELECT pg_create_physical_replication_slot('{agent_role}', true);")
    environment = {**role_environment(agent_env, agent_role, tmp_path / "spool"),
                   "S3_BUCKET": ""}
    checks, text = doctor(environment)
    assert "pitr" not in checks
    assert not checks["wal-role"][0]
    assert "lacks REPLICATION and EXECUTE on pg_switch_wal()" in checks["wal-role"][1]
    assert "wal setup --yes" in checks["wal-role"][1]
    assert not checks["wal-replication"][0]
    assert "refused a replication connection" in checks["wal-replication"][1]
    assert checks["wal-slot"] == (True, f"the replication slot {agent_role} exists (inactive)")
    assert not checks["wal-slot-cap"][0] and "unlimited" in checks["wal-slot-cap"][1]
    assert not checks["wal-stream"][0] and "never run here" in checks["wal-stream"][1]
    assert not checks["wal-lag"][0]
    assert "FAIL  wal-slot-cap" in text


def test_doctor_passes_a_streaming_set_up_then_sees_it_stop_and_the_slot_lost(
        agent_env: dict[str, str], agent_role: str, pg_server: PostgresServer,  # noqa: F811
        database: str, tmp_path: Path) -> None:
    with streaming(agent_env, agent_role, tmp_path, "2s") as (environment, spool):
        pg_server.psql(database, "CREATE TABLE probe AS SELECT generate_series(1, 10) AS n;")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (read_state(spool) or {}).get(
                "last_segment"):
            time.sleep(0.3)
        assert (read_state(spool) or {}).get("last_segment"), \
            (tmp_path / "stream.log").read_text()
        checks, _text = doctor({**environment, "S3_BUCKET": ""})
        assert all(checks[name][0] for name in PITR_CHECKS), checks
        assert "is accepted (system" in checks["wal-replication"][1]
        assert checks["wal-slot"][1].endswith("(active)")
        assert "max_slot_wal_keep_size is 8GB" in checks["wal-slot-cap"][1]

    # Stopped, the stream said so as it ended: doctor fails at once, naming the fix.
    state = read_state(spool) or {}
    assert (state["receiver"], state["slot_state"]) == ("stopped", "inactive")
    checks, text = doctor({**environment, "S3_BUCKET": ""})
    assert not checks["wal-stream"][0], checks["wal-stream"]
    assert "start `backup-agent wal stream` again" in checks["wal-stream"][1]
    assert not checks["wal-lag"][0] and "FAIL  wal-stream" in text
    # Killed (no last word), it is found by its silence: not reporting, lag unknown.
    write_state(spool, {**state, "receiver": "running",
                        "updated_at": "2026-01-01T00:00:00+00:00"})
    checks, text = doctor({**environment, "S3_BUCKET": ""})
    assert not checks["wal-stream"][0] and "is its service running?" in checks["wal-stream"][1]
    assert not checks["wal-lag"][0] and "FAIL  wal-stream" in text

    # A slot past max_slot_wal_keep_size is dropped by the server: doctor says so.
    pg_server.psql("postgres", "ALTER SYSTEM SET max_slot_wal_keep_size = '1MB'; "
                               "SELECT pg_reload_conf();")
    for _ in range(4):
        pg_server.psql(database, "INSERT INTO probe SELECT generate_series(1, 1000); "
                                 "SELECT pg_switch_wal();")
    pg_server.psql("postgres", "CHECKPOINT;")
    checks, _text = doctor({**environment, "S3_BUCKET": ""})
    assert not checks["wal-slot"][0], checks["wal-slot"]
    assert "slot was lost" in checks["wal-slot"][1] and "base backup" in checks["wal-slot"][1]


def test_doctor_in_docker_mode_probes_replication_at_the_published_address(
        agent_env: dict[str, str], docker_shim: dict[str, str], agent_role: str,  # noqa: F811
        tmp_path: Path) -> None:
    apply_setup(agent_env, agent_role)
    environment = {**role_environment(agent_env, agent_role, tmp_path / "spool"),
                   **docker_shim, "POSTGRES_CONTAINER": DOCKER_CONTAINER, "S3_BUCKET": ""}
    del environment["PG_BINDIR"]
    checks, _text = doctor(environment)
    assert checks["wal-role"][0] and checks["wal-replication"][0], checks
    # The replication connection is the agent's own, to POSTGRES_HOST: no docker exec.
    assert not any("IDENTIFY_SYSTEM" in " ".join(call) for call in docker_calls(environment))
    # Without a published address there is nothing the receiver could reach from here.
    unpublished = resolve_settings({}, {**environment, "POSTGRES_HOST": ""}).postgres
    with pytest.raises(ConfigurationError, match="published address"):
        probe_replication(unpublished)
