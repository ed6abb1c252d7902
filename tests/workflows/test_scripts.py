"""What the workflows run, run here: runner scripts -> ssh (shim) -> server scripts -> agent.

The server side gets only its own configuration (the env file, the agent's path); the S3
secrets travel on ssh's standard input exactly as in GitHub Actions.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from pyrage import x25519

from testbed.postgres import PostgresServer
from testbed.s3 import S3Endpoint
from tests.conftest import (
    AGENT,
    DOCKER_CONTAINER,
    SHIMS,
    clean_environment,
    run_agent,
    signed,
)

REPOSITORY = Path(__file__).resolve().parents[2]
SCRIPTS = REPOSITORY / "scripts"


@pytest.fixture
def runner_env(pg_server: PostgresServer, database: str, s3_endpoint: S3Endpoint, bucket: str,
               backup_dir: Path, tmp_path: Path) -> dict[str, str]:
    """The runner's environment, and the server's env file the agent reads there."""
    server_env_file = tmp_path / ".env.production"
    server_settings = {**pg_server.environment(database), "BACKUP_DIR": str(backup_dir),
                       # The server signs its backups (and trusts its own key):
                       "SIGNING_KEY_FILE": signed({})["SIGNING_KEY_FILE"],
                       # Only because the "AWS" here is moto on loopback:
                       "AWS_ENDPOINT_URL_S3": s3_endpoint.url}
    server_env_file.write_text("".join(f"{key}={value}\n"
                                       for key, value in server_settings.items()))
    aws = s3_endpoint.environment()
    return {
        **clean_environment(),
        "PATH": f"{SHIMS}:{clean_environment()['PATH']}",
        "PRODUCTION_HOST": "prod.example.internal", "PRODUCTION_USER": "ubuntu",
        "S3_BUCKET": bucket, "AWS_ACCESS_KEY_ID": aws["AWS_ACCESS_KEY_ID"],
        "AWS_SECRET_ACCESS_KEY": aws["AWS_SECRET_ACCESS_KEY"], "AWS_REGION": aws["AWS_REGION"],
        "REMOTE_SCRIPTS_DIR": str(SCRIPTS / "server"),
        "SSH_SHIM_LOG": str(tmp_path / "ssh.jsonl"),
        "SSH_SHIM_REMOTE_ENV": "BACKUP_AGENT,BACKUP_ENV_FILE,AWS_CONFIG_FILE,"
                               "AWS_SHARED_CREDENTIALS_FILE,AWS_MAX_ATTEMPTS",
        "BACKUP_AGENT": str(AGENT), "BACKUP_ENV_FILE": str(server_env_file),
        "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        "AWS_MAX_ATTEMPTS": "2",
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
        "GITHUB_OUTPUT": str(tmp_path / "output"),
    }


def remote(environment: dict[str, str], *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPTS / "remote.sh"), *arguments], env=environment,
                          capture_output=True, text=True, timeout=300, check=False)


def runner_check(environment: dict[str, str], s3_endpoint: S3Endpoint,
                 *arguments: str) -> subprocess.CompletedProcess[str]:
    # The runner reaches "AWS" (moto) through the standard endpoint variable.
    return subprocess.run([sys.executable, str(SCRIPTS / "runner_checks.py"), *arguments],
                          env={**environment, "AWS_ENDPOINT_URL_S3": s3_endpoint.url},
                          capture_output=True, text=True, timeout=120, check=False)


def save_report(result: subprocess.CompletedProcess[str], tmp_path: Path) -> Path:
    report = tmp_path / "backup-report.json"
    report.write_text(result.stdout)
    return report


def test_scheduled_backup_runs_remotely_and_the_runner_confirms_the_upload(
        runner_env: dict[str, str], s3_endpoint: S3Endpoint, bucket: str,
        tmp_path: Path) -> None:
    result = remote(runner_env, "run-agent.sh", "backup", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["status"] == "success" and report["s3"]["bucket"] == bucket
    report_path = save_report(result, tmp_path)

    summary = runner_check(runner_env, s3_endpoint, "summarize", str(report_path))
    assert summary.returncode == 0, summary.stderr
    assert "Database backup: success" in Path(runner_env["GITHUB_STEP_SUMMARY"]).read_text()
    confirmed = runner_check(runner_env, s3_endpoint, "check-upload", str(report_path))
    assert confirmed.returncode == 0, confirmed.stdout + confirmed.stderr

    ssh_argv = Path(runner_env["SSH_SHIM_LOG"]).read_text()
    for secret in (runner_env["AWS_SECRET_ACCESS_KEY"], runner_env["AWS_ACCESS_KEY_ID"]):
        assert secret not in ssh_argv

    s3_endpoint.client().put_object(Bucket=bucket, Key=report["s3"]["key"], Body=b"tampered")
    tampered = runner_check(runner_env, s3_endpoint, "check-upload", str(report_path))
    assert tampered.returncode == 1
    assert "::error::" in tampered.stdout and "size" in tampered.stdout


def test_a_local_only_backup_is_a_success_with_a_warning_annotation(
        runner_env: dict[str, str], s3_endpoint: S3Endpoint, tmp_path: Path) -> None:
    result = remote({**runner_env, "UPLOAD": "false"}, "run-agent.sh", "backup", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["status"] == "warning"
    report_path = save_report(result, tmp_path)
    summary = runner_check(runner_env, s3_endpoint, "summarize", str(report_path))
    assert summary.returncode == 0
    assert "::warning::S3_BUCKET is not set" in summary.stdout
    check = runner_check(runner_env, s3_endpoint, "check-upload", str(report_path))
    assert check.returncode == 0 and "::warning::" in check.stdout


def test_a_failed_backup_fails_the_summary_step(runner_env: dict[str, str],
                                                s3_endpoint: S3Endpoint,
                                                tmp_path: Path) -> None:
    env_file = Path(runner_env["BACKUP_ENV_FILE"])
    env_file.write_text(env_file.read_text() + "POSTGRES_PASSWORD=wrong\n")
    result = remote(runner_env, "run-agent.sh", "backup", "--json")
    assert result.returncode == 3
    summary = runner_check(runner_env, s3_endpoint, "summarize", str(save_report(result,
                                                                                  tmp_path)))
    assert summary.returncode == 1 and "::error::backup failed" in summary.stdout


def test_the_server_side_restore_test_restores_the_s3_copy(runner_env: dict[str, str],
                                                          bucket: str) -> None:
    assert remote(runner_env, "run-agent.sh", "backup").returncode == 0
    # The workflow's opt-in server variant, word for word.
    result = remote(runner_env, "run-agent.sh", "verify", "latest", "--from", "s3",
                    "--restore-test", "--json")
    assert result.returncode == 0, result.stderr
    [tested] = json.loads(result.stdout)["backups"]
    assert tested["location"].startswith(f"s3://{bucket}/")
    assert tested["restore_test"]["passed"] is True


def test_the_server_side_restore_test_never_gets_the_age_key(
        runner_env: dict[str, str]) -> None:
    identity = x25519.Identity.generate()
    env_file = Path(runner_env["BACKUP_ENV_FILE"])
    env_file.write_text(env_file.read_text() + f"ENCRYPT_TO={identity.to_public()}\n")
    backup = remote(runner_env, "run-agent.sh", "backup", "--json")
    assert backup.returncode == 0, backup.stderr
    assert json.loads(backup.stdout)["name"].endswith(".sql.gz.age")

    # The server can prove the checksum of what it cannot read, no more...
    checksum = remote(runner_env, "run-agent.sh", "verify", "latest", "--json")
    assert checksum.returncode == 0, checksum.stderr
    without = remote(runner_env, "run-agent.sh", "verify", "latest", "--restore-test")
    assert without.returncode == 2 and "is age-encrypted" in without.stderr
    # ...and remote.sh will not carry the key there: that test runs on the runner.
    key_file = f"# public key: {identity.to_public()}\n{identity}\n"
    refused = remote({**runner_env, "AGE_IDENTITY": key_file}, "run-agent.sh", "verify",
                     "latest", "--restore-test")
    assert refused.returncode == 2 and "age private key" in refused.stderr
    assert str(identity) not in Path(runner_env["SSH_SHIM_LOG"]).read_text()


def test_run_agent_refuses_anything_but_its_commands(runner_env: dict[str, str]) -> None:
    result = remote(runner_env, "run-agent.sh", "restore", "latest", "--yes")
    assert result.returncode == 2 and "refusing command 'restore'" in result.stderr


def test_pre_deploy_backup_falls_back_to_local_when_s3_is_down(
        runner_env: dict[str, str], backup_dir: Path) -> None:
    env_file = Path(runner_env["BACKUP_ENV_FILE"])
    lines = [line for line in env_file.read_text().splitlines()
             if not line.startswith("AWS_ENDPOINT_URL_S3=")]
    env_file.write_text("\n".join([*lines, "AWS_ENDPOINT_URL_S3=http://127.0.0.1:9"]) + "\n")
    result = remote(runner_env, "pre-deploy-backup.sh")
    assert result.returncode == 0, result.stderr  # so the deploy continues
    assert result.stdout.strip().splitlines()[-1] == "outcome=local-only"
    assert len(list(backup_dir.glob("db_backup_*.sql.gz"))) == 1


def test_pre_deploy_backup_uploads_when_s3_is_up(runner_env: dict[str, str]) -> None:
    result = remote(runner_env, "pre-deploy-backup.sh")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "outcome=s3"


def test_freshness_check_passes_on_a_fresh_backup_and_fails_on_an_old_one(
        runner_env: dict[str, str], s3_endpoint: S3Endpoint, bucket: str) -> None:
    stale = runner_check(runner_env, s3_endpoint, "check-freshness", "--max-age-hours", "26")
    assert stale.returncode == 1 and "no complete backup" in stale.stdout
    client = s3_endpoint.client()
    for suffix in ("", ".sha256", ".manifest.json"):  # data, checksum, manifest: complete
        client.put_object(Bucket=bucket, Body=b"{}",
                          Key=f"backups/2026/01/db_backup_20260101_020000.sql.gz{suffix}")
    old = runner_check(runner_env, s3_endpoint, "check-freshness", "--max-age-hours", "26")
    assert old.returncode == 1 and "backups have stopped" in old.stdout
    assert remote(runner_env, "run-agent.sh", "backup").returncode == 0
    fresh = runner_check(runner_env, s3_endpoint, "check-freshness", "--max-age-hours", "26")
    assert fresh.returncode == 0, fresh.stdout + fresh.stderr


def test_the_restore_test_trusts_only_the_keys_github_holds_and_the_server_s_own(
        runner_env: dict[str, str], backup_dir: Path, tmp_path: Path) -> None:
    public = signed({})["TRUSTED_SIGNING_KEYS"]  # the server's key, GitHub's secret
    other = tmp_path / "other.pem"
    run_agent(["keygen", "--signing", str(other)], runner_env)
    # Planted with the writer's key, signed by a key that is neither GitHub's nor the
    # server's own: passed over, whatever GitHub sends.
    server = dict(line.split("=", 1) for line in
                  Path(runner_env["BACKUP_ENV_FILE"]).read_text().splitlines())
    planted = run_agent(["backup"], {**clean_environment(), **server,
                                     "SIGNING_KEY_FILE": str(other)})
    assert planted.returncode == 0, planted.stderr
    for trusted in ({"TRUSTED_SIGNING_KEYS": public}, {}):
        foreign = remote({**runner_env, **trusted}, "run-agent.sh", "verify", "latest",
                         "--restore-test")
        assert foreign.returncode == 9 and "passed over" in foreign.stderr, foreign.stderr
    for path in backup_dir.glob("db_backup_*"):
        path.unlink()
    # The server's own backup: tested with GitHub's key, and with its own key alone.
    assert remote(runner_env, "run-agent.sh", "backup").returncode == 0
    for trusted in ({"TRUSTED_SIGNING_KEYS": public}, {}):
        tested = remote({**runner_env, **trusted}, "run-agent.sh", "verify", "latest",
                        "--restore-test", "--json")
        assert tested.returncode == 0, tested.stderr


def test_annotations_cannot_be_spoofed_by_text_from_s3() -> None:
    from scripts.runner_checks import annotate  # the script, imported as a module

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        annotate("error", "name\n::notice::forged 100%")
    assert printed.getvalue() == "::error::name%0A::notice::forged 100%25\n"


FAKE_SYSTEMCTL = """#!/bin/sh
echo "$*" >> "$SYSTEMCTL_LOG"
"""


def installed_prefix(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A prefix where this wheel and lock are already installed (the agent under test), so
    install-agent.sh goes straight to what comes after pip; return (wheel, scripts, prefix)."""
    scripts = tmp_path / "staging" / "scripts"
    scripts.mkdir(parents=True)
    for script in [*(SCRIPTS / "server").glob("*.sh"), SCRIPTS / "server" / "requirements.lock"]:
        (scripts / script.name).write_bytes(script.read_bytes())
    wheel = tmp_path / "staging" / "backup_agent-9.9.9-py3-none-any.whl"
    wheel.write_bytes(b"the wheel under test\n")
    prefix = tmp_path / "backup-agent"
    (prefix / "bin").mkdir(parents=True)
    (prefix / "bin" / "backup-agent").symlink_to(AGENT)
    digest = hashlib.sha256(wheel.read_bytes() + (scripts / "requirements.lock").read_bytes())
    (prefix / ".installed-wheel.sha256").write_text(digest.hexdigest() + "\n")
    return wheel, scripts, prefix


