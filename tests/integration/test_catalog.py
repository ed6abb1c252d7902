"""The catalog: one record per backup, one "latest complete", names resolved safely.

Local backups live in a tmp directory, S3 ones in moto's server; both are made by hand
(the sidecars a backup run writes), so each case is exactly the state it names.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from backup_agent.catalog import Catalog
from backup_agent.keys import signing
from backup_agent.keys.trust import TrustedCatalog, authenticity_warnings, untrusted_reason
from backup_agent.model.backup import Where
from backup_agent.model.errors import ConfigurationError, SourceNotFoundError
from backup_agent.model.naming import AGENT_NAME, checksum_line, s3_key
from backup_agent.model.settings import PostgresSettings, S3Settings, Settings
from testbed.s3 import S3Endpoint

OLD, NEW, NEWEST = ("db_backup_20260101_020000.sql.gz", "db_backup_20260102_020000.sql.gz",
                    "db_backup_20260103_020000.sql.gz")


def sidecars(name: str, data: bytes, *, tool: str = AGENT_NAME,
             signed_by: Ed25519PrivateKey | None = None) -> dict[str, bytes]:
    digest = hashlib.sha256(data).hexdigest()
    manifest = json.dumps({"tool": tool, "sha256": digest, "name": name}).encode()
    files = {name: data, name + ".sha256": checksum_line(digest, name).encode(),
             name + ".manifest.json": manifest}
    if signed_by is not None:
        files[name + ".sig"] = signing.sign(signed_by, manifest)
    return files


def settings_for(directory: Path, bucket: str | None = None, *,
                 trusted: tuple[str, ...] = ()) -> Settings:
    return Settings(postgres=PostgresSettings(database="shop"), s3=S3Settings(bucket=bucket),
                    backup_directory=directory, trusted_signing_keys=trusted)


@pytest.fixture
def directory(tmp_path: Path) -> Path:
    files = {**sidecars(OLD, b"old"), **sidecars(NEW, b"new")}
    files.update({NEWEST: b"no sidecars: an interrupted or foreign backup"})
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    return tmp_path


def test_local_listing_is_newest_first_and_latest_is_the_newest_complete(
        directory: Path) -> None:
    catalog = Catalog(settings_for(directory))
    assert [backup.name for backup in catalog.local()] == [NEWEST, NEW, OLD]
    assert [backup.complete for backup in catalog.local()] == [False, True, True]
    latest = catalog.latest(from_s3=False)
    assert latest.name == NEW and latest.details_loaded
    assert latest.expected_sha256 == hashlib.sha256(b"new").hexdigest()
    with latest.open() as stream:
        assert stream.read() == b"new"


def test_a_foreign_manifest_does_not_make_a_backup_ours(tmp_path: Path) -> None:
    for name, content in sidecars(NEW, b"x", tool="someone-else").items():
        (tmp_path / name).write_bytes(content)
    catalog = Catalog(settings_for(tmp_path))
    assert not catalog.local()[0].complete
    with pytest.raises(SourceNotFoundError, match="no complete backup"):
        catalog.latest(from_s3=False)


def test_with_trusted_keys_latest_is_the_newest_signed_backup_and_is_checked_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = Ed25519PrivateKey.generate()
    files = {**sidecars(OLD, b"old", signed_by=key), **sidecars(NEW, b"new")}
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    tmp_path.chmod(0o700)
    settings = settings_for(tmp_path, trusted=(signing.public_key_text(key),))
    catalog = TrustedCatalog(settings)
    latest = catalog.latest(from_s3=False)
    assert latest.name == OLD and latest.authenticated
    assert catalog.warnings == [f"passed over {tmp_path / NEW}: it is not signed (no .sig "
                                "beside its manifest)"]
    monkeypatch.setattr(signing, "signer", lambda *arguments: pytest.fail("checked again"))
    assert untrusted_reason(settings, latest) is None
    assert authenticity_warnings(settings, [latest]) == []


def test_the_catalog_alone_never_picks_latest_under_trusted_keys(directory: Path) -> None:
    directory.chmod(0o700)
    catalog = Catalog(settings_for(directory, trusted=("ed25519:unused",)))
    with pytest.raises(RuntimeError, match="TrustedCatalog"):
        catalog.latest(from_s3=False)


def test_a_path_resolves_only_inside_the_backup_directory(directory: Path,
                                                          tmp_path_factory: pytest.TempPathFactory
                                                          ) -> None:
    catalog = Catalog(settings_for(directory))
    assert catalog.resolve(str(directory / OLD), from_s3=False).expected_sha256 is not None
    elsewhere = tmp_path_factory.mktemp("elsewhere") / OLD
    elsewhere.write_bytes(b"old")
    with pytest.raises(ConfigurationError, match="is not in the backup directory"):
        catalog.resolve(str(elsewhere), from_s3=False)
    with pytest.raises(ConfigurationError, match="is not a backup name"):
        catalog.resolve(str(directory / "notes.txt"), from_s3=False)
    with pytest.raises(SourceNotFoundError, match="no backup at"):
        catalog.resolve(str(directory / "db_backup_20250101_000000.sql.gz"), from_s3=False)


@pytest.fixture
def s3_catalog(s3_endpoint: S3Endpoint, bucket: str, tmp_path: Path,
               monkeypatch: pytest.MonkeyPatch) -> Catalog:
    for variable, value in s3_endpoint.environment().items():
        monkeypatch.setenv(variable, value)
    client = s3_endpoint.client()
    files = {**sidecars(OLD, b"old"), **sidecars(NEW, b"new" * 1000)}
    files[NEWEST] = b"uploaded, but its manifest never was"
    for name, content in files.items():
        client.put_object(Bucket=bucket, Key=s3_key("backups/", name), Body=content)
    return Catalog(settings_for(tmp_path, bucket))


def test_s3_listing_groups_sidecars_and_latest_loads_them(s3_catalog: Catalog,
                                                          bucket: str) -> None:
    listed = s3_catalog.s3()
    assert [(backup.name, backup.complete) for backup in listed] == [
        (NEWEST, False), (NEW, True), (OLD, True)]
    assert listed[1].key == "backups/2026/01/" + NEW
    assert listed[1].location == f"s3://{bucket}/backups/2026/01/{NEW}"
    latest = s3_catalog.latest(from_s3=True)
    assert latest.name == NEW and latest.where is Where.S3
    assert latest.manifest is not None and latest.manifest["tool"] == AGENT_NAME
    with latest.open() as stream:
        assert stream.read() == b"new" * 1000


def test_an_s3_url_resolves_only_in_the_configured_bucket(s3_catalog: Catalog,
                                                          bucket: str) -> None:
    url = f"s3://{bucket}/backups/2026/01/{OLD}"
    assert s3_catalog.resolve(url, from_s3=False).expected_sha256 == \
        hashlib.sha256(b"old").hexdigest()
    with pytest.raises(ConfigurationError, match="not in the configured bucket"):
        s3_catalog.resolve(f"s3://another-bucket/backups/2026/01/{OLD}", from_s3=False)
    with pytest.raises(ConfigurationError, match=r"'\.\.' path segment"):
        s3_catalog.resolve(f"s3://{bucket}/backups/../2026/01/{OLD}", from_s3=False)
    with pytest.raises(SourceNotFoundError, match="no object at"):
        s3_catalog.resolve(f"s3://{bucket}/backups/2026/01/db_backup_20260105_000000.sql.gz",
                           from_s3=False)


def test_every_backup_in_s3_comes_from_one_listing(s3_catalog: Catalog,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    original = s3_catalog.store.list

    def counting(prefix: str | None = None) -> list:  # type: ignore[type-arg]
        calls.append(prefix)
        return original(prefix)

    monkeypatch.setattr(s3_catalog.store, "list", counting)
    backups = s3_catalog.all(from_s3=True)
    assert len(backups) == 3 and all(backup.details_loaded for backup in backups)
    assert calls == [None]


def test_listing_everywhere_without_a_bucket_warns_and_shows_local(directory: Path) -> None:
    listing = Catalog(settings_for(directory)).listing(Where.ALL)
    assert [backup.where for backup in listing.backups] == [Where.LOCAL] * 3
    assert listing.warnings == ["S3_BUCKET is not set: showing local backups only"]
