"""Nothing in a backup runs before it is proven, and nothing in it reaches past the database.

Each attack is a genuine dump with lines spliced in, made two ways: damaged (its .sha256
no longer matches) and consistent (data, .sha256 and manifest rewritten together, all the
writer's S3 key needs). Every entry point must refuse it with nothing run: the file the
attack would create is absent, and production's databases and data are as they were.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from testbed.postgres import PostgresServer
from testbed.s3 import S3Endpoint
from testbed.sample_data import fingerprint
from tests.conftest import DOCKER_CONTAINER, make_backup, run_agent
from tests.fabricate import rewrite_backup
from tests.faults.table import expect


def attacks(marker: Path, database: str) -> dict[str, bytes]:
    """What a rewritten backup could hold, each creating `marker` or harming `database`."""
    return {
        "shell": f"\\! touch {marker}\n".encode(),
        "program": f"COPY (SELECT 1) TO PROGRAM 'touch {marker}';\n".encode(),
        "output-file": f"\\o {marker}\nSELECT 1;\n".encode(),
        "drop-production": f"DROP DATABASE {database} WITH (FORCE);\n".encode(),
        "connect-and-drop": f"\\connect {database}\nDROP TABLE shop.orders;\n".encode(),
    }


def splice(attack: bytes) -> Callable[[bytes], bytes]:
    """Put `attack` right after the dump's SET lines, before any table exists."""
    def change(sql: bytes) -> bytes:
        at = sql.index(b"\nCREATE SCHEMA")
        return sql[:at] + b"\n" + attack + sql[at:]
    return change


ATTACK = ("a backup holding what pg_dump never writes (psql meta-commands, COPY TO PROGRAM, "
          "DROP DATABASE, roles), damaged or consistently rewritten")


def untouched(result: Any, pg_server: PostgresServer, database: str,
              before: tuple[set[str], dict[str, str]], marker: Path) -> None:
    expect(result, ATTACK)
    assert "refusing the backup" in result.stderr or "verification failed" in result.stderr
    assert "Traceback" not in result.stderr
    assert not marker.exists()
    assert (pg_server.database_names(), fingerprint(pg_server, database)) == before


def state(pg_server: PostgresServer, database: str) -> tuple[set[str], dict[str, str]]:
    return pg_server.database_names(), fingerprint(pg_server, database)


@pytest.mark.parametrize("attack", ["shell", "program", "output-file", "drop-production",
                                    "connect-and-drop"])
