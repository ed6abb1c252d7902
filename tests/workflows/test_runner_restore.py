"""The weekly restore test on the runner: the S3 copy, proven, with the key never on the server.

scripts/restore-test-on-runner.sh as the workflow runs it: the newest backup in S3 (moto),
a `postgres:<major>` container (the docker shim: `docker exec` runs the local server's
clients), the workflow's S3 credentials, the age key and the trusted signing keys in its
environment only; no ssh at all.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pyrage import x25519

from testbed.postgres import PostgresServer
from testbed.s3 import S3Endpoint
from tests.conftest import AGENT, run_agent

REPOSITORY = Path(__file__).resolve().parents[2]
SCRIPT = REPOSITORY / "scripts" / "restore-test-on-runner.sh"
CONTAINER = "backup-restore-test"


@pytest.fixture
def keys(tmp_path: Path, agent_env: dict[str, str]) -> dict[str, str]:
    """An age key pair and a signing key pair, as the server and GitHub hold them."""
    identity = x25519.Identity.generate()
    signing_key = tmp_path / "signing.pem"
    made = run_agent(["keygen", "--signing", str(signing_key)], agent_env)
    return {"public": str(identity.to_public()), "signing_key_file": str(signing_key),
            "trusted": made.stdout.strip().splitlines()[-1],
            # The secret as GitHub holds it: the whole key file, comments included.
            "identity": f"# created: 2026-11-24\n# public key: {identity.to_public()}\n"
                        f"{identity}\n"}


@pytest.fixture
def server_backup(agent_env: dict[str, str], keys: dict[str, str]) -> dict[str, Any]:
    """One encrypted, signed backup in S3, made the way the server makes it."""
    made = run_agent(["backup", "--json"], {**agent_env, "ENCRYPT_TO": keys["public"],
                                            "SIGNING_KEY_FILE": keys["signing_key_file"]})
    assert made.returncode == 0, made.stderr
    report: dict[str, Any] = json.loads(made.stdout)
    return report


def runner_environment(agent_env: dict[str, str], docker_shim: dict[str, str],
                       pg_server: PostgresServer, keys: dict[str, str],
                       tmp_path: Path) -> dict[str, str]:
    # The runner holds no signing key: only the public keys of GitHub's secret.
    environment = {name: value for name, value in agent_env.items()
                   if not name.startswith(("POSTGRES_", "PG_BINDIR", "BACKUP_DIR",
                                           "SIGNING_KEY_FILE"))}
    return {
        **environment, **docker_shim,
        "DOCKER_SHIM_CONTAINER": CONTAINER,
        "SSH_SHIM_LOG": str(tmp_path / "ssh.jsonl"),  # the ssh shim would log here
        "AGE_IDENTITY": keys["identity"], "TRUSTED_SIGNING_KEYS": keys["trusted"],
        "BACKUP_AGENT": str(AGENT), "PYTHON": sys.executable,
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
        # Only because the "container" is the test server on loopback (the real one is
        # 127.0.0.1:5432 inside the container, with trust authentication):
        "POSTGRES_HOST": pg_server.host, "POSTGRES_PORT": str(pg_server.port),
        "POSTGRES_USER": pg_server.user,
        "POSTGRES_PASSWORD": pg_server.password,
    }


def restore_test(environment: dict[str, str],
                 tmp_path: Path) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    report = tmp_path / "restore-test.json"
    result = subprocess.run([str(SCRIPT), str(report)], env=environment, cwd=tmp_path,
                            capture_output=True, text=True, timeout=300, check=False)
    document = json.loads(report.read_text()) if report.exists() else {}
    return result, document


def docker_calls(environment: dict[str, str]) -> list[list[str]]:
    log = Path(environment["DOCKER_SHIM_LOG"])
    return [json.loads(line)["argv"][1:] for line in log.read_text().splitlines()]


def test_the_runner_restores_the_newest_s3_backup_in_a_container_of_its_major(
        agent_env: dict[str, str], docker_shim: dict[str, str], pg_server: PostgresServer,
        keys: dict[str, str], server_backup: dict[str, Any], tmp_path: Path) -> None:
    environment = runner_environment(agent_env, docker_shim, pg_server, keys, tmp_path)
    result, report = restore_test(environment, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    [tested] = report["backups"]
    assert tested["location"] == server_backup["s3"]["uri"]
    assert tested["restore_test"]["passed"] is True and tested["encrypted"] is True
    assert tested["restore_test"]["tables_checked"] > 0

    major = pg_server.psql("postgres", "SHOW server_version_num;").strip()[:-4]
    calls = docker_calls(environment)
    socket = calls[0][calls[0].index("--volume") + 1]
    assert socket.endswith("/socket:/var/run/postgresql")
    assert calls[0] == ["run", "--detach", "--name", CONTAINER, "--network", "none",
                        "--volume", socket, "--env", "POSTGRES_HOST_AUTH_METHOD=trust",
                        f"postgres:{major}"]
    assert any(call[:2] == ["exec", "-i"] and "psql" in call for call in calls)
    assert calls[-1] == ["rm", "--force", CONTAINER]
    # The key stays in the agent on the runner: never in an argv, never near ssh.
    secret = keys["identity"].split()[-1]
    assert not any(secret in argument for call in calls for argument in call)
    assert secret not in result.stdout + result.stderr
    assert not Path(environment["SSH_SHIM_LOG"]).exists()
    summary = Path(environment["GITHUB_STEP_SUMMARY"]).read_text()
    assert "Weekly restore test (from S3, on the runner): success" in summary


def test_a_replaced_s3_object_fails_the_runner_restore_test_and_the_container_goes(
        agent_env: dict[str, str], docker_shim: dict[str, str], pg_server: PostgresServer,
        keys: dict[str, str], server_backup: dict[str, Any], s3_endpoint: S3Endpoint,
        bucket: str, tmp_path: Path) -> None:
    location = server_backup["s3"]
    s3_endpoint.client().put_object(Bucket=bucket, Key=location["key"],
                                    Body=b"age-encryption.org/v1\nnot really\n")
    environment = runner_environment(agent_env, docker_shim, pg_server, keys, tmp_path)
    result, report = restore_test(environment, tmp_path)
    assert result.returncode == 8, result.stdout + result.stderr
    assert report["status"] == "failure"
    assert "::error::restore test failed" in result.stdout
    assert docker_calls(environment)[-1] == ["rm", "--force", CONTAINER]


def test_without_the_trusted_keys_secret_the_runner_restore_test_refuses(
        agent_env: dict[str, str], docker_shim: dict[str, str], pg_server: PostgresServer,
        keys: dict[str, str], server_backup: dict[str, Any], tmp_path: Path) -> None:
    environment = runner_environment(agent_env, docker_shim, pg_server, keys, tmp_path)
    del environment["TRUSTED_SIGNING_KEYS"]  # BACKUP_TRUSTED_SIGNING_KEYS not set
    before = pg_server.database_names()
    result, _ = restore_test(environment, tmp_path)
    assert result.returncode == 8, result.stdout + result.stderr
    assert "::error::" in result.stdout and "BACKUP_TRUSTED_SIGNING_KEYS" in result.stdout
    assert pg_server.database_names() == before  # nothing restored, no scratch database
    # The unsigned manifest's major was not believed: no container was even started.
    assert not any(call[0] == "run" for call in docker_calls(environment))


def test_a_planted_newer_backup_never_picks_the_runner_s_image(
        agent_env: dict[str, str], docker_shim: dict[str, str], pg_server: PostgresServer,
        keys: dict[str, str], server_backup: dict[str, Any], s3_endpoint: S3Endpoint,
        bucket: str, tmp_path: Path) -> None:
    """With only the writer's key: a newer backup whose manifest names PostgreSQL 9.6 (a
    psql without \\restrict) and no signature. The runner tests the signed one, in its own
    major's image."""
    client = s3_endpoint.client()
    key = server_backup["s3"]["key"]
    made = datetime.strptime(server_backup["name"][10:25], "%Y%m%d_%H%M%S")
    time.sleep(1.1)  # a second later, and not dated ahead
    planted = key.replace(server_backup["name"][:25],
                          f"db_backup_{made + timedelta(seconds=1):%Y%m%d_%H%M%S}")
    body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    manifest = json.loads(client.get_object(Bucket=bucket, Key=f"{key}.manifest.json")["Body"]
                          .read())
    name = planted.rsplit("/", 1)[1]
    manifest.update(name=name, server_version="9.6.24")
    for suffix, content in (("", body), (".sha256", f"{manifest['sha256']}  {name}\n".encode()),
                            (".manifest.json", json.dumps(manifest).encode())):
        client.put_object(Bucket=bucket, Key=planted + suffix, Body=content)
    environment = runner_environment(agent_env, docker_shim, pg_server, keys, tmp_path)
    result, report = restore_test(environment, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "passed over" in result.stdout  # a warning annotation names the planted one
    [tested] = report["backups"]
    assert tested["location"] == server_backup["s3"]["uri"]
    run = next(call for call in docker_calls(environment) if call[0] == "run")
    assert run[-1] != "postgres:9" and not run[-1].startswith("postgres:9.")


def test_the_major_can_be_pinned_and_must_be_a_number(
        agent_env: dict[str, str], docker_shim: dict[str, str], pg_server: PostgresServer,
        keys: dict[str, str], server_backup: dict[str, Any], tmp_path: Path) -> None:
    environment = runner_environment(agent_env, docker_shim, pg_server, keys, tmp_path)
    bad, _ = restore_test({**environment, "RESTORE_TEST_POSTGRES_MAJOR": "18; rm -rf /"},
                          tmp_path)
    assert bad.returncode == 2 and "not a PostgreSQL major version" in bad.stderr
    assert not any(call[0] == "run" for call in docker_calls(environment))
