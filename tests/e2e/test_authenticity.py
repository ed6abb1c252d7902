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

UNTRUSTED = ("a backup no trusted key signed (TRUSTED_SIGNING_KEYS, the server's own "
             "SIGNING_KEY_FILE), or any backup where no key is trusted")


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
    expect(result, UNTRUSTED)  # type: ignore[arg-type]
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
        # Restored elsewhere (no SIGNING_KEY_FILE there): only the other key is trusted.
        signed_env = {**without_keys(signed_env), "TRUSTED_SIGNING_KEYS": other}
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


def without_keys(environment: dict[str, str]) -> dict[str, str]:
    """`environment` with no signing key and none trusted: a workstation set up by nobody."""
    return {name: value for name, value in environment.items()
            if name not in ("SIGNING_KEY_FILE", "TRUSTED_SIGNING_KEYS")}


def test_with_no_trusted_key_at_all_every_backup_is_refused_unless_allow_unsigned(
        agent_env: dict[str, str], database: str, pg_server: PostgresServer) -> None:
    bare = without_keys(agent_env)
    make_backup(bare)
    before = pg_server.database_names()
    for arguments in (["restore", "latest", "--target-db", f"{database}_u", "--yes"],
                      ["verify", "latest", "--restore-test"]):
        result = run_agent(arguments, bare)
        expect(result, UNTRUSTED)
        assert "no trusted signing key here" in result.stderr
        assert "TRUSTED_SIGNING_KEYS" in result.stderr and "--allow-unsigned" in result.stderr
        assert pg_server.database_names() == before  # nothing built, nothing ran
    # A signed backup is no better where no key is trusted: nothing can prove it is yours.
    make_backup({**bare, "SIGNING_KEY_FILE": agent_env["SIGNING_KEY_FILE"]})
    result = run_agent(["verify", "latest"], bare)
    assert result.returncode == 8 and "no trusted signing key here" in result.stderr
    everything = run_agent(["verify", "--all", "--json"], bare)  # each one fails, named
    assert everything.returncode == 8
    assert [item["ok"] for item in json.loads(everything.stdout)["backups"]] == [False, False]


def test_the_server_trusts_its_own_key_without_trusted_signing_keys(
        agent_env: dict[str, str], database: str, pg_server: PostgresServer,
        backup_dir: Path, tmp_path: Path) -> None:
    assert "TRUSTED_SIGNING_KEYS" not in agent_env  # only SIGNING_KEY_FILE, as installed
    report = make_backup(agent_env)
    assert (backup_dir / f"{report['name']}.sig").is_file()
    for arguments in (["restore", "latest", "--target-db", f"{database}_own", "--yes"],
                      ["verify", "latest", "--from", "s3", "--restore-test"]):
        result = run_agent(arguments, agent_env)
        assert result.returncode == 0, result.stderr
        assert "authenticity was not checked" not in result.stderr
    assert fingerprint(pg_server, f"{database}_own") == fingerprint(pg_server, database)
    pg_server.drop_database(f"{database}_own")
    # Its own key only: a backup another key signed is refused there, before anything ran.
    other = tmp_path / "other.pem"
    keygen(other, agent_env)
    foreign = make_backup({**agent_env, "SIGNING_KEY_FILE": str(other)})
    before = pg_server.database_names()
    result = run_agent(["restore", str(backup_dir / str(foreign["name"])), "--yes"], agent_env)
    assert result.returncode == 8, result.stderr
    assert "not signed by any of TRUSTED_SIGNING_KEYS" in result.stderr
    assert pg_server.database_names() == before


def test_allow_unsigned_restores_an_unsigned_backup_and_says_once_it_was_not_checked(
        agent_env: dict[str, str], database: str, pg_server: PostgresServer) -> None:
    for environment in (without_keys(agent_env), agent_env):  # no key here; or a key here
        make_backup(without_keys(agent_env))  # the newest backup is unsigned
        target = f"{database}_u"
        result = run_agent(["restore", "latest", "--target-db", target, "--yes",
                            "--allow-unsigned"], environment)
        assert result.returncode == 0, result.stderr
        assert result.stderr.count("authenticity was not checked") == 1
        assert result.stderr.count("--allow-unsigned") == 1
        assert fingerprint(pg_server, target) == fingerprint(pg_server, database)
        pg_server.drop_database(target)
        verified = run_agent(["verify", "latest", "--allow-unsigned", "--json"], environment)
        assert verified.returncode == 0, verified.stderr
        assert verified.stderr.count("authenticity was not checked") == 1
        warnings = json.loads(verified.stdout)["warnings"]
        assert sum("authenticity was not checked" in warning for warning in warnings) == 1
