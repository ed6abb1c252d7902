"""Restoring as a user that is not a superuser: CREATEDB + CREATEROLE, as on a managed server.

Giving objects to the backup's owners needs a superuser (from PostgreSQL 16 a CREATEROLE
user may not even SET ROLE to the roles it creates), so that is refused up front, naming
--no-owner; with --no-owner the restore runs, everything owned by that user.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from testbed.postgres import PostgresServer
from tests.conftest import make_backup, run_agent


@pytest.fixture
def restorer(pg_server: PostgresServer) -> Iterator[tuple[str, str]]:
    name, password = f"restorer_{secrets.token_hex(3)}", secrets.token_urlsafe(12)
    pg_server.psql("postgres", f"CREATE ROLE {name} LOGIN CREATEDB CREATEROLE "
                               f"PASSWORD '{password}';")
    yield name, password
    for database in pg_server.database_names():
        if database.startswith("nonsuper_"):
            pg_server.drop_database(database)
    pg_server.psql("postgres", f"DROP ROLE {name};")


def test_a_non_superuser_restores_with_no_owner_and_is_told_so_without(
        agent_env: dict[str, str], pg_server: PostgresServer, database: str,
        restorer: tuple[str, str]) -> None:
    make_backup(agent_env)
    name, password = restorer
    environment = {**agent_env, "POSTGRES_USER": name, "POSTGRES_PASSWORD": password}
    before = pg_server.database_names()
    refused = run_agent(["restore", "latest", "--target-db", "nonsuper_a", "--yes"],
                        environment)
    assert refused.returncode == 2, refused.stderr
    assert "needs a superuser" in refused.stderr and "--no-owner" in refused.stderr
    assert pg_server.database_names() == before
    restored = run_agent(["restore", "latest", "--target-db", "nonsuper_b", "--no-owner",
                          "--yes"], environment)
    assert restored.returncode == 0, restored.stderr
    owners = pg_server.psql("nonsuper_b", "SELECT DISTINCT pg_get_userbyid(relowner) FROM "
                                          "pg_class c JOIN pg_namespace n ON n.oid = "
                                          "relnamespace WHERE nspname NOT LIKE 'pg_%' AND "
                                          "nspname <> 'information_schema';").split()
    assert owners == [name]
    assert "backup_agent_builder_" not in pg_server.psql(
        "postgres", "SELECT string_agg(rolname, ',') FROM pg_roles;")
    doctor = run_agent(["doctor"], {**environment, "S3_BUCKET": ""})
    assert "only `restore --no-owner` can run" in doctor.stdout


def test_doctor_s_login_probe_passes_where_connect_is_revoked_from_public(
        agent_env: dict[str, str], pg_server: PostgresServer, database: str) -> None:
    pg_server.psql("postgres", f'REVOKE CONNECT ON DATABASE "{database}" FROM PUBLIC;')
    result = run_agent(["doctor"], {**agent_env, "S3_BUCKET": ""})
    assert "PASS  restore-login" in result.stdout, result.stdout
    grants = pg_server.psql("postgres", "SELECT datacl FROM pg_database WHERE datname = "
                                        f"'{database}';")
    assert "backup_agent_builder_" not in grants
