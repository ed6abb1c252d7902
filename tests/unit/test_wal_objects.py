"""The archive's object format: the signed statement, the metadata, and the round trip."""

from __future__ import annotations

import hashlib
import io
import os
from functools import partial
from pathlib import Path

import pytest

from backup_agent.keys.signing import new_signing_key, sign, signer
from backup_agent.model.errors import ConfigurationError, VerificationError
from backup_agent.streams.age import new_identity, parse_identities
from backup_agent.wal.codec import decode_stream, encode_file, encode_stream
from backup_agent.wal.objects import (
    FORMAT,
    Facts,
    Meta,
    metadata_for,
    same_content,
    signed_facts,
    statement,
)

KEY = "wal/7412345678901234567/00000001/000000010000000000000003"


def signing_pair() -> tuple[partial[bytes], str]:
    from cryptography.hazmat.primitives import serialization

    pem, public = new_signing_key()
    key = serialization.load_pem_private_key(pem, password=None)
    return partial(sign, key), public  # type: ignore[arg-type]


def test_the_statement_is_canonical_text_naming_key_hash_size_and_encoding() -> None:
    facts = Facts(sha256="ab" * 32, size=16777216, encoding="gzip")
    assert statement(KEY, facts) == (
        f"backup-agent-wal-1\nkey {KEY}\nsha256 {'ab' * 32}\nsize 16777216\n"
        "encoding gzip\n").encode()


def test_signed_metadata_proves_the_facts_for_this_key_only() -> None:
    sign_with, public = signing_pair()
    facts = Facts(sha256="cd" * 32, size=42, encoding="gzip+age")
    metadata = metadata_for(KEY, facts, sign_with, {"hostname": "db1"})
    assert metadata[Meta.FORMAT] == FORMAT and metadata[Meta.SHA256] == "cd" * 32
    assert all(value.isascii() and "\n" not in value for value in metadata.values())
    vouch = partial(signer, trusted=[public])
    assert signed_facts(KEY, metadata, lambda doc, st: vouch(doc, st)) == facts
    # Moved to the next segment's key: the rebuilt statement no longer matches.
    moved = KEY.replace("0003", "0004")
    with pytest.raises(VerificationError, match="not signed by any"):
        signed_facts(moved, metadata, lambda doc, st: vouch(doc, st))
    # The hash in the metadata changed (to match a substituted body).
    changed = {**metadata, Meta.SHA256: "ef" * 32}
    with pytest.raises(VerificationError, match="not signed by any"):
        signed_facts(KEY, changed, lambda doc, st: vouch(doc, st))


def test_another_key_or_no_signature_is_not_trusted() -> None:
    sign_with, _public = signing_pair()
    _other, other_public = signing_pair()
    facts = Facts(sha256="cd" * 32, size=42, encoding="gzip")
    metadata = metadata_for(KEY, facts, sign_with)
    with pytest.raises(VerificationError, match="not signed by any"):
        signed_facts(KEY, metadata, lambda doc, st: signer(doc, st, [other_public]))
    unsigned = metadata_for(KEY, facts, None)
    with pytest.raises(VerificationError, match="is not signed"):
        signed_facts(KEY, unsigned, lambda doc, st: signer(doc, st, [other_public]))
    assert signed_facts(KEY, unsigned, None) == facts  # the caller's --allow-unsigned


@pytest.mark.parametrize("metadata", [
    {}, {Meta.FORMAT: "other"},
    {Meta.FORMAT: FORMAT, Meta.SHA256: "xyz", Meta.SIZE: "1", Meta.ENCODING: "gzip"},
    {Meta.FORMAT: FORMAT, Meta.SHA256: "ab" * 32, Meta.SIZE: "-1", Meta.ENCODING: "gzip"},
    {Meta.FORMAT: FORMAT, Meta.SHA256: "ab" * 32, Meta.SIZE: "1", Meta.ENCODING: "zstd"}])
def test_malformed_metadata_is_refused(metadata: dict[str, str]) -> None:
    with pytest.raises(VerificationError):
        signed_facts(KEY, metadata, None)


def test_a_retry_compares_the_plaintext_hash_and_size() -> None:
    facts = Facts(sha256="ab" * 32, size=5, encoding="gzip+age")
    stored = metadata_for(KEY, facts, None)
    assert same_content(stored, Facts(sha256="ab" * 32, size=5, encoding="gzip"))
    assert not same_content(stored, Facts(sha256="ac" * 32, size=5, encoding="gzip+age"))
    assert not same_content(None, facts)


@pytest.mark.parametrize("encrypted", [False, True])
def test_encode_then_decode_gives_back_the_file(tmp_path: Path, encrypted: bool) -> None:
    identity_text, recipient = new_identity()
    identities = parse_identities(identity_text.decode(), "test")
    plaintext = os.urandom(3 * 1024 * 1024 + 17)
    (tmp_path / "segment").write_bytes(plaintext)
    stored = io.BytesIO()
    facts = encode_file(tmp_path / "segment", stored, [recipient] if encrypted else [])
    assert facts == Facts(sha256=hashlib.sha256(plaintext).hexdigest(), size=len(plaintext),
                          encoding="gzip+age" if encrypted else "gzip")
    assert stored.getvalue().startswith(b"age-encryption.org/v1" if encrypted else b"\x1f\x8b")
    decoded = io.BytesIO()
    decode_stream(io.BytesIO(stored.getvalue()), decoded, facts, identities=identities,
                  what="segment")
    assert decoded.getvalue() == plaintext


def encoded(data: bytes, recipients: list[str]) -> tuple[bytes, Facts]:
    stored = io.BytesIO()
    facts = encode_stream(io.BytesIO(data), stored, recipients)
    return stored.getvalue(), facts


@pytest.mark.parametrize("damage", ["truncated", "flipped", "appended"])
def test_a_damaged_object_does_not_decode(damage: str) -> None:
    stored, facts = encoded(b"WAL" * 100_000, [])
    if damage == "truncated":
        stored = stored[:-20]
    elif damage == "flipped":
        stored = stored[:200] + bytes([stored[200] ^ 1]) + stored[201:]
    else:
        stored += b"garbage"
    with pytest.raises(VerificationError):
        decode_stream(io.BytesIO(stored), io.BytesIO(), facts, identities=[], what="segment")


def test_a_valid_object_with_other_content_does_not_prove() -> None:
    stored, _facts = encoded(b"the attacker's WAL", [])
    _, genuine = encoded(b"the server's WAL..", [])
    with pytest.raises(VerificationError, match="was changed"):
        decode_stream(io.BytesIO(stored), io.BytesIO(), genuine, identities=[], what="segment")


def test_an_encrypted_object_needs_an_identity_and_the_right_one() -> None:
    _identity, recipient = new_identity()
    wrong_text, _wrong_recipient = new_identity()
    stored, facts = encoded(b"secret WAL", [recipient])
    with pytest.raises(ConfigurationError, match="--identity"):
        decode_stream(io.BytesIO(stored), io.BytesIO(), facts, identities=[], what="segment")
    with pytest.raises(VerificationError, match="wrong key"):
        decode_stream(io.BytesIO(stored), io.BytesIO(), facts,
                      identities=parse_identities(wrong_text.decode(), "test"), what="segment")
