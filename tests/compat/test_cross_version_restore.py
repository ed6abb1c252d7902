"""Across versions with the agent itself: a PostgreSQL 16 server backed up by pg_dump 18
restores into that same server, and a 16 backup restores into 18 (the upgrade path)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from testbed.postgres import PostgresServer
from testbed.sample_data import fingerprint, load_sample_data
from tests.conftest import clean_environment, make_backup, run_agent, signed
from tests.fabricate import rewrite_backup


def agent_environment(server: PostgresServer, database: str, backup_dir: Path,
                      bin_directory: Path) -> dict[str, str]:
    return signed({**clean_environment(), **server.environment(database),
                   "PG_BINDIR": str(bin_directory), "BACKUP_DIR": str(backup_dir)})


def sample_database(server: PostgresServer, name: str) -> str:
    server.drop_database(name)
    server.create_database(name)
    load_sample_data(server, name, order_rows=2_000)
    return name


def test_a_16_server_backed_up_by_pg_dump_18_restores_into_itself(
        pg16_server: PostgresServer, pg_server: PostgresServer, backup_dir: Path) -> None:
    database = sample_database(pg16_server, "cross_16_by_18")
    environment = agent_environment(pg16_server, database, backup_dir, pg_server.bin_directory)
    report = make_backup(environment)
    assert b"SET transaction_timeout" in gzip.decompress(
        (backup_dir / str(report["name"])).read_bytes())
    result = run_agent(["restore", "latest", "--target-db", f"{database}_back", "--yes",
                        "--json"], environment)
    assert result.returncode == 0, result.stderr
    warnings = json.loads(result.stdout)["warnings"]
    assert any("left out `SET transaction_timeout`" in warning for warning in warnings)
    assert fingerprint(pg16_server, f"{database}_back") == fingerprint(pg16_server, database)
    test = run_agent(["verify", "latest", "--restore-test", "--json"], environment)
    assert test.returncode == 0, test.stderr
    pg16_server.drop_database(f"{database}_back")


def test_a_16_backup_restores_into_18_the_upgrade_path(
        pg16_server: PostgresServer, pg_server: PostgresServer, backup_dir: Path) -> None:
    database = sample_database(pg16_server, "cross_16_to_18")
    make_backup(agent_environment(pg16_server, database, backup_dir,
                                  pg16_server.bin_directory))
    target = "cross_from_16"
    pg_server.drop_database(target)
    environment = agent_environment(pg_server, "postgres", backup_dir, pg_server.bin_directory)
    result = run_agent(["restore", "latest", "--target-db", target, "--yes", "--json"],
                       environment)
    assert result.returncode == 0, result.stderr
    assert not any("left out" in warning for warning in json.loads(result.stdout)["warnings"])
    assert fingerprint(pg_server, target) == fingerprint(pg16_server, database)
    pg_server.drop_database(target)


def test_doctor_explains_a_newer_pg_dump_than_the_server(
        pg16_server: PostgresServer, pg_server: PostgresServer, backup_dir: Path) -> None:
    environment = agent_environment(pg16_server, "postgres", backup_dir,
                                    pg_server.bin_directory)
    result = run_agent(["doctor"], environment)
    assert result.returncode == 0, result.stdout + result.stderr
    line = next(line for line in result.stdout.splitlines() if " pg_dump " in line)
    assert "is newer than the PostgreSQL 16.2 server" in line
    assert "transaction_timeout" in line


def test_a_server_without_standard_strings_cannot_make_psql_split_the_dump_differently(
        pg16_server: PostgresServer, backup_dir: Path, tmp_path: Path) -> None:
    """psql 16 has no \\restrict wall: only the session's standard_conforming_strings keeps
    it reading strings exactly as the statement check did."""
    pg16_server.psql("postgres", """
        DO $$ BEGIN CREATE ROLE sloppy SUPERUSER LOGIN PASSWORD 'sloppy-pw';
        EXCEPTION WHEN duplicate_object THEN NULL; END $$;
        ALTER ROLE sloppy SET standard_conforming_strings = off;""")
    database = sample_database(pg16_server, "cross_sloppy")
    environment = agent_environment(pg16_server, database, backup_dir,
                                    pg16_server.bin_directory)
    report = make_backup(environment)
    marker = tmp_path / "pwned"

    def splice(sql: bytes) -> bytes:
        # With escapes in strings, psql would end the first literal later and run `\!`.
        payload = (f"COMMENT ON SCHEMA public IS 'a\\'; COMMENT ON SCHEMA public IS "
                   f"' \\! touch {marker} #';\n").encode()
        at = sql.index(b"SET standard_conforming_strings = on;")
        return sql[:at] + payload + sql[at:]

    rewritten = rewrite_backup(backup_dir, str(report["name"]), splice)
    sloppy = {**environment, "POSTGRES_USER": "sloppy", "POSTGRES_PASSWORD": "sloppy-pw",
              "TRUSTED_SIGNING_KEYS": ""}  # rewritten: no longer the server's signed backup
    result = run_agent(["restore", str(backup_dir / rewritten), "--target-db",
                        f"{database}_copy", "--yes", "--allow-unsigned"], sloppy)
    assert not marker.exists(), result.stderr
    assert result.returncode == 0, result.stderr
    pg16_server.drop_database(f"{database}_copy")
