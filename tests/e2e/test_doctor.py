"""`backup-agent doctor` against a good set-up, a misconfigured bucket and a missing container."""

from __future__ import annotations

import json
from pathlib import Path

from pyrage import x25519

from testbed.postgres import PostgresServer, running_server
from testbed.s3 import S3Endpoint
from tests.conftest import DOCKER_CONTAINER, run_agent, signed
from tests.infra.harness import bucket_policy_for_moto


def harden(s3_endpoint: S3Endpoint, bucket: str) -> None:
    """Give the bucket what `pulumi up` gives the real one."""
    client = s3_endpoint.client()
    client.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={
        "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
    client.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
        "RestrictPublicBuckets": True})
    client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    client.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [
        {"ID": "ExpireOldBackups", "Status": "Enabled", "Filter": {"Prefix": "backups/"},
         "Expiration": {"Days": 30}}]})
    client.put_bucket_policy(Bucket=bucket, Policy=bucket_policy_for_moto(bucket, "backups/"))


def checks(result_stdout: str) -> dict[str, bool]:
    return {check["name"]: check["passed"] for check in json.loads(result_stdout)["checks"]}


def test_doctor_passes_on_a_good_setup(agent_env: dict[str, str], s3_endpoint: S3Endpoint,
                                       bucket: str) -> None:
    harden(s3_endpoint, bucket)
    result = run_agent(["doctor", "--json"], agent_env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert checks(result.stdout) == dict.fromkeys(
        ["postgres", "pg_dump", "restore-login", "pitr", "signing-key", "backup-dir", "s3",
         "bucket-encryption",
         "bucket-public-access", "bucket-lifecycle", "bucket-versioning",
         "bucket-create-only", "s3-permissions"],
        True)
    text = run_agent(["doctor"], agent_env)
    assert "PASS  bucket-lifecycle" in text.stdout
    assert "PASS  bucket-create-only" in text.stdout and "DenyOverwritingBackups" in text.stdout


def test_doctor_probes_create_a_new_object_each_time_and_overwrite_nothing(
        agent_env: dict[str, str], s3_endpoint: S3Endpoint, bucket: str) -> None:
    harden(s3_endpoint, bucket)
    for _ in range(2):
        result = run_agent(["doctor", "--json"], agent_env)
        assert result.returncode == 0, result.stdout + result.stderr
    client = s3_endpoint.client()
    versions = client.list_object_versions(Bucket=bucket, Prefix="backups/").get("Versions", [])
    probes = [version["Key"] for version in versions]
    assert len(probes) == len(set(probes)) == 2  # two objects, one version each
    assert all(key.startswith("backups/.backup-agent-doctor/") for key in probes)
    assert all(client.get_object(Bucket=bucket, Key=key)["Body"].read()
               == b"backup-agent doctor probe\n" for key in probes)
    listed = run_agent(["list", "s3", "--json"], agent_env)
    assert json.loads(listed.stdout)["backups"] == []  # probes are not backups


def test_doctor_fails_on_a_misconfigured_bucket_and_says_how_to_fix(
        agent_env: dict[str, str], bucket: str) -> None:
    result = run_agent(["doctor", "--json"], agent_env)  # a bare bucket: no hardening
    assert result.returncode == 12
    found = checks(result.stdout)
    assert found["postgres"] and found["s3"] and found["s3-permissions"]
    assert not found["bucket-public-access"] and not found["bucket-lifecycle"]
    assert not found["bucket-versioning"] and not found["bucket-create-only"]
    text = run_agent(["doctor"], agent_env)
    assert "FAIL  bucket-lifecycle" in text.stdout and "run pulumi up" in text.stdout
    assert "check(s) failed" in text.stderr


def test_doctor_names_a_missing_container_and_a_wrong_password(
        agent_env: dict[str, str], docker_shim: dict[str, str]) -> None:
    environment = {**agent_env, **docker_shim, "POSTGRES_CONTAINER": "no-such-container"}
    del environment["S3_BUCKET"]
    result = run_agent(["doctor"], environment)
    assert result.returncode == 12
    assert "FAIL  postgres" in result.stdout and "docker ps" in result.stdout
    wrong = run_agent(["doctor"], {**agent_env, "POSTGRES_PASSWORD": "nope",
                                   "POSTGRES_CONTAINER": "", "S3_BUCKET": ""})
    assert "rejected the password" in wrong.stdout and wrong.returncode == 12
    good_container = {**environment, "POSTGRES_CONTAINER": DOCKER_CONTAINER}
    assert "(inside container" in run_agent(["doctor"], good_container).stdout


def test_doctor_reports_a_missing_backup_dir(agent_env: dict[str, str], tmp_path: object) -> None:
    result = run_agent(["doctor"], {**agent_env, "BACKUP_DIR": "/nonexistent/backups",
                                    "S3_BUCKET": ""})
    assert result.returncode == 12
    assert "FAIL  backup-dir" in result.stdout and "mkdir -p" in result.stdout


def test_doctor_fails_when_the_key_that_opens_the_backups_is_on_the_server(
        agent_env: dict[str, str], s3_endpoint: S3Endpoint, bucket: str,
        tmp_path: Path) -> None:
    harden(s3_endpoint, bucket)
    identity = x25519.Identity.generate()
    encrypted = {**agent_env, "ENCRYPT_TO": str(identity.to_public())}
    good = run_agent(["doctor", "--json"], encrypted)
    assert good.returncode == 0, good.stdout + good.stderr
    assert checks(good.stdout)["client-encryption"] is True

    key_file = tmp_path / "server.key"
    key_file.write_text(f"{identity}\n")
    leaked = run_agent(["doctor"], {**encrypted, "AGE_IDENTITY_FILE": str(key_file)})
    assert leaked.returncode == 12
    assert "FAIL  client-encryption" in leaked.stdout
    assert "keep it off the server" in leaked.stdout
    assert str(identity) not in leaked.stdout + leaked.stderr


def test_doctor_finds_a_pg_hba_that_keeps_the_restore_role_out(
        agent_env: dict[str, str]) -> None:
    """A restore logs in as a role of its own with a password; doctor tries that, and
    leaves no role behind."""
    with running_server() as server:
        server.create_database("app")
        hba = server.data_directory / "pg_hba.conf"
        hba.write_text("host all /^backup_agent_builder_ 127.0.0.1/32 reject\n"
                       + hba.read_text())
        server.psql("postgres", "SELECT pg_reload_conf();")
        environment = {**agent_env, **server.environment("app"), "S3_BUCKET": ""}
        result = run_agent(["doctor"], environment)
        assert result.returncode == 12
        assert "FAIL  restore-login" in result.stdout
        assert "pg_hba.conf must let it log in with a password" in result.stdout, result.stdout
        assert "PASS  postgres" in result.stdout
        assert _builder_roles(server) == []


def test_doctor_wants_a_private_signing_key(agent_env: dict[str, str],
                                            tmp_path: Path) -> None:
    local = {**agent_env, "S3_BUCKET": ""}
    unset = run_agent(["doctor"], {**local, "SIGNING_KEY_FILE": ""})
    assert unset.returncode == 12
    assert "FAIL  signing-key" in unset.stdout and "keygen --signing" in unset.stdout
    key = tmp_path / "shared.pem"
    key.write_bytes(Path(agent_env["SIGNING_KEY_FILE"]).read_bytes())
    key.chmod(0o644)
    readable = run_agent(["doctor"], {**local, "SIGNING_KEY_FILE": str(key)})
    assert readable.returncode == 12 and f"chmod 600 {key}" in readable.stdout
    key.chmod(0o600)
    good = run_agent(["doctor"], {**local, "SIGNING_KEY_FILE": str(key)})
    assert "PASS  signing-key" in good.stdout
    assert signed({})["TRUSTED_SIGNING_KEYS"] in good.stdout  # its public half, to publish


def _builder_roles(server: PostgresServer) -> list[str]:
    return server.psql("postgres", "SELECT rolname FROM pg_roles "
                                   "WHERE rolname LIKE 'backup_agent_builder_%';").split()
