"""`backup-agent backup` run as a subprocess against the embedded PostgreSQL and moto's server."""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import subprocess
from pathlib import Path

from testbed.postgres import PostgresServer
from testbed.s3 import S3Endpoint
from testbed.sample_data import fingerprint, row_counts
from tests.conftest import run_agent
from tests.faults.table import expect

NAME = re.compile(r"^db_backup_\d{8}_\d{6}\.sql\.gz$")


def only_backup(backup_dir: Path) -> Path:
    backups = [path for path in backup_dir.iterdir() if NAME.match(path.name)]
    assert len(backups) == 1, sorted(path.name for path in backup_dir.iterdir())
    return backups[0]


def test_backup_restored_with_gunzip_and_psql_is_identical(
        agent_env: dict[str, str], pg_server: PostgresServer, database: str,
        backup_dir: Path) -> None:
    result = run_agent(["backup"], agent_env)
    assert result.returncode == 0, result.stderr
    backup = only_backup(backup_dir)

    pg_server.create_database("restored_by_hand")
    try:
        # The guide's promise: a human can always restore with `gunzip -c FILE | psql`.
        restore = subprocess.run(  # noqa: S602 - the shell pipeline is the point
            f"gunzip -c {backup} | {pg_server.bin_directory}/psql -X -q -v ON_ERROR_STOP=1 "
            f"-h {pg_server.host} -p {pg_server.port} -U {pg_server.user} -d restored_by_hand",
            shell=True, env={**agent_env, "PGPASSWORD": pg_server.password},
            capture_output=True, text=True, check=False)
        assert restore.returncode == 0, restore.stderr
        assert fingerprint(pg_server, "restored_by_hand") == fingerprint(pg_server, database)
    finally:
        pg_server.drop_database("restored_by_hand")


def test_backup_writes_name_sidecar_and_manifest_as_specified(
        agent_env: dict[str, str], pg_server: PostgresServer, database: str,
        backup_dir: Path) -> None:
    result = run_agent(["backup", "--json"], agent_env)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    backup = only_backup(backup_dir)
    assert report["status"] == "success"
    assert report["name"] == backup.name
    assert backup.stat().st_mode & 0o777 == 0o600

    sidecar = backup_dir / f"{backup.name}.sha256"
    assert sidecar.read_text() == f"{report['sha256']}  {backup.name}\n"
    check = subprocess.run(["sha256sum", "-c", sidecar.name], cwd=backup_dir,
                           capture_output=True, text=True, check=False)
    assert check.returncode == 0 and f"{backup.name}: OK" in check.stdout

    with gzip.open(backup) as dump:
        assert b"-- PostgreSQL database dump complete" in dump.read()

    manifest = json.loads((backup_dir / f"{backup.name}.manifest.json").read_text())
    assert manifest["tool"] == "backup-agent"
    assert manifest["database"] == database
    assert manifest["sha256"] == report["sha256"]
    assert manifest["size_bytes"] == backup.stat().st_size
    assert manifest["server_version"].startswith("18.")
    assert manifest["pg_dump_version"].startswith("18.")
    assert manifest["row_counts"] == row_counts(pg_server, database)
    for key in ("started_at", "finished_at", "duration_seconds", "hostname",
                "uncompressed_bytes"):
        assert key in manifest
    assert manifest["globals"]["sha256"] == hashlib.sha256(
        (backup_dir / f"{backup.name}.globals").read_bytes()).hexdigest()
    assert manifest["globals"]["passwords_included"] is True  # the test user is a superuser
    # Nothing but the backup, its four sidecars (the signature: SIGNING_KEY_FILE is set, as
    # on every installed server) and the lock file.
    assert sorted(path.name for path in backup_dir.iterdir()) == sorted(
        [backup.name, sidecar.name, f"{backup.name}.manifest.json", f"{backup.name}.globals",
         f"{backup.name}.sig", ".backup-agent.lock"])


