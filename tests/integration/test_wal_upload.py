"""The segment uploader against moto's server: create-only, idempotent, never overwriting.

Segments here are small files named like segments (the format does not care about size).
"""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from backup_agent.keys.signing import new_signing_key, sign, signer
from backup_agent.model.errors import S3Error, SourceNotFoundError, VerificationError
from backup_agent.model.settings import S3Settings
from backup_agent.storage.s3 import S3Store
from backup_agent.streams.age import new_identity, parse_identities
from backup_agent.wal.names import parse_wal_name
from backup_agent.wal.objects import Meta
from backup_agent.wal.prove import fetch_proven, read_proven
from backup_agent.wal.spool import ready_files
from backup_agent.wal.uploader import (
    ConflictingObjectError,
    Encoder,
    Uploaded,
    upload_file,
    upload_ready,
)
from testbed.faulty_s3 import Fault, faulty_s3
from testbed.s3 import S3Endpoint

SYSID = "7412345678901234567"
SEGMENT = "000000010000000000000003"
KEY = f"wal/{SYSID}/00000001/{SEGMENT}"


def store_at(url: str, bucket: str, monkeypatch: pytest.MonkeyPatch,
             s3_endpoint: S3Endpoint) -> S3Store:
    for variable, value in s3_endpoint.environment().items():
        monkeypatch.setenv(variable, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", url)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    return S3Store(S3Settings(bucket=bucket, prefix="backups/", part_size_mib=5))


@pytest.fixture
def store(s3_endpoint: S3Endpoint, bucket: str, monkeypatch: pytest.MonkeyPatch) -> S3Store:
    return store_at(s3_endpoint.url, bucket, monkeypatch, s3_endpoint)


@pytest.fixture
def keys() -> tuple[Ed25519PrivateKey, str]:
    pem, public = new_signing_key()
    key = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(key, Ed25519PrivateKey)
    return key, public


@pytest.fixture
def spool(tmp_path: Path) -> Path:
    directory = tmp_path / "spool"
    directory.mkdir()
    return directory


def encoder_for(keys: tuple[Ed25519PrivateKey, str], recipients: tuple[str, ...] = ()) -> Encoder:
    return Encoder(system_identifier=SYSID, recipients=recipients, sign=partial(sign, keys[0]),
                   extra_metadata={"hostname": "db1"})


def segment(spool: Path, content: bytes, name: str = SEGMENT) -> Path:
    path = spool / name
    path.write_bytes(content)
    return path


def upload(store: S3Store, path: Path, encoder: Encoder) -> Uploaded:
    wal = parse_wal_name(path.name)
    assert wal is not None
    return upload_file(store, wal, path, encoder)


def test_a_segment_is_stored_signed_and_encrypted_and_reads_back_proven(
        store: S3Store, spool: Path, keys: tuple[Ed25519PrivateKey, str],
        tmp_path: Path) -> None:
    identity, recipient = new_identity()
    content = os.urandom(1024 * 1024)
    path = segment(spool, content)
    upload(store, path, encoder_for(keys, (recipient,)))
    assert not path.exists()  # deleted once S3 holds it
    assert not list((spool / ".backup-agent" / "encoding").iterdir())
    head = store.head(f"backups/{KEY}")
    assert head is not None and head["Metadata"][Meta.ENCODING] == "gzip+age"
    assert head["ServerSideEncryption"] == "AES256"
    vouch = partial(signer, trusted=[keys[1]])
    restored = tmp_path / "restored"
    facts = fetch_proven(store, KEY, restored, vouch=lambda doc, st: vouch(doc, st),
                         identities=parse_identities(identity.decode(), "test"))
    assert restored.read_bytes() == content and facts.size == len(content)


def test_a_second_upload_of_the_same_segment_succeeds_and_removes_the_copy(
        store: S3Store, spool: Path, keys: tuple[Ed25519PrivateKey, str]) -> None:
    _identity, recipient = new_identity()
    content = os.urandom(100_000)
    upload(store, segment(spool, content), encoder_for(keys, (recipient,)))
    before = store.head(f"backups/{KEY}")
    again = segment(spool, content)  # e.g. received again after a crash before the delete
    result = upload(store, again, encoder_for(keys, (recipient,)))
    assert result.already_there is True
    assert not again.exists()
    after = store.head(f"backups/{KEY}")
    assert before is not None and after is not None and before["ETag"] == after["ETag"]


def test_a_different_segment_under_the_same_name_is_an_alarm_and_is_kept(
        store: S3Store, spool: Path, keys: tuple[Ed25519PrivateKey, str]) -> None:
    upload(store, segment(spool, b"the archived WAL" * 1000), encoder_for(keys))
    other = segment(spool, b"a different WAL!" * 1000)
    with pytest.raises(ConflictingObjectError, match="already holds a different") as raised:
        upload(store, other, encoder_for(keys))
    assert raised.value.exit_code == 5
    assert other.exists()


def test_a_bucket_that_ignores_if_none_match_cannot_make_it_overwrite(
        s3_endpoint: S3Endpoint, bucket: str, monkeypatch: pytest.MonkeyPatch, spool: Path,
        keys: tuple[Ed25519PrivateKey, str]) -> None:
    with faulty_s3(s3_endpoint.url, lambda request: None,
                   dropped_headers=frozenset({"if-none-match"})) as proxy:
        careless = store_at(proxy.url, bucket, monkeypatch, s3_endpoint)
        upload(careless, segment(spool, b"first" * 1000), encoder_for(keys))
        first = careless.head(f"backups/{KEY}")
        writes = sum(request.creates_an_object for request in proxy.seen)
        with pytest.raises(ConflictingObjectError):
            upload(careless, segment(spool, b"other" * 1000), encoder_for(keys))
        assert sum(request.creates_an_object for request in proxy.seen) == writes
    stored = careless.head(f"backups/{KEY}")
    assert first is not None and stored is not None and stored["ETag"] == first["ETag"]


@pytest.mark.parametrize("size", [100_000, 11 * 1024 * 1024])  # one PUT; multipart
def test_an_interrupted_upload_leaves_nothing_visible_and_the_segment_kept(
        s3_endpoint: S3Endpoint, bucket: str, monkeypatch: pytest.MonkeyPatch, spool: Path,
        keys: tuple[Ed25519PrivateKey, str], size: int) -> None:
    fault = Fault(500, "InternalError")
    with faulty_s3(s3_endpoint.url,
                   lambda request: fault if request.creates_an_object else None) as proxy:
        failing = store_at(proxy.url, bucket, monkeypatch, s3_endpoint)
        path = segment(spool, os.urandom(size))
        with pytest.raises(S3Error):
            upload(failing, path, encoder_for(keys))
    assert path.exists()
    assert failing.head(f"backups/{KEY}") is None
    assert not failing.client.list_multipart_uploads(Bucket=bucket).get("Uploads")


def test_history_files_go_first_and_each_file_once(
        store: S3Store, spool: Path, keys: tuple[Ed25519PrivateKey, str]) -> None:
    for name in ("000000020000000000000005", "000000010000000000000004", "00000002.history",
                 "000000020000000000000004.partial"):
        segment(spool, name.encode(), name)
    assert [wal.name for wal, _ in ready_files(spool)] == [
        "000000010000000000000004", "00000002.history", "000000020000000000000005"]
    uploaded = list(upload_ready(store, spool, encoder_for(keys)))
    assert [item.key for item in uploaded] == [
        f"wal/{SYSID}/00000001/000000010000000000000004",
        f"wal/{SYSID}/00000002/00000002.history",
        f"wal/{SYSID}/00000002/000000020000000000000005"]
    assert [path.name for path in spool.iterdir() if path.is_file()] == [
        "000000020000000000000004.partial"]
    history = read_proven(store, f"wal/{SYSID}/00000002/00000002.history", vouch=None)
    assert history == b"00000002.history"


def test_a_replaced_or_unsigned_object_is_never_handed_out(
        store: S3Store, spool: Path, keys: tuple[Ed25519PrivateKey, str],
        tmp_path: Path) -> None:
    upload(store, segment(spool, b"genuine" * 1000), encoder_for(keys))
    head = store.head(f"backups/{KEY}")
    assert head is not None
    # Someone with write access puts other WAL there, keeping the genuine metadata.
    forged = spool / "forged"
    forged.write_bytes(b"forged!" * 1000)
    from backup_agent.wal.codec import encode_file

    with (spool / "forged.stored").open("wb") as target:
        encode_file(forged, target, ())
    store.client.put_object(Bucket=store.bucket, Key=f"backups/{KEY}",
                            Body=(spool / "forged.stored").read_bytes(),
                            Metadata=head["Metadata"])
    vouch = partial(signer, trusted=[keys[1]])
    destination = tmp_path / SEGMENT
    with pytest.raises(VerificationError, match="was changed"):
        fetch_proven(store, KEY, destination, vouch=lambda doc, st: vouch(doc, st))
    assert not destination.exists() and not list(tmp_path.glob(".*proving"))
    # Unsigned: refused unless the caller explicitly accepts unsigned objects.
    unsigned_encoder = Encoder(system_identifier=SYSID)
    upload(store, segment(spool, b"x", "000000010000000000000009"), unsigned_encoder)
    with pytest.raises(VerificationError, match="is not signed"):
        fetch_proven(store, KEY.replace("0003", "0009"), destination,
                     vouch=lambda doc, st: vouch(doc, st))
    with pytest.raises(SourceNotFoundError):
        fetch_proven(store, KEY.replace("0003", "0008"), destination, vouch=None)