def test_a_consistently_rewritten_local_backup_is_refused_with_nothing_run(
        attack: str, agent_env: dict[str, str], pg_server: PostgresServer, database: str,
        backup_dir: Path, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    report = make_backup(agent_env)
    rewritten = rewrite_backup(backup_dir, str(report["name"]),
                               splice(attacks(marker, database)[attack]))
    before = state(pg_server, database)
    unsigned = run_agent(["restore", str(backup_dir / rewritten), "--yes"], agent_env)
    assert unsigned.returncode == 8 and "it is not signed" in unsigned.stderr, unsigned.stderr
    assert not marker.exists() and state(pg_server, database) == before
    # Past the signature (--allow-unsigned), the engine's own walls still refuse it.
    result = run_agent(["restore", str(backup_dir / rewritten), "--yes", "--allow-unsigned"],
                       agent_env)
    untouched(result, pg_server, database, before, marker)
    assert "pg_dump never writes" in result.stderr


def test_a_damaged_backup_with_an_attack_is_refused_before_any_of_it_runs(
        agent_env: dict[str, str], pg_server: PostgresServer, database: str,
        backup_dir: Path, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    report = make_backup(agent_env)
    name = str(report["name"])
    data = backup_dir / name
    sql = gzip.decompress(data.read_bytes())
    data.write_bytes(gzip.compress(splice(attacks(marker, database)["shell"])(sql)))
    before = state(pg_server, database)
    for arguments in (["restore", str(data), "--yes"],
                      ["restore", str(data), "--target-db", f"{database}_copy", "--yes"],
                      ["verify", str(data), "--restore-test"]):
        result = run_agent(arguments, agent_env)
        untouched(result, pg_server, database, before, marker)
        assert "SHA-256 mismatch" in result.stderr


def rewrite_in_s3(s3_endpoint: S3Endpoint, bucket: str, report: dict[str, Any],
                  change: Callable[[bytes], bytes]) -> None:
    """Replace the S3 object, its .sha256 and its manifest consistently (the writer's key)."""
    client = s3_endpoint.client()
    key = report["s3"]["key"]
    data = gzip.compress(change(gzip.decompress(
        client.get_object(Bucket=bucket, Key=key)["Body"].read())))
    digest = hashlib.sha256(data).hexdigest()
    manifest = json.loads(client.get_object(Bucket=bucket, Key=f"{key}.manifest.json")
                          ["Body"].read())
    manifest.update(sha256=digest, size_bytes=len(data))
    name = key.rsplit("/", 1)[-1]
    client.put_object(Bucket=bucket, Key=key, Body=data)
    client.put_object(Bucket=bucket, Key=f"{key}.sha256", Body=f"{digest}  {name}\n".encode())
    client.put_object(Bucket=bucket, Key=f"{key}.manifest.json",
                      Body=json.dumps(manifest).encode())


@pytest.mark.parametrize("entry", ["restore-url", "restore-latest", "target-db",
                                   "restore-test", "docker"])
def test_a_consistent_rewrite_in_s3_is_refused_at_every_entry_point(
        entry: str, agent_env: dict[str, str], docker_shim: dict[str, str],
        pg_server: PostgresServer, database: str, backup_dir: Path, tmp_path: Path,
        s3_endpoint: S3Endpoint, bucket: str) -> None:
    marker = tmp_path / "pwned"
    report = make_backup(agent_env)
    for path in backup_dir.iterdir():  # a brand-new server: S3 only
        path.unlink()
    rewrite_in_s3(s3_endpoint, bucket, report, splice(
        attacks(marker, database)["program" if entry == "docker" else "shell"]))
    environment = dict(agent_env)
    if entry == "docker":
        environment.update(docker_shim, POSTGRES_CONTAINER=DOCKER_CONTAINER)
        del environment["PG_BINDIR"]
    arguments = {
        "restore-url": ["restore", report["s3"]["uri"], "--yes"],
        "restore-latest": ["restore", "latest", "--from", "s3", "--yes"],
        "target-db": ["restore", report["s3"]["uri"], "--target-db", f"{database}_x", "--yes"],
        "restore-test": ["verify", "latest", "--from", "s3", "--restore-test"],
        "docker": ["restore", "latest", "--from", "s3", "--yes"],
    }[entry]
    before = state(pg_server, database)
    # Its signature no longer matches; past that (--allow-unsigned), the engine refuses it.
    result = run_agent([*arguments, "--allow-unsigned"], environment)
    untouched(result, pg_server, database, before, marker)


def test_the_proven_bytes_are_the_restored_bytes_with_the_dumps_own_restrict_left_out(
        agent_env: dict[str, str], pg_server: PostgresServer, database: str,
        backup_dir: Path) -> None:
    report = make_backup(agent_env)
    assert b"\\restrict " in gzip.decompress((backup_dir / str(report["name"])).read_bytes())
    before = fingerprint(pg_server, database)
    result = run_agent(["restore", "latest", "--from", "s3", "--target-db",
                        f"{database}_again", "--yes", "--json"], agent_env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["verified"] is True
    assert fingerprint(pg_server, f"{database}_again") == before
    pg_server.drop_database(f"{database}_again")


def test_a_backup_of_another_database_never_replaces_this_one(
        agent_env: dict[str, str], pg_server: PostgresServer, database: str) -> None:
    """One bucket, two databases: `latest` may be the other's; it replaces nothing here."""
    make_backup(agent_env)
    other = f"{database}_other"
    pg_server.create_database(other)
    try:
        before = pg_server.psql(other, "SELECT count(*) FROM pg_class;")
        refused = run_agent(["restore", "latest", "--yes"], {**agent_env, "POSTGRES_DB": other})
        assert refused.returncode == 2, refused.stderr
        assert f"is a backup of database {database}, not of {other}" in refused.stderr
        assert "--target-db" in refused.stderr
        assert pg_server.psql(other, "SELECT count(*) FROM pg_class;") == before
        beside = run_agent(["restore", "latest", "--yes", "--target-db", f"{other}_copy"],
                           {**agent_env, "POSTGRES_DB": other})
        assert beside.returncode == 0, beside.stderr
    finally:
        pg_server.drop_database(other)
        pg_server.drop_database(f"{other}_copy")