def test_backup_uploads_encrypted_objects_with_metadata_under_year_month_keys(
        agent_env: dict[str, str], s3_endpoint: S3Endpoint, bucket: str,
        backup_dir: Path) -> None:
    result = run_agent(["backup", "--json"], agent_env)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    backup = only_backup(backup_dir)
    stamp = backup.name.removeprefix("db_backup_")
    expected_key = f"backups/{stamp[:4]}/{stamp[4:6]}/{backup.name}"
    assert report["s3"]["key"] == expected_key
    assert report["s3"]["uri"] == f"s3://{bucket}/{expected_key}"

    client = s3_endpoint.client()
    keys = sorted(item["Key"] for item in client.list_objects_v2(Bucket=bucket)["Contents"])
    assert keys == sorted([expected_key, f"{expected_key}.sha256",
                           f"{expected_key}.manifest.json", f"{expected_key}.globals",
                           f"{expected_key}.sig"])
    for key in keys:
        head = client.head_object(Bucket=bucket, Key=key)
        assert head["ServerSideEncryption"] == "AES256"
        assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", head["Metadata"]["created"])
        assert head["Metadata"]["hostname"]
    data = client.get_object(Bucket=bucket, Key=expected_key)["Body"].read()
    assert data == backup.read_bytes()


def test_backup_without_s3_bucket_is_local_only_with_a_warning(
        agent_env: dict[str, str], backup_dir: Path) -> None:
    del agent_env["S3_BUCKET"]
    result = run_agent(["backup", "--json"], agent_env)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["status"] == "warning"
    assert report["s3"] is None
    assert "S3_BUCKET is not set" in result.stderr
    only_backup(backup_dir)


def test_backup_without_aws_credentials_is_local_only_with_a_warning(
        agent_env: dict[str, str], backup_dir: Path) -> None:
    del agent_env["AWS_ACCESS_KEY_ID"], agent_env["AWS_SECRET_ACCESS_KEY"]
    result = run_agent(["backup", "--json"], agent_env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["status"] == "warning"
    assert "no AWS credentials were found" in result.stderr
    only_backup(backup_dir)


def test_backup_with_s3_down_keeps_the_local_backup_and_fails(
        agent_env: dict[str, str], backup_dir: Path) -> None:
    agent_env["AWS_ENDPOINT_URL_S3"] = "http://127.0.0.1:9"  # discard port: nothing listens
    result = run_agent(["backup", "--json"], agent_env)
    expect(result, "S3 endpoint unreachable")
    assert "cannot reach" in result.stderr and "AWS_ENDPOINT_URL_S3" in result.stderr
    assert json.loads(result.stdout)["status"] == "failure"
    backup = only_backup(backup_dir)
    assert (backup_dir / f"{backup.name}.sha256").exists()
    assert "Traceback" not in result.stderr


def test_backup_to_a_missing_bucket_keeps_the_local_backup_and_names_the_bucket(
        agent_env: dict[str, str], backup_dir: Path) -> None:
    agent_env["S3_BUCKET"] = "no-such-bucket-here"
    result = run_agent(["backup"], agent_env)
    expect(result, "bucket missing")
    assert "bucket no-such-bucket-here does not exist" in result.stderr
    only_backup(backup_dir)


def test_backup_appends_a_markdown_report_to_the_github_step_summary(
        agent_env: dict[str, str], tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    result = run_agent(["backup"], {**agent_env, "GITHUB_STEP_SUMMARY": str(summary)})
    assert result.returncode == 0, result.stderr
    text = summary.read_text()
    assert "Database backup: success" in text
    assert "s3://" in text and "SHA-256" in text


def test_backup_reads_its_password_from_the_env_file(
        agent_env: dict[str, str], backup_dir: Path, tmp_path: Path) -> None:
    env_file = tmp_path / ".env.production"
    env_file.write_text(f"POSTGRES_PASSWORD='{agent_env.pop('POSTGRES_PASSWORD')}'\n"
                        "KEEP_LOCAL=3\n")
    result = run_agent(["backup", "--env-file", str(env_file)], agent_env)
    assert result.returncode == 0, result.stderr
    only_backup(backup_dir)


def test_python_dash_m_runs_the_same_cli() -> None:
    import sys
    result = subprocess.run([sys.executable, "-m", "backup_agent", "--version"],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0
    assert result.stdout.startswith("backup-agent ")
