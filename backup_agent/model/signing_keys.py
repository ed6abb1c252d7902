"""The shape of Ed25519 public keys (TRUSTED_SIGNING_KEYS), checked without cryptography.

A public key is written `ed25519:` and the base64 of its 32 raw bytes, so it fits on one
line of an env file or a GitHub secret.
"""

from __future__ import annotations

import base64
import binascii

from backup_agent.model.errors import ConfigurationError

PUBLIC_KEY_PREFIX = "ed25519:"
PUBLIC_KEY_BYTES = 32


def public_key_bytes(text: str) -> bytes | None:
    """Return the 32 raw bytes of `ed25519:<base64>`, or None if it is not one."""
    if not text.startswith(PUBLIC_KEY_PREFIX):
        return None
    try:
        raw = base64.b64decode(text.removeprefix(PUBLIC_KEY_PREFIX), validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == PUBLIC_KEY_BYTES else None


def parse_trusted_keys(text: str, variable: str = "TRUSTED_SIGNING_KEYS") -> tuple[str, ...]:
    """Return the public keys in `text`, separated by commas or spaces."""
    keys = tuple(text.replace(",", " ").split())
    for key in keys:
        if public_key_bytes(key) is None:
            raise ConfigurationError(f"{variable}: {key[:20]!r}… is not an Ed25519 public key "
                                     "(ed25519:…): copy the last line `backup-agent keygen "
                                     "--signing` printed")
    return keys
