"""Disaster recovery, judged by pg_dump itself: after a restore, `pg_dump --create` of the
restored database is the original's (the random \\restrict keys and version comments
aside), for the richest schema we can build, its roles and its database-level state.

Each case: in place; a brand-new cluster from S3 only (empty BACKUP_DIR); the same
encrypted; a PostgreSQL 16 server backed up by pg_dump 18 into itself; a 16 backup onto a
fresh 18.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from testbed.postgres import PostgresServer, running_server
from testbed.rich_schema import (
    ROLES,
    comparable,
    drop_rich_database,
    dump_plain,
    load_rich_schema,
)
from testbed.s3 import S3Endpoint
from tests.conftest import clean_environment, make_backup, run_agent, signed

PASSWORDS = {"rich_app": "rich_app-not-a-secret", "rich_ro": "rich_ro-not-a-secret"}


def same_dump_or_diff(expected: bytes, actual: bytes) -> str:
    """The first differing lines, for the assertion message."""
    import difflib

    lines = difflib.unified_diff(expected.decode().splitlines(), actual.decode().splitlines(),
                                 "original", "restored", lineterm="", n=2)
    return "\n".join(list(lines)[:60])


def rich_database(server: PostgresServer, name: str) -> str:
    drop_rich_database(server, name)
    server.create_database(name)
    load_rich_schema(server, name)
    return name


def environment(server: PostgresServer, database: str, backup_dir: Path,
                bin_directory: Path | None = None, *, extra: dict[str, str] | None = None
                ) -> dict[str, str]:
    return signed({**clean_environment(), **server.environment(database),
                   "PG_BINDIR": str(bin_directory or server.bin_directory),
                   "BACKUP_DIR": str(backup_dir), **(extra or {})})


def roles_only(server: PostgresServer) -> list[str]:
    """`pg_dumpall --roles-only` lines about the rich roles."""
    completed = subprocess.run(
        [str(server.bin_directory / "pg_dumpall"), "--roles-only", "--no-password",
         "-h", server.host, "-p", str(server.port), "-U", server.user],
        capture_output=True, text=True, check=True, timeout=60,
        env={**clean_environment(), "PGPASSWORD": server.password})
    return [line for line in completed.stdout.splitlines()
            if any(role in line for role in ROLES) and not line.startswith("--")]


def logs_in(server: PostgresServer, database: str, role: str, password: str) -> bool:
    completed = subprocess.run(
        [str(server.bin_directory / "psql"), "-X", "-tAc", "SELECT current_user",
         "-h", server.host, "-p", str(server.port), "-U", role, "-d", database],
        capture_output=True, text=True, check=False, timeout=30,
        env={**clean_environment(), "PGPASSWORD": password})
    return completed.returncode == 0 and completed.stdout.strip() == role


@pytest.fixture
def new_cluster() -> Iterator[PostgresServer]:
    """A brand-new PostgreSQL 18 cluster: no roles but its superuser, no databases."""
    with running_server() as server:
        yield server


def test_a_restore_in_place_brings_back_every_grant_setting_and_owner(
        pg_server: PostgresServer, backup_dir: Path) -> None:
    database = rich_database(pg_server, "dr_in_place")
    before = comparable(dump_plain(pg_server, database, create=True))
    env = environment(pg_server, database, backup_dir)
    make_backup(env)
    result = run_agent(["restore", "latest", "--yes", "--json"], env)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["roles_created"] == []
    assert comparable(dump_plain(pg_server, database, create=True)) == before
    for name in (database, report["previous_database"]):
        drop_rich_database(pg_server, name)


@pytest.mark.parametrize("encrypt", [False, True], ids=["plain", "encrypted"])
def test_a_brand_new_server_comes_back_from_s3_with_one_command(
        pg_server: PostgresServer, new_cluster: PostgresServer, s3_endpoint: S3Endpoint,
        bucket: str, tmp_path: Path, encrypt: bool) -> None:
    database = rich_database(pg_server, f"dr_new_{'enc' if encrypt else 'plain'}")
    original = comparable(dump_plain(pg_server, database, create=True))
    production = tmp_path / "production-backups"
    production.mkdir()
    s3 = {**s3_endpoint.environment(), "S3_BUCKET": bucket}
    secrets = {}
    if encrypt:
        identity = tmp_path / "backup.key"
        keygen = run_agent(["keygen", str(identity)], clean_environment())
        assert keygen.returncode == 0, keygen.stderr
        public = next(word for word in keygen.stdout.split() if word.startswith("age1"))
        secrets = {"ENCRYPT_TO": public}
    report = make_backup(environment(pg_server, database, production, extra={**s3, **secrets}))
    if encrypt:
        # Nothing readable names a role or holds a password hash, in S3 or on disk.
        client = s3_endpoint.client()
        stored = [client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
                  for item in client.list_objects_v2(Bucket=bucket)["Contents"]]
        stored += [path.read_bytes() for path in production.iterdir()]
        assert len(stored) >= 8
        for content in stored:
            assert not any(role.encode() in content for role in ROLES)
            assert b"SCRAM-SHA-256" not in content
        secrets = {"AGE_IDENTITY_FILE": str(identity)}

    empty = tmp_path / "new-server-backups"
    empty.mkdir()
    env = environment(new_cluster, database, empty, extra={**s3, **secrets})
    result = run_agent(["restore", "latest", "--from", "s3", "--yes"], env)
    assert result.returncode == 0, result.stderr
    said = result.stdout + result.stderr
    assert "created role(s): rich_owner, rich_app, rich_ro" in said  # in their order
    assert report["name"] in said

    restored = comparable(dump_plain(new_cluster, database, create=True))
    assert restored == original, same_dump_or_diff(original, restored)
    assert roles_only(new_cluster) == roles_only(pg_server)
    for role, password in PASSWORDS.items():
        assert logs_in(new_cluster, database, role, password)
    drop_rich_database(pg_server, database)


def test_a_16_server_backed_up_by_pg_dump_18_restores_into_itself_whole(
        pg16_server: PostgresServer, pg_server: PostgresServer, backup_dir: Path) -> None:
    database = rich_database(pg16_server, "dr_16_by_18")
    before = comparable(dump_plain(pg16_server, database, create=True))
    env = environment(pg16_server, database, backup_dir, pg_server.bin_directory)
    make_backup(env)
    result = run_agent(["restore", "latest", "--yes", "--json"], env)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert any("left out `SET transaction_timeout`" in item for item in report["warnings"])
    after = comparable(dump_plain(pg16_server, database, create=True))
    assert after == before, same_dump_or_diff(before, after)
    for name in (database, report["previous_database"]):
        drop_rich_database(pg16_server, name)


def test_a_16_backup_comes_back_whole_on_a_fresh_18(
        pg16_server: PostgresServer, new_cluster: PostgresServer, tmp_path: Path) -> None:
    database = rich_database(pg16_server, "dr_16_to_18")
    # Both dumped by pg_dump 18, so only the servers differ.
    original = comparable(dump_plain(pg16_server, database, new_cluster.bin_directory,
                                     create=True))
    backups = tmp_path / "backups"
    backups.mkdir()
    make_backup(environment(pg16_server, database, backups))
    result = run_agent(["restore", "latest", "--yes"],
                       environment(new_cluster, database, backups))
    assert result.returncode == 0, result.stderr
    restored = comparable(dump_plain(new_cluster, database, create=True))
    # The one difference is PostgreSQL's own: pg_dump 16 wrote `GRANT ALL`, and on 17+ ALL
    # also holds the new MAINTAIN privilege (exactly as with pg_dump 16 | psql 18 by hand).
    original = original.replace(b"GRANT SELECT,INSERT,REFERENCES,DELETE,TRIGGER,TRUNCATE,"
                                b"UPDATE ON", b"GRANT ALL ON")
    assert restored == original, same_dump_or_diff(original, restored)
    assert roles_only(new_cluster) == roles_only(pg16_server)
    for role, password in PASSWORDS.items():
        assert logs_in(new_cluster, database, role, password)
    drop_rich_database(pg16_server, database)
