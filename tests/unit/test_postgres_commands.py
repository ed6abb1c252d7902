"""Commands are data: compared by equality, and the password is never in them."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from backup_agent.model.errors import ConfigurationError, DatabaseError, ToolMissingError
from backup_agent.model.settings import PostgresSettings
from backup_agent.postgres.commands import (
    make_dump_command,
    make_environment,
    make_psql_command,
    parse_client_version,
)
from backup_agent.postgres.diagnosis import LockTimeoutError, diagnose

DIRECT = PostgresSettings(database="dorami_production", user="dorami_prod", password="s3cret!",
                          host="127.0.0.1", port=5432, bin_directory=Path("/usr/lib/pg/bin"))
DOCKER = PostgresSettings(database="dorami_production", user="dorami_prod", password="s3cret!",
                          container="dorami-postgres")


def test_dump_command_direct() -> None:
    assert make_dump_command(DIRECT, snapshot="00000003-1") == [
        "/usr/lib/pg/bin/pg_dump", "--no-password", "--host", "127.0.0.1", "--port", "5432",
        "--username", "dorami_prod", "--dbname", "dorami_production", "--format=plain",
        "--lock-wait-timeout=300000", "--snapshot=00000003-1"]


def test_dump_command_in_docker_passes_the_password_by_name_only() -> None:
    assert make_dump_command(DOCKER, snapshot=None) == [
        "docker", "exec", "-i", "-e", "PGPASSWORD", "-e", "PGCONNECT_TIMEOUT", "-e", "PGOPTIONS",
        "dorami-postgres",
        "pg_dump", "--no-password", "--username", "dorami_prod", "--dbname", "dorami_production",
        "--format=plain", "--lock-wait-timeout=300000"]


def test_psql_command_stops_on_the_first_error_and_ignores_psqlrc() -> None:
    command = make_psql_command(DIRECT, "postgres")
    assert command[:2] == ["/usr/lib/pg/bin/psql", "-X"]
    assert command[5:7] == ["--set", "ON_ERROR_STOP=1"]


@pytest.mark.parametrize("settings", [DIRECT, DOCKER])
def test_password_only_in_the_environment(settings: PostgresSettings) -> None:
    for command in (make_dump_command(settings, snapshot="x"),
                    make_psql_command(settings, "postgres")):
        assert not any("s3cret" in part for part in command)
    assert make_environment(settings, {"PATH": "/bin", "PGPASSWORD": "stale"}) == {
        "PATH": "/bin", "PGPASSWORD": "s3cret!", "PGCONNECT_TIMEOUT": "30",
        "PGOPTIONS": "-c standard_conforming_strings=on"}


def test_no_password_means_no_pgpassword() -> None:
    settings = PostgresSettings(database="d", container="c")
    assert "PGPASSWORD" not in make_dump_command(settings, snapshot=None)
    assert "PGPASSWORD" not in make_environment(settings, {"PGPASSWORD": "leftover"})


@pytest.mark.parametrize(("output", "expected"), [
    ("pg_dump (PostgreSQL) 18.6\n", (18, 6)),
    ("pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)\n", (15, 18)),
    ("psql (PostgreSQL) 19beta1\n", (19, 0)),
])
def test_client_versions_parse(output: str, expected: tuple[int, int]) -> None:
    assert parse_client_version(output) == expected


@pytest.mark.parametrize(("stderr", "kind", "fragment"), [
    ('FATAL:  password authentication failed for user "dorami_prod"', DatabaseError,
     "rejected the password"),
    ("fe_sendauth: no password supplied", DatabaseError, "requires a password"),
    ('FATAL:  database "dorami_production" does not exist', DatabaseError, "POSTGRES_DB"),
    ('FATAL:  role "dorami_prod" does not exist', DatabaseError, "POSTGRES_USER"),
    ("connection to server at \"10.0.0.1\", port 5432 failed: Connection refused",
     DatabaseError, "cannot reach PostgreSQL"),
    ("pg_dump: error: aborting because of server version mismatch", ToolMissingError,
     "older than the server"),
    ("Error response from daemon: No such container: db", ConfigurationError, "docker ps"),
    ('exec: "pg_dump": executable file not found in $PATH', ToolMissingError,
     "inside container"),
    ("Cannot connect to the Docker daemon at unix:///var/run/docker.sock", ToolMissingError,
     "docker daemon"),
    ("pg_dump: error: query failed: ERROR:  out of memory", DatabaseError, "out of memory"),
    ('connection to server at "10.0.0.1", port 5432 failed: timeout expired', DatabaseError,
     "did not answer within 30s (PGCONNECT_TIMEOUT)"),
    ("pg_dump: error: query failed: ERROR:  canceling statement due to statement timeout\n"
     "pg_dump: detail: Query was: LOCK TABLE shop.orders IN ACCESS SHARE MODE",
     LockTimeoutError, "gave up waiting 5m (LOCK_WAIT_TIMEOUT)"),
])
def test_diagnosis_names_cause_and_fix(stderr: str, kind: type[Exception],
                                       fragment: str) -> None:
    error = diagnose(stderr, DOCKER if "ocker" in stderr or "exec:" in stderr else DIRECT,
                     program="pg_dump")
    assert isinstance(error, kind)
    assert fragment in str(error)
    assert "\n" not in str(error)


@pytest.mark.parametrize("settings", [DIRECT, DOCKER])
def test_children_get_no_secret_but_their_own(settings: PostgresSettings) -> None:
    agents = {"PATH": "/bin", "HOME": "/root", "LC_ALL": "C.UTF-8", "PGSSLMODE": "require",
              "AWS_SECRET_ACCESS_KEY": "aws", "AWS_ACCESS_KEY_ID": "id",
              "AGE_IDENTITY": "AGE-SECRET-KEY-1X", "NOTIFY_URL": "https://hooks/x",
              "SIGNING_KEY_FILE": "/k", "POSTGRES_PASSWORD": "pw", "DOCKER_HOST": "unix://d"}
    environment = make_environment(settings, agents)
    expected = {"PATH", "HOME", "LC_ALL", "PGSSLMODE", "PGPASSWORD", "PGCONNECT_TIMEOUT",
                "PGOPTIONS"}
    assert set(environment) == expected | ({"DOCKER_HOST"} if settings.container else set())


def test_every_wait_is_bounded_by_the_settings() -> None:
    settings = PostgresSettings(database="d", lock_wait=timedelta(seconds=2),
                                connect_timeout_seconds=3)
    assert "--lock-wait-timeout=2000" in make_dump_command(settings, snapshot=None)
    assert make_environment(settings, {"PGCONNECT_TIMEOUT": "99"})["PGCONNECT_TIMEOUT"] == "3"
