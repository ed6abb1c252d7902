"""`backup-agent wal setup`: every server change printed, applied only with --yes, and then
enough for an unprivileged role to run `wal stream`."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import pwd
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from testbed.postgres import PostgresServer
from testbed.s3 import S3Endpoint
from tests.conftest import AGENT, DOCKER_CONTAINER, docker_calls, run_agent

_roles = itertools.count(1)


@pytest.fixture
def agent_role(pg_server: PostgresServer, database: str) -> Iterator[str]:
    name = f"wal_agent_{os.getpid()}_{next(_roles)}"
    pg_server.psql("postgres", f"CREATE ROLE {name} LOGIN PASSWORD '{ROLE_PASSWORD}';")
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
    # What the server already has is "ok", with no restart to do; only pg_hba.conf, which
    # the agent cannot see, is left for a human to check.
    assert "[   ok] wal_level is replica" in again.stdout, again.stdout
    assert "restart PostgreSQL" not in again.stdout
    assert "[check] pg_hba.conf lets" in again.stdout


ROLE_PASSWORD = "agent-secret-pw"


def apply_setup(agent_env: dict[str, str], role: str) -> None:
    """`wal setup --yes` as the superuser, for `role` and a slot of its name."""
    applied = run_agent(["wal", "setup", "--for-role", role, "--yes"],
                        {**agent_env, "WAL_SLOT": role})
    assert applied.returncode == 0, applied.stderr


def role_environment(agent_env: dict[str, str], role: str, spool: Path) -> dict[str, str]:
    """The agent as `role` itself, on its slot and `spool`."""
    return {**agent_env, "WAL_SLOT": role, "WAL_SPOOL_DIR": str(spool),
            "POSTGRES_USER": role, "POSTGRES_PASSWORD": ROLE_PASSWORD}


@contextlib.contextmanager
def streaming(agent_env: dict[str, str], role: str, tmp_path: Path, max_delay: str,
              ) -> Iterator[tuple[dict[str, str], Path]]:
    """Set up for `role`, then run `wal stream` as it for the block (its log in
    tmp_path/stream.log); yield its environment and spool."""
    apply_setup(agent_env, role)
    spool = tmp_path / "spool"
    spool.mkdir(mode=0o700)
    environment = {**role_environment(agent_env, role, spool), "WAL_MAX_DELAY": max_delay}
    with (tmp_path / "stream.log").open("wb") as log:
        stream = subprocess.Popen([str(AGENT), "wal", "stream"], env=environment,
                                  stdout=subprocess.DEVNULL, stderr=log)
    try:
        yield environment, spool
    finally:
        stream.send_signal(signal.SIGTERM)
        stream.wait(timeout=30)


def test_after_setup_an_unprivileged_role_streams_wal(
        agent_env: dict[str, str], agent_role: str, pg_server: PostgresServer,
        database: str, s3_endpoint: S3Endpoint, bucket: str, tmp_path: Path) -> None:
    with streaming(agent_env, agent_role, tmp_path, "1s"):
        pg_server.psql(database, "CREATE TABLE probe AS SELECT generate_series(1, 10) AS n;")
        deadline = time.monotonic() + 30
        keys: list[str] = []
        while time.monotonic() < deadline and not keys:
            answer = s3_endpoint.client().list_objects_v2(Bucket=bucket, Prefix="backups/wal/")
            keys = [item["Key"] for item in answer.get("Contents", [])]
            time.sleep(0.3)
        assert keys, (tmp_path / "stream.log").read_text()
    assert ROLE_PASSWORD not in (tmp_path / "stream.log").read_text()


def test_setup_prints_a_systemd_unit_for_this_install(
        agent_env: dict[str, str], agent_role: str, tmp_path: Path) -> None:
    env_file = tmp_path / ".env.production"
    env_file.write_text("KEEP_LOCAL=7\n")
    spool = tmp_path / "spool"
    spool.mkdir(mode=0o700)
    result = run_agent(["wal", "setup", "--for-role", agent_role, "--print-service",
                        "--env-file", str(env_file)],
                       {**agent_env, "WAL_SLOT": agent_role, "WAL_SPOOL_DIR": str(spool)})
    assert result.returncode == 0, result.stderr
    # Only the unit, on stdout: what install-agent.sh --with-wal-stream installs.
    assert result.stdout.startswith("[Unit]\n") and "[ok]" not in result.stdout
    assert f"ExecStart={AGENT} wal stream --env-file {env_file}\n" in result.stdout
    assert f"Environment=SIGNING_KEY_FILE={agent_env['SIGNING_KEY_FILE']}\n" in result.stdout
    assert f"User={pwd.getpwuid(os.geteuid()).pw_name}\n" in result.stdout
    assert "Restart=always" in result.stdout and "SuccessExitStatus=130" in result.stdout


def sidecar_service(stdout: str) -> dict[str, Any]:
    compose = yaml.safe_load(stdout)
    service: dict[str, Any] = compose["services"]["backup-agent-wal"]
    return {**service, "networks_section": compose.get("networks")}


def test_setup_in_docker_mode_prints_the_sidecar_from_the_server_s_own_image(
        agent_env: dict[str, str], docker_shim: dict[str, str], agent_role: str,
        pg_server: PostgresServer, tmp_path: Path) -> None:
    environment = {**agent_env, **docker_shim, "POSTGRES_CONTAINER": DOCKER_CONTAINER,
                   "WAL_SLOT": agent_role, "WAL_SPOOL_DIR": str(tmp_path / "spool")}
    del environment["PG_BINDIR"]
    env_file = tmp_path / ".env.production"
    env_file.write_text("KEEP_LOCAL=7\n")
    shown = run_agent(["wal", "setup", "--for-role", agent_role, "--env-file", str(env_file)],
                      environment)
    assert shown.returncode == 0, shown.stderr
    # The receiver connects from the server's docker network: the pg_hba line says so.
    assert (f"host  replication  {agent_role}  172.18.0.0/16  scram-sha-256"
            in shown.stdout), shown.stdout
    assert f"in {DOCKER_CONTAINER}'s own pg_hba.conf" in shown.stdout
    assert "restart-always sidecar" in shown.stdout and "[Unit]" not in shown.stdout

    only = run_agent(["wal", "setup", "--for-role", agent_role, "--print-service",
                      "--env-file", str(env_file)], environment)
    assert only.returncode == 0, only.stderr
    major = int(pg_server.psql("postgres", "SHOW server_version_num;").strip()) // 10000
    service = sidecar_service(only.stdout)
    assert f"FROM postgres:{major}\n" in service["build"]["dockerfile_inline"]
    assert service["build"]["context"] == str(Path(sys.prefix) / "wal-stream")
    assert service["restart"] == "always"
    assert service["command"] == ["/opt/backup-agent/bin/backup-agent", "wal", "stream"]
    assert service["env_file"] == str(env_file)
    spool, key = str(tmp_path / "spool"), agent_env["SIGNING_KEY_FILE"]
    # Host mode inside the sidecar, reaching the server by its container's name and the
    # port it listens on there.
    assert service["environment"] == {
        "POSTGRES_CONTAINER": "", "POSTGRES_HOST": DOCKER_CONTAINER,
        "POSTGRES_PORT": str(pg_server.port), "PG_BINDIR": f"/usr/lib/postgresql/{major}/bin",
        "WAL_SPOOL_DIR": spool, "SIGNING_KEY_FILE": key}
    assert service["volumes"] == [f"{spool}:{spool}", f"{key}:{key}:ro"]
    assert service["user"] == f"{os.geteuid()}:{os.getegid()}"
    assert service["networks"] == ["dorami_default"]
    assert service["networks_section"] == {"dorami_default": {"external": True}}
    assert [call[:2] for call in docker_calls(environment)].count(["inspect", "--format"]) == 2

    # On Docker's default bridge there are no names: its address, with a warning.
    bridge = {**environment, "DOCKER_SHIM_NETWORKS": json.dumps(
        {"bridge": {"IPAddress": "172.17.0.5", "IPPrefixLen": 16}})}
    plain = run_agent(["wal", "setup", "--for-role", agent_role, "--print-service"], bridge)
    assert plain.returncode == 0, plain.stderr
    service = sidecar_service(plain.stdout)
    assert service["environment"]["POSTGRES_HOST"] == "172.17.0.5"
    assert service["network_mode"] == "bridge" and "networks" not in service
    assert service["env_file"] == "/opt/dorami/.env.production"
    assert "changes" in plain.stdout
