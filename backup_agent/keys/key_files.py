"""`keygen`: write a new private key file (an age identity or a signing key), never over one."""

from __future__ import annotations

import os
from pathlib import Path

from backup_agent.model.errors import ConfigurationError


def create_key_file(path: Path, *, signing: bool) -> tuple[str, str]:
    """Write a new private key file (0600, never overwriting); return (public key, a note)."""
    if signing:
        from backup_agent.keys.signing import new_signing_key  # cryptography, only when asked

        content, public = new_signing_key()
        note = (f"wrote the signing key to {path}: set SIGNING_KEY_FILE={path} in the "
                "server's env file (only there), and the public key below in "
                "TRUSTED_SIGNING_KEYS wherever backups are restored or verified")
    else:
        from backup_agent.streams.age import new_identity  # pyrage, only when asked

        content, public = new_identity()
        note = (f"wrote the private key to {path} (keep it off the server, and safe: without "
                "it no encrypted backup can be restored)")
    _write_new_private_file(path, content)
    return public, note


def _write_new_private_file(path: Path, content: bytes) -> None:
    """Create `path` with mode 0600; never overwrite (a key lost is every backup lost)."""
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        raise ConfigurationError(f"{path} already exists: keygen never overwrites a key; "
                                 "choose another path") from None
    except OSError as error:
        raise ConfigurationError(f"cannot create {path} ({error.strerror})") from None
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(content)
