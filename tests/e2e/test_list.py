"""`backup-agent list [local|s3|all]`."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

from testbed.s3 import S3Endpoint
from tests.conftest import make_backup, run_agent
from tests.fabricate import OLDEST, fabricate_agent_backups, write_backup


def test_list_all_shows_one_row_per_backup_with_its_places_newest_first(
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
    assert listed == [(name, "local+s3", True), (older[1], "local", True),
                      (older[0], "local", True), (legacy, "local", False)]
    both = json.loads(result.stdout)["backups"][0]
    assert both["places"] == ["local", "s3"] and both["path"] == str(backup_dir / name)
    assert both["key"] == f"backups/{name[10:14]}/{name[14:16]}/{name}"
    assert both["url"] == f"s3://{agent_env['S3_BUCKET']}/{both['key']}"

    table = run_agent(["list"], agent_env)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["NAME", "WHERE", "SIZE", "CREATED", "(UTC)", "AGE", "CHECKSUM",
                                "COMPLETE"]
    assert len(lines) == 5  # the header and one row per backup
    assert lines[1].startswith(name) and " local+s3 " in lines[1]
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


def test_list_keys_shows_the_s3_key_to_restore_from(agent_env: dict[str, str],
                                                    backup_dir: Path) -> None:
    name = make_backup(agent_env)["name"]
    local_only = fabricate_agent_backups(backup_dir, count=1)[0]
    table = run_agent(["list", "--keys"], agent_env)
    assert table.returncode == 0, table.stderr
    header, newest, older = table.stdout.splitlines()
    key = f"backups/{name[10:14]}/{name[14:16]}/{name}"
    assert header.split()[-2:] == ["S3", "KEY"] and newest.split()[-1] == key
    assert older.startswith(local_only) and older.split()[-1] == "-"
    # The key is what `restore` and `verify` take, as s3://BUCKET/KEY.
    verified = run_agent(["verify", f"s3://{agent_env['S3_BUCKET']}/{key}"], agent_env)
    assert verified.returncode == 0, verified.stderr
    # ... or the key itself with --from s3.
    by_key = run_agent(["verify", key, "--from", "s3"], agent_env)
    assert by_key.returncode == 0, by_key.stderr
    elsewhere = run_agent(["verify", "db_backup_20200101_000000.sql.gz"], agent_env)
    assert elsewhere.returncode == 9 and "add --from s3" in elsewhere.stderr


def test_list_json_always_carries_the_s3_key_and_url(agent_env: dict[str, str]) -> None:
    name = make_backup(agent_env)["name"]
    for where in ("s3", "all"):
        result = run_agent(["list", where, "--json"], agent_env)
        [entry] = json.loads(result.stdout)["backups"]
        assert entry["name"] == name
        assert entry["key"].endswith(f"/{name}") and entry["url"].startswith("s3://")


def test_list_summary_counts_sizes_and_names_what_s3_lacks(agent_env: dict[str, str],
                                                           backup_dir: Path) -> None:
    uploaded = make_backup(agent_env)
    local_only = fabricate_agent_backups(backup_dir, count=2)
    result = run_agent(["list", "--summary", "--json"], agent_env)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)["summary"]
    local, s3 = summary["places"]
    assert (local["place"], local["count"], local["oldest"], local["newest"]) == \
        ("local", 3, local_only[0], uploaded["name"])
    assert local["total_bytes"] == sum((backup_dir / name).stat().st_size
                                       for name in [*local_only, uploaded["name"]])
    assert (s3["place"], s3["count"], s3["total_bytes"], s3["oldest"], s3["newest"]) == \
        ("s3", 1, uploaded["size_bytes"], uploaded["name"], uploaded["name"])
    assert summary["missing_from_s3"] == list(reversed(local_only))

    text = run_agent(["list", "--summary"], agent_env)
    lines = text.stdout.splitlines()
    assert lines[0].split() == ["PLACE", "BACKUPS", "TOTAL", "OLDEST", "NEWEST"]
    assert lines[1].split()[:2] == ["local", "3"] and lines[2].split()[:2] == ["s3", "1"]
    assert lines[3] == "missing from S3: 2"


def test_a_cut_short_local_copy_is_listed_as_damaged_and_never_latest(
        agent_env: dict[str, str], backup_dir: Path) -> None:
    name = make_backup(agent_env)["name"]
    with (backup_dir / name).open("r+b") as data:
        data.truncate(1000)
    listed = run_agent(["list"], agent_env)
    row = next(line for line in listed.stdout.splitlines() if line.startswith(name))
    assert "damaged in local" in row
    restore = run_agent(["restore", "latest", "--dry-run"], agent_env)
    assert restore.returncode == 9 and "no complete backup" in restore.stderr
