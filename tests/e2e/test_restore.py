"""`backup-agent restore`: identical data; refusals touch nothing; failures lose nothing."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from testbed.postgres import PostgresServer
from testbed.sample_data import fingerprint
from tests.conftest import docker_calls, make_backup, run_agent
from tests.fabricate import flip_a_bit, rewrite_backup, snapshot_files
from tests.faults.table import expect

CHANGE_AFTER_BACKUP = ("DELETE FROM shop.orders WHERE id <= 5000; "
                       "UPDATE audit.events SET message = 'x';")


def databases(pg_server: PostgresServer) -> set[str]:
    return pg_server.database_names()


@pytest.fixture
def backed_up(agent_env: dict[str, str], pg_server: PostgresServer,
              database: str) -> tuple[dict[str, object], dict[str, str]]:
    """One real backup, then the database changed: returns (report, fingerprint at backup)."""
    report = make_backup(agent_env)
    at_backup = fingerprint(pg_server, database)
    pg_server.psql(database, CHANGE_AFTER_BACKUP)
    assert fingerprint(pg_server, database) != at_backup
    return report, at_backup


@pytest.mark.parametrize("how", ["latest", "path", "s3-url", "latest-from-s3"])
def test_restore_gives_data_identical_to_the_backup(
        how: str, backed_up: tuple[dict[str, object], dict[str, str]],
        agent_env: dict[str, str], pg_server: PostgresServer, database: str) -> None:
    report, at_backup = backed_up
    s3 = report["s3"]
    assert isinstance(s3, dict)
    arguments = {"latest": ["latest"], "path": [str(report["path"])], "s3-url": [s3["uri"]],
                 "latest-from-s3": ["latest", "--from", "s3"]}[how]
    result = run_agent(["restore", *arguments, "--yes", "--json"], agent_env)
    assert result.returncode == 0, result.stderr
    restored = json.loads(result.stdout)
    assert restored["checksum"] == "ok" and restored["verified"] is True
    assert fingerprint(pg_server, database) == at_backup
    previous = restored["previous_database"]
    assert previous.startswith(f"{database}_pre_restore_")
    assert databases(pg_server) >= {database, previous}
    assert not any("_restore_" in name and "_pre_" not in name for name in databases(pg_server))
    assert "to roll back" in result.stderr


def test_restore_with_drop_previous_leaves_no_old_database(
        backed_up: tuple[dict[str, object], dict[str, str]], agent_env: dict[str, str],
        pg_server: PostgresServer, database: str) -> None:
    before = databases(pg_server)
    result = run_agent(["restore", "latest", "--yes", "--drop-previous"], agent_env)
    assert result.returncode == 0, result.stderr
    assert databases(pg_server) == before
    assert fingerprint(pg_server, database) == backed_up[1]


def test_restore_into_a_target_db_leaves_the_source_database_alone(
        backed_up: tuple[dict[str, object], dict[str, str]], agent_env: dict[str, str],
        pg_server: PostgresServer, database: str) -> None:
    current = fingerprint(pg_server, database)
    result = run_agent(["restore", "latest", "--target-db", "staging_copy", "--yes",
                        "--no-owner"], agent_env)
    try:
        assert result.returncode == 0, result.stderr
        assert fingerprint(pg_server, "staging_copy") == backed_up[1]
        assert fingerprint(pg_server, database) == current
        again = run_agent(["restore", "latest", "--target-db", "staging_copy", "--yes"],
                          agent_env)
        assert again.returncode == 2 and "already exists" in again.stderr
    finally:
        pg_server.drop_database("staging_copy")


def refused_and_untouched(result: object, pg_server: PostgresServer, database: str,
                          before: tuple[set[str], dict[str, str]], *, code: int,
                          fragment: str) -> None:
    assert getattr(result, "returncode") == code, getattr(result, "stderr")  # noqa: B009
    stderr = str(getattr(result, "stderr"))  # noqa: B009
    assert fragment in stderr and "Traceback" not in stderr
    assert (databases(pg_server), fingerprint(pg_server, database)) == before


@pytest.mark.parametrize(("damage", "code", "fragment"), [
    ("bit-flip", 8, "SHA-256 mismatch"),
    ("truncated", 8, "truncated or corrupt"),
    ("wrong-sha256", 8, "SHA-256 mismatch"),
    ("missing-sha256", 8, "has no .sha256 checksum"),
])
def test_restore_refuses_a_damaged_backup_and_touches_nothing(
        damage: str, code: int, fragment: str, agent_env: dict[str, str],
        pg_server: PostgresServer, database: str, backup_dir: Path) -> None:
    report = make_backup(agent_env)
    path = Path(str(report["path"]))
    sidecar = path.with_name(path.name + ".sha256")
    if damage == "bit-flip":
        flip_a_bit(path)
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size * 2 // 3])
    elif damage == "wrong-sha256":
        sidecar.write_text(f"{'0' * 64}  {path.name}\n")
    else:
        sidecar.unlink()
    before = (databases(pg_server), fingerprint(pg_server, database))
    unsigned: tuple[str, ...] = ()
    if damage.endswith("sha256"):  # the signature catches a changed checksum file first
        signed = run_agent(["restore", str(path), "--yes"], agent_env)
        refused_and_untouched(signed, pg_server, database, before, code=8,
                              fragment="differs from the SHA-256 in its signed manifest")
        unsigned = ("--allow-unsigned",)  # and without it, the checksum wall
    result = run_agent(["restore", str(path), "--yes", *unsigned], agent_env)
    expect(result, "bit flip, truncation, wrong or missing .sha256, replaced S3 object")
    refused_and_untouched(result, pg_server, database, before, code=code, fragment=fragment)


def test_restore_refuses_a_tampered_s3_object(
        agent_env: dict[str, str], pg_server: PostgresServer, database: str,
        s3_endpoint: object, bucket: str) -> None:
    report = make_backup(agent_env)
    s3 = report["s3"]
    assert isinstance(s3, dict)
    client = s3_endpoint.client()  # type: ignore[attr-defined]
    client.put_object(Bucket=bucket, Key=s3["key"],
                      Body=gzip.compress(b"DROP SCHEMA shop CASCADE;\n"
                                         b"-- PostgreSQL database dump complete\n"))
    before = (databases(pg_server), fingerprint(pg_server, database))
    result = run_agent(["restore", s3["uri"], "--yes"], agent_env)
    refused_and_untouched(result, pg_server, database, before, code=8,
                          fragment="SHA-256 mismatch")


def test_restore_whose_sql_fails_midway_keeps_the_original_and_no_half_built_database(
        agent_env: dict[str, str], pg_server: PostgresServer, database: str,
        backup_dir: Path) -> None:
    report = make_backup(agent_env)

    def break_midway(sql: bytes) -> bytes:
        middle = sql.index(b"\nCOPY shop.orders")
        # A statement pg_dump could write, that fails when it runs.
        return sql[:middle] + b"\nALTER TABLE shop.no_such_table OWNER TO postgres;\n" \
            + sql[middle:]

    broken = rewrite_backup(backup_dir, str(report["name"]), break_midway)
    before = (databases(pg_server), fingerprint(pg_server, database))
    result = run_agent(["restore", str(backup_dir / broken), "--yes", "--allow-unsigned"],
                       agent_env)
    expect(result, "psql fails halfway through the SQL")
    refused_and_untouched(result, pg_server, database, before, code=10,
                          fragment="no_such_table")
    assert f"{database} was not changed" in result.stderr


def test_dry_run_changes_nothing(agent_env: dict[str, str], docker_shim: dict[str, str],
                                 pg_server: PostgresServer, database: str,
                                 backup_dir: Path) -> None:
    make_backup(agent_env)
    environment = {**agent_env, **docker_shim, "APP_CONTAINERS": "web,worker"}
    before = (databases(pg_server), fingerprint(pg_server, database),
              snapshot_files(backup_dir))
    result = run_agent(["restore", "latest", "--dry-run"], environment)
    assert result.returncode == 0, result.stderr
    assert "stop app containers: web, worker" in result.stderr
    assert "checksum: ok" in result.stderr
    environment_dry = {**environment, "DRY_RUN": "true"}
    assert run_agent(["restore", "latest"], environment_dry).returncode == 0
    assert (databases(pg_server), fingerprint(pg_server, database),
            snapshot_files(backup_dir)) == before
    # Only looked up (docker inspect, read-only): nothing stopped, nothing started.
    assert {call[0] for call in docker_calls(environment)} <= {"inspect"}


def test_dry_run_of_a_damaged_backup_says_it_would_be_refused(
        agent_env: dict[str, str], backup_dir: Path) -> None:
    report = make_backup(agent_env)
    flip_a_bit(Path(str(report["path"])))
    result = run_agent(["restore", "latest", "--dry-run"], agent_env)
    assert result.returncode == 8
    assert "would be refused" in result.stderr
    # --no-verify waives the checksum only: a broken gzip stream is refused all the same.
    waived = run_agent(["restore", "latest", "--dry-run", "--no-verify"], agent_env)
    assert waived.returncode == 8, waived.stderr
    assert "would be refused" in waived.stderr


def test_app_containers_are_stopped_around_the_swap_and_started_again(
        backed_up: tuple[dict[str, object], dict[str, str]], agent_env: dict[str, str],
        docker_shim: dict[str, str]) -> None:
    environment = {**agent_env, **docker_shim, "APP_CONTAINERS": "web worker"}
    result = run_agent(["restore", "latest", "--yes"], environment)
    assert result.returncode == 0, result.stderr
    assert [call[0] + " " + call[-1] for call in docker_calls(environment)] == [
        "inspect web", "inspect worker", "stop web", "stop worker", "start web",
        "start worker"]
    skipped = {**environment, "SKIP_APP_STOP": "true",
               "DOCKER_SHIM_LOG": environment["DOCKER_SHIM_LOG"] + ".skip"}
    assert run_agent(["restore", "latest", "--yes"], skipped).returncode == 0
    assert docker_calls(skipped) == []


def test_app_containers_are_started_again_after_a_failed_restore(
        backed_up: tuple[dict[str, object], dict[str, str]], agent_env: dict[str, str],
        docker_shim: dict[str, str], pg_server: PostgresServer, database: str) -> None:
    environment = {**agent_env, **docker_shim, "APP_CONTAINERS": "web worker",
                   "DOCKER_SHIM_FAIL_STOP": "worker"}
    before = (databases(pg_server), fingerprint(pg_server, database))
    result = run_agent(["restore", "latest", "--yes"], environment)
    expect(result, "a container that will not stop")
    refused_and_untouched(result, pg_server, database, before, code=10,
                          fragment="could not stop app container worker")
    assert [call[0] + " " + call[-1] for call in docker_calls(environment)] == [
        "inspect web", "inspect worker", "stop web", "stop worker", "start web"]


def test_a_missing_app_container_is_found_before_anything_is_built(
        backed_up: tuple[dict[str, object], dict[str, str]], agent_env: dict[str, str],
        docker_shim: dict[str, str], pg_server: PostgresServer, database: str) -> None:
    environment = {**agent_env, **docker_shim, "APP_CONTAINERS": "web worker",
                   "DOCKER_SHIM_MISSING": "worker"}
    before = (databases(pg_server), fingerprint(pg_server, database))
    result = run_agent(["restore", "latest", "--yes"], environment)
    refused_and_untouched(result, pg_server, database, before, code=10,
                          fragment="cannot reach app container worker")
    assert "nothing was restored" in result.stderr
    assert [call[0] for call in docker_calls(environment)] == ["inspect", "inspect"]


def test_restore_without_a_terminal_requires_yes(
        backed_up: tuple[dict[str, object], dict[str, str]], agent_env: dict[str, str],
        pg_server: PostgresServer, database: str) -> None:
    before = (databases(pg_server), fingerprint(pg_server, database))
    result = run_agent(["restore", "latest"], agent_env)
    refused_and_untouched(result, pg_server, database, before, code=2, fragment="--yes")


@pytest.mark.parametrize(("source", "code", "fragment"), [
    ("latest", 9, "no complete backup"),
    ("/etc/passwd", 2, "not in the backup directory"),
    ("s3://other-bucket/backups/2026/01/db_backup_20260101_020000.sql.gz", 2,
     "not in the configured bucket"),
    ("s3://BUCKET/backups/../2026/db_backup_20260101_020000.sql.gz", 2, "'..'"),
    ("s3://BUCKET/backups/2026/01/db_backup_20260101_020000.sql.gz", 9, "no object at"),
])
def test_bad_sources_get_one_line_and_touch_nothing(
        source: str, code: int, fragment: str, agent_env: dict[str, str], bucket: str,
        pg_server: PostgresServer, database: str) -> None:
    before = (databases(pg_server), fingerprint(pg_server, database))
    result = run_agent(["restore", source.replace("BUCKET", bucket), "--yes"], agent_env)
    if code == 2:
        expect(result, "s3:// URL for another bucket or with '..', path outside BACKUP_DIR")
    refused_and_untouched(result, pg_server, database, before, code=code, fragment=fragment)
    assert "backup-agent list" in result.stderr or code == 2


def test_roles_missing_here_are_created_unless_no_owner(
        agent_env: dict[str, str], pg_server: PostgresServer, database: str) -> None:
    pg_server.psql(database, "CREATE ROLE departed_owner; "
                             "ALTER TABLE shop.customers OWNER TO departed_owner;")
    try:
        make_backup(agent_env)
    finally:
        pg_server.psql(database, "REASSIGN OWNED BY departed_owner TO postgres; "
                                 "DROP OWNED BY departed_owner; DROP ROLE departed_owner;")
    expected = fingerprint(pg_server, database)
    result = run_agent(["restore", "latest", "--target-db", "no_roles", "--yes", "--no-owner",
                        "--json"], agent_env)
    try:
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["roles_created"] == []
        assert fingerprint(pg_server, "no_roles") == expected
        assert "departed_owner" not in pg_server.psql("postgres", "SELECT rolname FROM pg_roles;")
    finally:
        pg_server.drop_database("no_roles")
    created = run_agent(["restore", "latest", "--target-db", "with_roles", "--yes", "--json"],
                        agent_env)
    try:
        assert created.returncode == 0, created.stderr
        assert json.loads(created.stdout)["roles_created"] == ["departed_owner"]
        assert pg_server.psql("with_roles", "SELECT pg_get_userbyid(relowner) FROM pg_class "
                              "WHERE oid = 'shop.customers'::regclass;").strip() == \
            "departed_owner"
    finally:
        pg_server.drop_database("with_roles")
        pg_server.psql("postgres", "DROP ROLE departed_owner;")


def test_prune_databases_drops_the_rollback_copy_only_when_asked(
        backed_up: tuple[dict[str, object], dict[str, str]], agent_env: dict[str, str],
        pg_server: PostgresServer, database: str) -> None:
    restored = run_agent(["restore", "latest", "--yes", "--json"], agent_env)
    previous = json.loads(restored.stdout)["previous_database"]
    assert run_agent(["prune"], agent_env).returncode == 0
    assert previous in databases(pg_server)  # a plain prune never drops a database
    dry = run_agent(["prune", "--databases", "--dry-run", "--json"], agent_env)
    assert json.loads(dry.stdout)["databases_kept"] == [previous]  # younger than 24h
    assert previous in databases(pg_server)
    young = run_agent(["prune", "--databases"], agent_env)  # nothing old enough: no question
    assert young.returncode == 0, young.stderr
    assert "left 1 database(s) younger than 24h" in young.stdout
    assert previous in databases(pg_server)
    real = run_agent(["prune", "--databases", "--min-age", "1s", "--yes"], agent_env)
    assert real.returncode == 0, real.stderr
    assert f"dropped 1 database(s)\n  {previous} (" in real.stdout
    assert previous not in databases(pg_server) and database in databases(pg_server)
