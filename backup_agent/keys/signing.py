"""Signatures over manifests (Ed25519, with `cryptography`): who made a backup, provably.

The server signs each backup's manifest, which holds the SHA-256 of the backup's bytes,
with a key only it holds (SIGNING_KEY_FILE). Restore and verify accept a backup only when
one of TRUSTED_SIGNING_KEYS signed its manifest, so the writer's S3 key alone cannot
substitute a backup. The signature is a small JSON sidecar, `<name>.sig`.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from backup_agent.model.errors import ConfigurationError
from backup_agent.model.signing_keys import PUBLIC_KEY_PREFIX, public_key_bytes

SIGNATURE_FORMAT = "ed25519"


def public_key_text(key: Ed25519PrivateKey) -> str:
    raw = key.public_key().public_bytes(serialization.Encoding.Raw,
                                        serialization.PublicFormat.Raw)
    return PUBLIC_KEY_PREFIX + base64.b64encode(raw).decode()


def new_signing_key() -> tuple[bytes, str]:
    """Return a new private key (PEM) and its public key."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    return pem, public_key_text(key)


def load_signing_key(path: Path) -> Ed25519PrivateKey:
    """Read SIGNING_KEY_FILE; errors never quote the file (it is a private key)."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ConfigurationError(f"cannot read SIGNING_KEY_FILE {path} ({error.strerror}): "
                                 "check the path and its permissions") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        key = None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigurationError(f"SIGNING_KEY_FILE {path} is not an Ed25519 private key: use "
                                 "the file `backup-agent keygen --signing` wrote")
    return key


def sign(key: Ed25519PrivateKey, manifest: bytes) -> bytes:
    """Return the signature sidecar's content for these exact manifest bytes."""
    document = {"format": SIGNATURE_FORMAT, "key": public_key_text(key),
                "signature": base64.b64encode(key.sign(manifest)).decode()}
    return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode()


def signer(signature: bytes, manifest: bytes, trusted: Sequence[str]) -> str | None:
    """Return the trusted public key that signed `manifest`, or None if none did."""
    try:
        document = json.loads(signature.decode("utf-8"))
        claimed = str(document["key"])
        raw_signature = base64.b64decode(str(document["signature"]), validate=True)
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        return None
    if claimed not in trusted:
        return None
    raw_key = public_key_bytes(claimed)
    if raw_key is None:
        return None
    try:
        Ed25519PublicKey.from_public_bytes(raw_key).verify(raw_signature, manifest)
    except InvalidSignature:
        return None
    return claimed


def statement_signer(path: Path | None) -> Callable[[bytes], bytes] | None:
    """Return a function signing statements with SIGNING_KEY_FILE (None when unset): the
    WAL archive's objects are signed with it as backups' manifests are."""
    if path is None:
        return None
    return partial(sign, load_signing_key(path))
