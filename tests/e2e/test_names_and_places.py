"""Names cannot lie, --no-verify cannot swap garbage in, and the agent's places are its own."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from testbed.postgres import PostgresServer
from testbed.s3 import S3Endpoint
from testbed.sample_data import fingerprint
from tests.conftest import make_backup, run_agent
from tests.fabricate import write_backup
from tests.faults.table import expect

FUTURE = "db_backup_20991231_235959.sql.gz"


def plant_in_s3(s3_endpoint: S3Endpoint, bucket: str, name: str) -> str:
    key = f"backups/{name[10:14]}/{name[14:16]}/{name}"
    client = s3_endpoint.client()
    for suffix, body in (("", b"x"), (".sha256", b"0" * 64 + b"  " + name.encode()),
                         (".manifest.json", json.dumps({"tool": "backup-agent"}).encode())):
        client.put_object(Bucket=bucket, Key=key + suffix, Body=body)
    return key


def test_a_planted_future_backup_in_s3_fools_neither_status_nor_latest(
        agent_env: dict[str, str], s3_endpoint: S3Endpoint, bucket: str) -> None:
    plant_in_s3(s3_endpoint, bucket, FUTURE)
    status = run_agent(["status", "--max-age", "26h", "--where", "s3"], agent_env)
    assert status.returncode == 11 and "dated in the future" in status.stderr, status.stderr
    report = make_backup(agent_env)
    status = run_agent(["status", "--max-age", "26h", "--where", "s3", "--json"], agent_env)
    expect(status, "a backup name dated in the future (planted)")
    assert json.loads(status.stdout)["name"] == report["name"]
    dry = run_agent(["restore", "latest", "--from", "s3", "--dry-run", "--json"], agent_env)
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout)["source_name"] == report["name"]


def test_future_dated_names_never_make_retention_delete_the_new_backup(
        agent_env: dict[str, str], backup_dir: Path) -> None:
    from datetime import UTC, datetime
    for year in (2097, 2098, 2099):
        write_backup(backup_dir, datetime(year, 1, 1, tzinfo=UTC))
    report = make_backup({**agent_env, "KEEP_LOCAL": "1"})
    assert (backup_dir / str(report["name"])).is_file()
    assert len(list(backup_dir.glob("db_backup_20*.sql.gz"))) == 4  # nothing deleted


def test_no_verify_of_random_bytes_swaps_nothing_in(
        agent_env: dict[str, str], pg_server: PostgresServer, database: str,
        backup_dir: Path) -> None:
    report = make_backup(agent_env)
    (backup_dir / str(report["name"])).write_bytes(os.urandom(50_000))
    before = (pg_server.database_names(), fingerprint(pg_server, database))
    # (`latest` now passes over it: its size is not the manifest's. Named, it is proven.)
    result = run_agent(["restore", str(backup_dir / str(report["name"])), "--no-verify",
                        "--yes"], agent_env)
    expect(result, "--no-verify on bytes that are not a whole dump")
    assert (pg_server.database_names(), fingerprint(pg_server, database)) == before


def test_a_backup_directory_others_may_write_is_refused_and_the_lock_is_private(
        agent_env: dict[str, str], backup_dir: Path) -> None:
    make_backup(agent_env)
    assert stat.S_IMODE((backup_dir / ".backup-agent.lock").stat().st_mode) == 0o600
    backup_dir.chmod(0o777)
    for arguments in (["backup"], ["prune"], ["restore", "latest", "--dry-run"]):
        result = run_agent(arguments, agent_env)
        expect(result, "BACKUP_DIR writable by other users, or not the agent's")
        assert f"chmod 700 {backup_dir}" in result.stderr


@pytest.mark.parametrize(("url", "fragment"), [
    ("s3://{bucket}/elsewhere/2026/01/db_backup_20260101_020000.sql.gz", "S3_PREFIX"),
    ("s3://{bucket}/backups/2026/01/db_backup_20260101_020000.sql.gz\n", "does not name a backup"),
    ("s3://other-bucket/backups/2026/01/db_backup_20260101_020000.sql.gz", "configured bucket"),
])
def test_s3_urls_must_name_a_backup_exactly_under_the_configured_prefix(
        url: str, fragment: str, agent_env: dict[str, str], bucket: str) -> None:
    result = run_agent(["restore", url.format(bucket=bucket), "--dry-run"], agent_env)
    assert result.returncode == 2 and fragment in result.stderr, result.stderr
    unset = {key: value for key, value in agent_env.items() if key != "S3_BUCKET"}
    result = run_agent(["restore", url.format(bucket=bucket), "--dry-run"], unset)
    assert result.returncode == 2 and "S3_BUCKET" in result.stderr, result.stderr
