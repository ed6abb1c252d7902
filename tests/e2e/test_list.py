"""`backup-agent list [local|s3|all]`."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

from testbed.s3 import S3Endpoint
from tests.conftest import run_agent
from tests.fabricate import OLDEST, fabricate_agent_backups, write_backup


def test_list_all_shows_local_and_s3_newest_first_with_completeness(
        agent_env: dict[str, str], backup_dir: Path) -> None:
    backed_up = run_agent(["backup", "--json"], agent_env)
    assert backed_up.returncode == 0, backed_up.stderr
    name = json.loads(backed_up.stdout)["name"]
    older = fabricate_agent_backups(backup_dir, count=2)
    legacy = write_backup(backup_dir, OLDEST.replace(year=2025), with_manifest=False)

    result = run_agent(["list", "all", "--json"], agent_env)
    assert result.returncode == 0, result.stderr
    listed = [(entry["name"], entry["where"], entry["complete"])
              for entry in json.loads(result.stdout)["backups"]]
    assert listed == [(name, "local", True), (name, "s3", True), (older[1], "local", True),
                      (older[0], "local", True), (legacy, "local", False)]

    table = run_agent(["list"], agent_env)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["NAME", "WHERE", "SIZE", "CREATED", "(UTC)", "AGE", "CHECKSUM",
                                "COMPLETE"]
    assert lines[1].startswith(name) and " local " in lines[1]
    assert lines[-1].startswith(legacy) and lines[-1].endswith("no manifest")


def test_list_local_without_s3_configured(agent_env: dict[str, str], backup_dir: Path) -> None:
    fabricate_agent_backups(backup_dir, count=1)
    del agent_env["S3_BUCKET"]
    local = run_agent(["list", "local"], agent_env)
    assert local.returncode == 0 and "db_backup_20260101_020000.sql.gz" in local.stdout
    both = run_agent(["list", "all"], agent_env)
    assert both.returncode == 0
    assert "S3_BUCKET is not set: showing local backups only" in both.stderr
    s3_only = run_agent(["list", "s3"], agent_env)
    assert s3_only.returncode == 2
    assert "S3_BUCKET is not set" in s3_only.stderr


def test_list_s3_paginates_and_reads_only_under_the_prefix(
        agent_env: dict[str, str], s3_endpoint: S3Endpoint, bucket: str) -> None:
    client = s3_endpoint.client()
    moments = [OLDEST + timedelta(minutes=minute) for minute in range(1005)]

    def put_legacy(moment: object) -> None:
        name = f"db_backup_{moment:%Y%m%d_%H%M%S}.sql.gz"
        client.put_object(Bucket=bucket, Key=f"backups/2026/01/{name}", Body=b"old")

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(put_legacy, moments))
    client.put_object(Bucket=bucket, Key="elsewhere/db_backup_20991231_235959.sql.gz", Body=b"x")
    client.put_object(Bucket=bucket, Key="db_backup_20991231_235958.sql.gz", Body=b"x")

    result = run_agent(["list", "s3", "--json"], agent_env)
    assert result.returncode == 0, result.stderr
    backups = json.loads(result.stdout)["backups"]
    assert len(backups) == 1005
    assert all(entry["location"].startswith(f"s3://{bucket}/backups/") for entry in backups)
    assert all(entry["complete"] is False for entry in backups)  # the old script's: no manifest
    assert backups[0]["name"] == f"db_backup_{moments[-1]:%Y%m%d_%H%M%S}.sql.gz"


def test_list_s3_with_the_endpoint_down_exits_5(agent_env: dict[str, str]) -> None:
    result = run_agent(["list", "s3"], {**agent_env, "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9"})
    assert result.returncode == 5
    assert "cannot reach" in result.stderr