def install_with_wal_stream(environment: dict[str, str], wheel: Path, scripts: Path,
                            prefix: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(scripts / "install-agent.sh"), "--with-wal-stream",
                           str(wheel), str(scripts), str(prefix)], env=environment,
                          capture_output=True, text=True, timeout=300, check=False)


def test_install_with_wal_stream_installs_and_starts_the_systemd_unit(
        pg_server: PostgresServer, database: str, tmp_path: Path) -> None:
    wheel, scripts, prefix = installed_prefix(tmp_path)
    env_file = tmp_path / ".env.production"
    env_file.write_text("".join(f"{key}={value}\n" for key, value in
                                pg_server.environment(database).items()))
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "systemctl").write_text(FAKE_SYSTEMCTL)
    (tools / "systemctl").chmod(0o755)
    units = tmp_path / "units"
    units.mkdir()
    log = tmp_path / "systemctl.log"
    environment = {**clean_environment(), "PATH": f"{tools}:{clean_environment()['PATH']}",
                   "BACKUP_ENV_FILE": str(env_file), "SYSTEMD_UNIT_DIR": str(units),
                   "SYSTEMCTL_LOG": str(log)}

    first = install_with_wal_stream(environment, wheel, scripts, prefix)
    assert first.returncode == 0, first.stderr
    unit = (units / "backup-agent-wal.service").read_text()
    assert f"ExecStart={AGENT} wal stream --env-file {env_file}\n" in unit
    # The stream signs WAL with the key the install made, as run-agent.sh signs backups.
    assert f"Environment=SIGNING_KEY_FILE={prefix / 'signing-key.pem'}\n" in unit
    assert (units / "backup-agent-wal.service").stat().st_mode & 0o777 == 0o644
    assert log.read_text().splitlines() == [
        "daemon-reload", "enable --quiet backup-agent-wal.service",
        "restart backup-agent-wal.service"]
    assert f"installed {units / 'backup-agent-wal.service'}" in first.stdout

    log.unlink()
    again = install_with_wal_stream(environment, wheel, scripts, prefix)
    assert again.returncode == 0, again.stderr
    assert log.read_text().splitlines() == [
        "enable --quiet backup-agent-wal.service", "start backup-agent-wal.service"]
    assert "unchanged, running" in again.stdout


