"""Client-side age encryption: the server holds the public key, restore and verify the private.

Every backup here is real (pg_dump from the embedded server, uploaded to moto) and every
restore goes through psql; the keys come from `backup-agent keygen`.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import stat
from pathlib import Path

import pyrage
import pytest
from pyrage import x25519

from testbed.postgres import PostgresServer
from testbed.s3 import S3Endpoint
from testbed.sample_data import fingerprint
from tests.conftest import make_backup, run_agent
from tests.fabricate import flip_a_bit
from tests.faults.table import expect

AGE_HEADER = b"age-encryption.org/v1\n"
CHANGED = ("encrypted backup changed (even with its .sha256 rewritten to match), or "
           "decrypting with a key the manifest does not name")


def keygen(path: Path, agent_env: dict[str, str]) -> str:
    result = run_agent(["keygen", str(path)], agent_env)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.fixture
def keys(tmp_path: Path, agent_env: dict[str, str]) -> tuple[Path, str]:
    """A fresh key pair: (identity file, public key)."""
    identity = tmp_path / "keys" / "backup.key"
    identity.parent.mkdir()
    return identity, keygen(identity, agent_env)


@pytest.fixture
def encrypted(keys: tuple[Path, str], agent_env: dict[str, str],
              pg_server: PostgresServer, database: str) -> tuple[dict[str, str], dict[str, str]]:
    """One encrypted backup, then the database changed: (report, fingerprint at backup)."""
    _identity, public = keys
    report = make_backup({**agent_env, "ENCRYPT_TO": public})
    at_backup = fingerprint(pg_server, database)
    pg_server.psql(database, "DELETE FROM shop.orders WHERE id <= 5000;")
    return report, at_backup


def test_keygen_writes_a_private_file_and_never_overwrites(
        keys: tuple[Path, str], agent_env: dict[str, str]) -> None:
    identity, public = keys
    assert stat.S_IMODE(identity.stat().st_mode) == 0o600
    secret = [line for line in identity.read_text().splitlines() if not line.startswith("#")]
    assert str(x25519.Identity.from_str(secret[0]).to_public()) == public
    again = run_agent(["keygen", str(identity)], agent_env)
    assert again.returncode == 2 and "never overwrites" in again.stderr
    assert str(x25519.Identity.from_str(secret[0]).to_public()) == public


def test_an_encrypted_backup_is_standard_age_and_checkable_without_the_key(
        encrypted: tuple[dict[str, str], dict[str, str]], keys: tuple[Path, str],
        backup_dir: Path, s3_endpoint: S3Endpoint, bucket: str) -> None:
    report, _ = encrypted
    identity, public = keys
    name = report["name"]
    assert name.endswith(".sql.gz.age")
    data = (backup_dir / name).read_bytes()
    assert data.startswith(AGE_HEADER)
    assert b"dump complete" not in data and b"shop.orders" not in data
    # The checksum is of the stored bytes, so `sha256sum -c` works without the key.
    assert (backup_dir / f"{name}.sha256").read_text() == \
        f"{hashlib.sha256(data).hexdigest()}  {name}\n"
    manifest = json.loads((backup_dir / f"{name}.manifest.json").read_text())
    assert manifest["encryption"] == {"format": "age", "recipients": [public]}
    assert manifest["size_bytes"] == len(data)
    # Any age implementation opens it: here rage (through pyrage), given the key file.
    secret = identity.read_text().splitlines()[-1]
    plain = gzip.decompress(pyrage.decrypt(data, [x25519.Identity.from_str(secret)]))
    assert b"-- PostgreSQL database dump complete" in plain[-500:]
    stored = s3_endpoint.client().get_object(Bucket=bucket, Key=report["s3"]["key"])  # type: ignore[index]
    assert report["s3"]["key"].endswith(name)  # type: ignore[index]
    assert stored["Body"].read() == data
    assert stored["ContentType"] == "application/octet-stream"


def test_restore_with_the_identity_gives_identical_data_locally_and_from_s3(
        encrypted: tuple[dict[str, str], dict[str, str]], keys: tuple[Path, str],
        agent_env: dict[str, str], pg_server: PostgresServer, database: str) -> None:
    report, at_backup = encrypted
    identity, _ = keys
    for source in (["latest"], [report["s3"]["uri"]]):  # type: ignore[index]
        result = run_agent(["restore", *source, "--identity", str(identity), "--yes",
                            "--drop-previous", "--json"], agent_env)
        assert result.returncode == 0, result.stderr
        restored = json.loads(result.stdout)
        assert restored["verified"] is True and restored["checksum"] == "ok"
        assert fingerprint(pg_server, database) == at_backup
        pg_server.psql(database, "DELETE FROM shop.orders WHERE id <= 10;")


def test_a_dry_run_decrypts_and_proves_the_backup_and_changes_nothing(
        encrypted: tuple[dict[str, str], dict[str, str]], keys: tuple[Path, str],
        agent_env: dict[str, str], pg_server: PostgresServer, database: str) -> None:
    identity, _ = keys
    before = (pg_server.database_names(), fingerprint(pg_server, database))
    result = run_agent(["restore", "latest", "--dry-run", "--identity", str(identity),
                        "--json"], agent_env)
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert (plan["dry_run"], plan["verified"]) == (True, True)
    assert plan["warnings"] == []  # signed by this server's own key: nothing to say
    assert any("decrypting it (age)" in step for step in plan["steps"])
    assert (pg_server.database_names(), fingerprint(pg_server, database)) == before


def test_verify_proves_the_content_with_the_identity_and_the_checksum_without(
        encrypted: tuple[dict[str, str], dict[str, str]], keys: tuple[Path, str],
        agent_env: dict[str, str]) -> None:
    identity, _ = keys
    full = run_agent(["verify", "--identity", str(identity), "--json"], agent_env)
    assert full.returncode == 0, full.stderr
    checked = json.loads(full.stdout)["backups"][0]
    assert (checked["gzip_complete"], checked["dump_complete"], checked["encrypted"]) == \
        (True, True, True)

    without = run_agent(["verify", "--json"], agent_env)
    assert without.returncode == 0, without.stderr
    checked = json.loads(without.stdout)["backups"][0]
    assert (checked["checksum"], checked["gzip_complete"]) == ("ok", None)
    assert "content was not checked" in without.stderr

    restore_test = run_agent(["verify", "--restore-test", "--identity", str(identity),
                              "--json"], agent_env)
    assert restore_test.returncode == 0, restore_test.stderr
    assert json.loads(restore_test.stdout)["backups"][0]["restore_test"]["passed"] is True


def test_a_missing_or_wrong_key_fails_clearly_before_anything_changes(
        encrypted: tuple[dict[str, str], dict[str, str]], agent_env: dict[str, str],
        pg_server: PostgresServer, database: str, tmp_path: Path) -> None:
    _report, _ = encrypted
    current = fingerprint(pg_server, database)
    before = pg_server.database_names()

    missing = run_agent(["restore", "latest", "--yes"], agent_env)
    expect(missing, "encrypted backup without --identity, or with a key it was not encrypted to")
    assert "is age-encrypted" in missing.stderr and "--identity" in missing.stderr

    other = tmp_path / "other.key"
    other_public = keygen(other, agent_env)
    wrong = run_agent(["restore", "latest", "--yes", "--identity", str(other)], agent_env)
    expect(wrong, "encrypted backup without --identity, or with a key it was not encrypted to")
    assert "wrong key" in wrong.stderr and other_public in wrong.stderr
    assert len(wrong.stderr.strip().splitlines()) == 1
    restore_test = run_agent(["verify", "--restore-test", "--identity", str(other)], agent_env)
    assert restore_test.returncode == 2 and "wrong key" in restore_test.stderr

    assert pg_server.database_names() == before
    assert fingerprint(pg_server, database) == current


def test_a_wrong_key_is_caught_by_age_itself_when_the_manifest_names_no_recipient(
        encrypted: tuple[dict[str, str], dict[str, str]], agent_env: dict[str, str],
        backup_dir: Path, pg_server: PostgresServer, database: str, tmp_path: Path) -> None:
    report, _ = encrypted
    manifest_path = backup_dir / f"{report['name']}.manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["encryption"] = None
    manifest_path.write_text(json.dumps(manifest))
    other = tmp_path / "other.key"
    keygen(other, agent_env)
    current = fingerprint(pg_server, database)
    before = pg_server.database_names()
    # The changed manifest fails its signature; past that (--allow-unsigned), age's own wall.
    result = run_agent(["restore", "latest", "--yes", "--identity", str(other),
                        "--allow-unsigned"], agent_env)
    expect(result, CHANGED)
    assert "wrong key" in result.stderr and "nothing was restored" in result.stderr
    assert pg_server.database_names() == before
    assert fingerprint(pg_server, database) == current


def test_a_changed_byte_fails_even_when_the_checksum_was_rewritten_to_match(
        encrypted: tuple[dict[str, str], dict[str, str]], keys: tuple[Path, str],
        agent_env: dict[str, str], backup_dir: Path, pg_server: PostgresServer,
        database: str) -> None:
    """Someone with the writer key replaces the backup and its .sha256: age's
    authentication still refuses it, and nothing reaches the database."""
    report, _ = encrypted
    identity, _ = keys
    path = backup_dir / report["name"]
    flip_a_bit(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    (backup_dir / f"{report['name']}.sha256").write_text(f"{digest}  {report['name']}\n")
    current = fingerprint(pg_server, database)
    before = pg_server.database_names()
    # The rewritten .sha256 fails the signed manifest; past that (--allow-unsigned), age's.
    result = run_agent(["restore", "latest", "--yes", "--identity", str(identity),
                        "--allow-unsigned"], agent_env)
    expect(result, CHANGED)
    assert "age decryption failed" in result.stderr
    assert pg_server.database_names() == before
    assert fingerprint(pg_server, database) == current


def test_retention_and_list_handle_encrypted_backups_without_the_key(
        keys: tuple[Path, str], agent_env: dict[str, str], backup_dir: Path) -> None:
    _identity, public = keys
    plain = make_backup({**agent_env, "KEEP_LOCAL": "2"})
    encrypted_names = [make_backup({**agent_env, "KEEP_LOCAL": "2", "ENCRYPT_TO": public})["name"]
                       for _ in range(2)]
    assert not (backup_dir / plain["name"]).exists()  # the oldest went, as usual
    assert all((backup_dir / name).exists() for name in encrypted_names)
    listed = run_agent(["list", "--json"], agent_env)
    assert listed.returncode == 0, listed.stderr
    names = {(item["where"], item["name"]) for item in json.loads(listed.stdout)["backups"]}
    assert {("local+s3", name) for name in encrypted_names} <= names  # one row per backup
    status = run_agent(["status", "--max-age", "1h"], agent_env)
    assert status.returncode == 0, status.stderr


@pytest.mark.parametrize(("value", "problem"), [
    ("age1notakey", "not a valid age public key"),
    ("AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQ", "never the secret key"),
])
def test_a_bad_recipient_is_refused_in_one_line_without_echoing_a_secret(
        value: str, problem: str, agent_env: dict[str, str], backup_dir: Path) -> None:
    result = run_agent(["backup", "--encrypt-to", value], agent_env)
    assert result.returncode == 2
    assert problem in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "QQQQQQQQQQQQQQQQQ" not in result.stderr
    assert list(backup_dir.iterdir()) == []


def test_a_bad_identity_file_is_refused_without_quoting_it(
        encrypted: tuple[dict[str, str], dict[str, str]], agent_env: dict[str, str],
        tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.key"
    bogus.write_text("AGE-SECRET-KEY-1NOTREALLYAKEYBUTSECRETLOOKING\n")
    result = run_agent(["restore", "latest", "--yes", "--identity", str(bogus)], agent_env)
    assert result.returncode == 2 and "line 1" in result.stderr
    assert "SECRETLOOKING" not in result.stderr
    absent = run_agent(["verify", "--identity", str(tmp_path / "absent.key")], agent_env)
    assert absent.returncode == 2 and "does not exist" in absent.stderr
