"""`backup-agent verify`: streamed proofs, and the weekly restore test."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from testbed.postgres import PostgresServer
from tests.conftest import make_backup, run_agent
from tests.fabricate import flip_a_bit, snapshot_files


def test_verify_latest_local_and_an_s3_object(agent_env: dict[str, str],
                                              backup_dir: Path) -> None:
    report = make_backup(agent_env)
    files = snapshot_files(backup_dir)
    local = run_agent(["verify", "--json"], agent_env)
    assert local.returncode == 0, local.stderr
    checked = json.loads(local.stdout)["backups"][0]
    assert (checked["name"], checked["checksum"], checked["gzip_complete"],
            checked["dump_complete"]) == (report["name"], "ok", True, True)

    s3 = report["s3"]
    remote = run_agent(["verify", s3["uri"], "--json"], agent_env)
    assert remote.returncode == 0, remote.stderr
    assert json.loads(remote.stdout)["backups"][0]["location"] == s3["uri"]
    latest_s3 = run_agent(["verify", "latest", "--from", "s3"], agent_env)
    assert latest_s3.returncode == 0, latest_s3.stderr
    assert snapshot_files(backup_dir) == files  # streamed: nothing written or changed


def test_verify_all_reports_each_backup_and_fails_on_a_bad_one(
        agent_env: dict[str, str]) -> None:
    first = make_backup(agent_env)
    make_backup(agent_env)
    flip_a_bit(Path(first["path"]))
    result = run_agent(["verify", "--all", "--json"], agent_env)
    assert result.returncode == 8
    report = json.loads(result.stdout)
    assert report["status"] == "failure"
    assert [item["ok"] for item in report["backups"]] == [True, False]
    assert f"verification failed for {first['name']}" in result.stderr


def test_restore_test_passes_on_a_good_backup_and_leaves_no_scratch_database(
        agent_env: dict[str, str], pg_server: PostgresServer) -> None:
    make_backup(agent_env)
    before = pg_server.database_names()
    result = run_agent(["verify", "latest", "--restore-test", "--json"], agent_env)
    assert result.returncode == 0, result.stderr
    test = json.loads(result.stdout)["backups"][0]["restore_test"]
    assert test["passed"] is True and test["tables_checked"] == 5
    assert pg_server.database_names() == before


def test_restore_test_fails_when_the_manifest_counts_do_not_match(
        agent_env: dict[str, str], pg_server: PostgresServer, backup_dir: Path) -> None:
    report = make_backup(agent_env)
    manifest_path = backup_dir / f"{report['name']}.manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["row_counts"]["shop.orders"] += 1
    manifest_path.write_text(json.dumps(manifest))
    before = pg_server.database_names()
    # The changed manifest fails its signature; past that (--allow-unsigned), the comparison.
    result = run_agent(["verify", "--restore-test", "--json", "--allow-unsigned"], agent_env)
    assert result.returncode == 8
    mismatches = json.loads(result.stdout)["backups"][0]["restore_test"]["mismatches"]
    assert mismatches == ["shop.orders: 300000 rows restored, manifest says 300001"]
    assert pg_server.database_names() == before


def test_row_counts_taken_during_concurrent_inserts_match_the_dump(
        agent_env: dict[str, str], pg_server: PostgresServer, database: str) -> None:
    # A writer commits one row at a time for the whole backup.
    writer = subprocess.Popen(
        [str(pg_server.bin_directory / "psql"), "-X", "-q", "-h", pg_server.host,
         "-p", str(pg_server.port), "-U", pg_server.user, "-d", database, "-c",
         "DO $$ BEGIN FOR i IN 1..10000000 LOOP "
         "INSERT INTO audit.events (message) VALUES ('during backup'); COMMIT; END LOOP; END $$;"],
        env={"PGPASSWORD": pg_server.password}, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    try:
        pg_server.psql(database, "SELECT pg_sleep(0.3);")  # let it get going
        report = make_backup(agent_env)
    finally:
        writer.kill()
        writer.wait()
    final = int(pg_server.psql(database, "SELECT count(*) FROM audit.events;"))
    recorded = json.loads(Path(f"{report['path']}.manifest.json").read_text())["row_counts"]
    assert 500 < recorded["audit.events"] < final  # rows arrived before and after the snapshot
    result = run_agent(["verify", "--restore-test"], agent_env)
    assert result.returncode == 0, result.stderr


def test_latest_names_a_newer_backup_it_passed_over_as_damaged(
        agent_env: dict[str, str]) -> None:
    older = make_backup(agent_env)
    newest = make_backup(agent_env)
    path = Path(str(newest["path"]))
    path.write_bytes(path.read_bytes()[:-100])  # cut short: its manifest's size disagrees
    result = run_agent(["verify", "latest", "--json"], agent_env)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["backups"][0]["name"] == older["name"]
    assert any(f"passed over {path}" in warning and "cut short" in warning
               for warning in document["warnings"]), document["warnings"]
