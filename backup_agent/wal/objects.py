"""The archive's object format: what each stored object's metadata says, and what is signed.

Every object of the WAL archive (a segment, a `.history` file, a base backup's descriptor)
is stored as

    bytes      gzip (ISA-L; plain `gunzip` reads it) of the file, then age-encrypted to
               ENCRYPT_TO when that is set (`age -d -i KEY | gunzip` reads it)
    metadata   (S3 user metadata, `x-amz-meta-<name>`; all ASCII)
      format       `backup-agent-wal-1`
      encoding     `gzip` or `gzip+age`
      sha256       SHA-256 of the plaintext (the file as PostgreSQL wrote it), 64 hex digits
      size         the plaintext's size in bytes, decimal
      signing-key  `ed25519:<base64 public key>`          (absent when SIGNING_KEY_FILE is not set)
      signature    base64 Ed25519 signature of the statement (absent likewise)
      created, hostname, tool                              (informational, not signed)

The signature is over this canonical statement, UTF-8, each line ending in "\\n":

    backup-agent-wal-1
    key <key relative to S3_PREFIX, e.g. wal/7412345678901234567/00000001/000000010000000000000003>
    sha256 <plaintext SHA-256, lower-case hex>
    size <plaintext size, decimal>
    encoding <gzip|gzip+age>

The statement is never stored: a reader rebuilds it from the key it asked for and the
metadata, so a signed object cannot be moved to another key (or cluster, or timeline), and
its hash cannot be changed, without the signature failing. The first line keeps a WAL
signature from ever being mistaken for a backup manifest's (those sign JSON).

Why metadata and not a sidecar: the signature then arrives with the object in the same
create-only PUT, so there is never a segment without its signature (nor a signature
without its segment), a segment costs one request and one object, not two, and a retried
upload can compare the existing object's plaintext hash with one HEAD.

A reader proves an object before it hands out a byte (`prove.fetch_proven`): a trusted
key's signature over the rebuilt statement, then age decryption (authenticated), then a
complete gzip stream, then the plaintext's size and SHA-256 against the signed ones.

Base backups' large files (the pg_basebackup tar) are streamed while they are made, so
their hash is known only at the end: they carry `format` and `encoding` only, and the base
backup's descriptor (a signed object as above, published last) holds their key, plaintext
SHA-256 and size. A base backup is complete only when its descriptor exists.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from backup_agent.model.errors import VerificationError

FORMAT = "backup-agent-wal-1"
ENCODING_GZIP = "gzip"
ENCODING_GZIP_AGE = "gzip+age"
ENCODINGS = (ENCODING_GZIP, ENCODING_GZIP_AGE)
SIGNATURE_FORMAT = "ed25519"  # keys/signing's document format


class Meta:
    """The metadata names (boto3 hands them back in lower case, without x-amz-meta-)."""

    FORMAT = "format"
    ENCODING = "encoding"
    SHA256 = "sha256"
    SIZE = "size"
    SIGNING_KEY = "signing-key"
    SIGNATURE = "signature"


# sign(statement) -> the signature document keys.signing.sign writes ({"key", "signature"}).
Sign = Callable[[bytes], bytes]
# vouch(signature document, statement) -> the trusted public key that signed it, or None:
# keys.signing.signer with the trusted keys bound (the wal layer sits below keys).
Vouch = Callable[[bytes, bytes], str | None]

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Facts:
    """What an object's metadata says about its plaintext."""

    sha256: str
    size: int
    encoding: str

    @property
    def encrypted(self) -> bool:
        return self.encoding == ENCODING_GZIP_AGE


def encoding_for(*, encrypted: bool) -> str:
    return ENCODING_GZIP_AGE if encrypted else ENCODING_GZIP


def statement(key: str, facts: Facts) -> bytes:
    """Return the canonical statement a signature covers (see the module's description)."""
    if "\n" in key:
        raise ValueError(f"a key holds a line break: {key!r}")
    return (f"{FORMAT}\nkey {key}\nsha256 {facts.sha256}\nsize {facts.size}\n"
            f"encoding {facts.encoding}\n").encode()


