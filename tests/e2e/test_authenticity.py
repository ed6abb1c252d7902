"""Signed backups: the server signs each manifest; restore and verify trust only its key."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from testbed.postgres import PostgresServer
from testbed.sample_data import fingerprint
from tests.conftest import make_backup, run_agent
from tests.faults.table import expect


def keygen(path: Path, environment: dict[str, str]) -> str:
    result = run_agent(["keygen", "--signing", str(path)], environment)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


@pytest.fixture
def signed_env(agent_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    key = tmp_path / "signing.pem"
    public = keygen(key, agent_env)
    return {**agent_env, "SIGNING_KEY_FILE": str(key), "TRUSTED_SIGNING_KEYS": public}


def test_keygen_writes_a_private_key_once_and_prints_the_public_key_last(
        agent_env: dict[str, str], tmp_path: Path) -> None:
    key = tmp_path / "signing.pem"
    public = keygen(key, agent_env)
    assert public.startswith("ed25519:") and len(public) == len("ed25519:") + 44
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    again = run_agent(["keygen", "--signing", str(key)], agent_env)
    assert again.returncode == 2 and "never overwrites" in again.stderr


def test_a_signed_backup_restores_and_verifies_locally_and_from_s3(
        signed_env: dict[str, str], pg_server: PostgresServer, database: str,
        backup_dir: Path) -> None:
    report = make_backup(signed_env)
    assert (backup_dir / f"{report['name']}.sig").is_file()
    for place in ("local", "s3"):
        result = run_agent(["verify", "latest", "--from", place, "--json"], signed_env)
        assert result.returncode == 0, result.stderr
        assert "authenticity was not checked" not in result.stderr
    target = f"{database}_signed"
    result = run_agent(["restore", "latest", "--from", "s3", "--target-db", target, "--yes"],
                       signed_env)
    assert result.returncode == 0, result.stderr
    assert fingerprint(pg_server, target) == fingerprint(pg_server, database)
    pg_server.drop_database(target)


def refused_before_anything_ran(result: object, pg_server: PostgresServer,
                                before: set[str], fragment: str) -> None:
    expect(result, "a backup no trusted key signed (TRUSTED_SIGNING_KEYS set)")  # type: ignore[arg-type]
    assert fragment in str(getattr(result, "stderr"))  # noqa: B009
    assert pg_server.database_names() == before  # no scratch or half-built database


@pytest.mark.parametrize("tamper", ["unsigned", "other-key", "manifest-byte"])
def test_a_backup_not_signed_by_a_trusted_key_is_refused_before_anything_runs(
        tamper: str, signed_env: dict[str, str], pg_server: PostgresServer,
        backup_dir: Path, tmp_path: Path) -> None:
    report = make_backup(signed_env)
    name = str(report["name"])
    if tamper == "unsigned":
        (backup_dir / f"{name}.sig").unlink()
        fragment = "not signed"
    elif tamper == "other-key":
        other = keygen(tmp_path / "other.pem", signed_env)
        signed_env = {**signed_env, "TRUSTED_SIGNING_KEYS": other}
        fragment = "not signed by any of TRUSTED_SIGNING_KEYS"
    else:
        manifest = backup_dir / f"{name}.manifest.json"
        manifest.write_text(manifest.read_text().replace('"row_counts"', '"row_counts" '))
        fragment = "not signed by any of TRUSTED_SIGNING_KEYS"
    before = pg_server.database_names()
    for arguments in (["restore", str(backup_dir / name), "--yes"],
                      ["verify", str(backup_dir / name), "--restore-test"]):
        refused_before_anything_ran(run_agent(arguments, signed_env), pg_server, before,
                                    fragment)
    latest = run_agent(["restore", "latest", "--yes"], signed_env)
    assert latest.returncode == 9 and "passed over" in latest.stderr, latest.stderr


def test_latest_passes_over_a_newer_unsigned_backup(signed_env: dict[str, str],
                                                    backup_dir: Path) -> None:
    signed = make_backup(signed_env)
    unsigned = make_backup({**signed_env, "SIGNING_KEY_FILE": ""})
    result = run_agent(["verify", "latest", "--json"], signed_env)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["backups"][0]["name"] == signed["name"] != unsigned["name"]
    assert any("passed over" in warning for warning in document["warnings"])


def test_without_trusted_keys_restores_work_and_say_once_authenticity_was_not_checked(
        agent_env: dict[str, str], database: str, pg_server: PostgresServer) -> None:
    make_backup(agent_env)
    result = run_agent(["restore", "latest", "--target-db", f"{database}_u", "--yes"],
                       agent_env)
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("authenticity was not checked") == 1
    pg_server.drop_database(f"{database}_u")