def test_install_with_wal_stream_in_docker_mode_writes_the_sidecar(
        pg_server: PostgresServer, database: str, docker_shim: dict[str, str],
        tmp_path: Path) -> None:
    wheel, scripts, prefix = installed_prefix(tmp_path)
    env_file = tmp_path / ".env.production"
    settings = {**pg_server.environment(database), "POSTGRES_CONTAINER": DOCKER_CONTAINER}
    del settings["PG_BINDIR"]
    env_file.write_text("".join(f"{key}={value}\n" for key, value in settings.items()))
    environment = {**clean_environment(), **docker_shim, "BACKUP_ENV_FILE": str(env_file),
                   "SYSTEMD_UNIT_DIR": str(tmp_path / "no-units")}
    result = install_with_wal_stream(environment, wheel, scripts, prefix)
    assert result.returncode == 0, result.stderr
    context = Path(sys.prefix) / "wal-stream"  # the agent under test's own prefix
    stream_dir = prefix / "wal-stream"
    compose = (stream_dir / "compose.yaml").read_text()
    assert f"context: \"{context}\"" in compose and "FROM postgres:" in compose
    assert f'POSTGRES_HOST: "{DOCKER_CONTAINER}"' in compose
    assert f'SIGNING_KEY_FILE: "{prefix / "signing-key.pem"}"' in compose
    # The build context: this wheel and the lock the image installs from.
    assert sorted(path.name for path in stream_dir.iterdir()) == [
        "backup_agent-9.9.9-py3-none-any.whl", "compose.yaml", "requirements.lock"]
    assert f"docker compose -f {stream_dir}/compose.yaml up -d --build" in result.stdout
    assert not (tmp_path / "no-units").exists()