def metadata_for(key: str, facts: Facts, sign: Sign | None,
                 extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Return the metadata of an object stored at `key` with these facts, signed if `sign`."""
    metadata = {**(extra or {}), Meta.FORMAT: FORMAT, Meta.ENCODING: facts.encoding,
                Meta.SHA256: facts.sha256, Meta.SIZE: str(facts.size)}
    if sign is not None:
        document = json.loads(sign(statement(key, facts)))
        metadata[Meta.SIGNING_KEY] = str(document["key"])
        metadata[Meta.SIGNATURE] = str(document["signature"])
    return metadata


def streamed_metadata(*, encrypted: bool,
                      extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Return the metadata of an object a signed descriptor describes (a base backup's tar)."""
    return {**(extra or {}), Meta.FORMAT: FORMAT, Meta.ENCODING: encoding_for(encrypted=encrypted)}


def facts_of(key: str, metadata: Mapping[str, str]) -> Facts:
    """Return the facts an object's metadata states; raise VerificationError when they are
    missing or malformed (not an object this format describes)."""
    lowered = {name.lower(): value for name, value in metadata.items()}
    if lowered.get(Meta.FORMAT) != FORMAT:
        raise VerificationError(f"{key} is not a WAL archive object (metadata format "
                                f"{lowered.get(Meta.FORMAT)!r}, expected {FORMAT!r}): it was "
                                "not written by backup-agent's archive")
    sha256 = lowered.get(Meta.SHA256, "")
    size = lowered.get(Meta.SIZE, "")
    encoding = lowered.get(Meta.ENCODING, "")
    if not _SHA256.match(sha256) or not size.isdigit() or encoding not in ENCODINGS:
        raise VerificationError(f"{key} has malformed archive metadata (sha256, size or "
                                "encoding): it cannot be proven, so it is not used")
    return Facts(sha256=sha256, size=int(size), encoding=encoding)


def signature_document(metadata: Mapping[str, str]) -> bytes | None:
    """Return the signature as keys.signing's document, or None when the object is unsigned."""
    lowered = {name.lower(): value for name, value in metadata.items()}
    key, signature = lowered.get(Meta.SIGNING_KEY), lowered.get(Meta.SIGNATURE)
    if not key or not signature:
        return None
    try:
        base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        return None
    return json.dumps({"format": SIGNATURE_FORMAT, "key": key,
                       "signature": signature}).encode()


def signed_facts(key: str, metadata: Mapping[str, str], vouch: Vouch | None) -> Facts:
    """Return the object's facts once a trusted key is proven to have signed them for this
    very key; raise VerificationError otherwise. `vouch` None means the caller chose to
    accept unsigned objects (--allow-unsigned): the facts are then only self-consistent."""
    facts = facts_of(key, metadata)
    if vouch is None:
        return facts
    document = signature_document(metadata)
    if document is None:
        raise VerificationError(f"{key} is not signed (no signature in its metadata): it is "
                                "not trusted; set SIGNING_KEY_FILE where WAL is archived")
    if vouch(document, statement(key, facts)) is None:
        raise VerificationError(f"{key} is not signed by any of TRUSTED_SIGNING_KEYS for this "
                                "key, hash and size: it is not trusted (moved, changed, or "
                                "signed by another server)")
    return facts


def same_content(metadata: Mapping[str, str] | None, facts: Facts) -> bool:
    """True when an existing object's metadata states exactly this plaintext (a retried
    upload of the same file; the stored bytes differ run to run when encrypted)."""
    if metadata is None:
        return False
    lowered = {name.lower(): value for name, value in metadata.items()}
    return (lowered.get(Meta.FORMAT) == FORMAT and lowered.get(Meta.SHA256) == facts.sha256
            and lowered.get(Meta.SIZE) == str(facts.size))
