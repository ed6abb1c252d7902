"""Docker mode: pg_dump and psql run through `docker exec -i`, the password never in argv.

There is no docker engine here: `testbed/shims/docker` records its argv and runs the
program locally with only the variables docker would pass into the container.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pyrage import x25519

from testbed.postgres import PostgresServer
from tests.conftest import DOCKER_CONTAINER, run_agent
from tests.e2e.test_backup import only_backup

CONTAINER = DOCKER_CONTAINER


@pytest.fixture
def docker_env(agent_env: dict[str, str], docker_shim: dict[str, str]) -> dict[str, str]:
    environment = {**agent_env, **docker_shim, "POSTGRES_CONTAINER": CONTAINER}
    del environment["PG_BINDIR"]  # inside the container, the image's own clients are used
    return environment


def docker_log(environment: dict[str, str]) -> list[dict[str, object]]:
    log = Path(environment["DOCKER_SHIM_LOG"])
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_docker_mode_runs_pg_dump_in_the_container_with_the_password_in_env_only(
        docker_env: dict[str, str], pg_server: PostgresServer, database: str,
        backup_dir: Path) -> None:
    result = run_agent(["backup"], docker_env)
    assert result.returncode == 0, result.stderr
    only_backup(backup_dir)

    calls = docker_log(docker_env)
    dumps = [call for call in calls if "pg_dump" in call["argv"] and  # type: ignore[operator]
             "--version" not in call["argv"]]  # type: ignore[operator]
    assert len(dumps) == 1
    argv = dumps[0]["argv"]
    assert isinstance(argv, list)
    snapshot = next(argument for argument in argv if argument.startswith("--snapshot="))
    assert argv[1:] == ["exec", "-i", "-e", "PGPASSWORD", "-e", "PGCONNECT_TIMEOUT",
                        "-e", "PGOPTIONS", CONTAINER,
                        "pg_dump", "--no-password", "--host", pg_server.host, "--port",
                        str(pg_server.port), "--username", pg_server.user, "--dbname",
                        database, "--format=plain", "--lock-wait-timeout=300000", snapshot]
    assert any("psql" in call["argv"] for call in calls)  # type: ignore[operator]
    for call in calls:
        assert call["pgpassword_in_env"] is True
        assert not any(pg_server.password in argument
                       for argument in call["argv"])  # type: ignore[attr-defined]


def test_docker_mode_with_a_missing_container_names_it(docker_env: dict[str, str],
                                                       backup_dir: Path) -> None:
    result = run_agent(["backup"], {**docker_env, "POSTGRES_CONTAINER": "no-such-container"})
    assert result.returncode == 2
    assert "docker container 'no-such-container' does not exist" in result.stderr
    assert "docker ps" in result.stderr
    assert not any(backup_dir.glob("db_backup_*"))


def test_docker_mode_without_pg_dump_in_the_image_says_so(docker_env: dict[str, str],
                                                          tmp_path: Path) -> None:
    empty = tmp_path / "image-without-clients"
    empty.mkdir()
    result = run_agent(["backup"], {**docker_env, "DOCKER_SHIM_PG_BINDIR": str(empty)})
    assert result.returncode == 7
    assert f"not found inside container {CONTAINER}" in result.stderr


@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "age"])
def test_restore_and_restore_test_run_psql_inside_the_container(
        encrypted: bool, docker_env: dict[str, str], pg_server: PostgresServer, database: str,
        tmp_path: Path) -> None:
    from testbed.sample_data import fingerprint

    if encrypted:  # age runs in the agent on the host; only SQL crosses into the container
        identity = x25519.Identity.generate()
        key_file = tmp_path / "backup.key"
        key_file.write_text(f"{identity}\n")
        docker_env = {**docker_env, "ENCRYPT_TO": str(identity.to_public()),
                      "AGE_IDENTITY_FILE": str(key_file)}
    assert run_agent(["backup"], docker_env).returncode == 0
    expected = fingerprint(pg_server, database)
    pg_server.psql(database, "TRUNCATE audit.events;")
    restored = run_agent(["restore", "latest", "--yes", "--drop-previous"], docker_env)
    assert restored.returncode == 0, restored.stderr
    assert fingerprint(pg_server, database) == expected
    tested = run_agent(["verify", "--restore-test"], docker_env)
    assert tested.returncode == 0, tested.stderr
    psql_calls = [entry["argv"] for entry in docker_log(docker_env)
                  if "psql" in entry["argv"]]  # type: ignore[operator]
    assert psql_calls
    # Every client gets PGOPTIONS (standard_conforming_strings on) by name, never a value;
    # the restore's own statements go over the network (psycopg), not through docker.
    passed = ["exec", "-i", "-e", "PGPASSWORD", "-e", "PGCONNECT_TIMEOUT", "-e", "PGOPTIONS"]
    assert all(argv[1:10] == [*passed, CONTAINER]  # type: ignore[index]
               for argv in psql_calls)
