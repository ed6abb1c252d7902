"""Which keys a backup needs: the age identity that opens it, the signature that vouches.

AGE_IDENTITY_FILE (--identity) wins over AGE_IDENTITY. A missing or wrong key is a
configuration error, raised before any database is created or any byte is downloaded.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from backup_agent.model.backup import BackupRef
from backup_agent.model.errors import ConfigurationError
from backup_agent.model.settings import Settings
from backup_agent.streams.age import (
    check_identity_matches,
    load_identities,
    new_identity,
    parse_identities,
)

if TYPE_CHECKING:
    from pyrage.x25519 import Identity


def configured_identities(settings: Settings) -> tuple[list[Identity], str] | None:
    """Return the age identities the settings provide and where they came from, or None."""
    if settings.identity_file is not None:
        return (load_identities(settings.identity_file),
                f"identity file {settings.identity_file}")
    if settings.identity_text is not None:
        return parse_identities(settings.identity_text, "AGE_IDENTITY"), "AGE_IDENTITY"
    return None


def decryption_keys(settings: Settings, backup: BackupRef, *,
                    required: bool = True) -> list[Identity] | None:
    """Return the age identities that open `backup`; None for an unencrypted backup (or,
    when not `required`, an encrypted one without a configured key)."""
    if not backup.encrypted:
        return None
    configured = configured_identities(settings)
    if configured is None:
        if not required:
            return None
        recipients = f" (encrypted to {', '.join(backup.recipients)})" if backup.recipients else ""
        raise ConfigurationError(f"{backup.location} is age-encrypted{recipients}: pass "
                                 "--identity FILE (or AGE_IDENTITY_FILE) with its private key")
    identities, origin = configured
    check_identity_matches(identities, backup.recipients, origin=origin,
                           location=backup.location)
    return identities


def untrusted_reason(settings: Settings, backup: BackupRef) -> str | None:
    """Why `backup` is not trusted under TRUSTED_SIGNING_KEYS; None if trusted or unchecked."""
    if not settings.trusted_signing_keys:
        return None
    from backup_agent.authenticity import why_untrusted  # cryptography, only when asked

    return why_untrusted(backup, settings.trusted_signing_keys)


def is_trusted(settings: Settings, backup: BackupRef) -> bool:
    """A trusted key signed `backup` (code in it may then run as the objects' owners)."""
    return bool(settings.trusted_signing_keys) and untrusted_reason(settings, backup) is None


def authenticity_warnings(settings: Settings, backups: list[BackupRef], *,
                          refuse: bool = True) -> list[str]:
    """Refuse (exit 8) an untrusted backup when keys are trusted; else warn once that
    authenticity was not checked."""
    if not settings.trusted_signing_keys:
        return ["authenticity was not checked (set TRUSTED_SIGNING_KEYS to require the "
                "server's signature on every backup restored or verified)"]
    if refuse:
        from backup_agent.authenticity import authenticate

        for backup in backups:
            authenticate(backup, settings.trusted_signing_keys)
    return []


def create_key_file(path: Path, *, signing: bool) -> tuple[str, str]:
    """Write a new private key file (0600, never overwriting); return (public key, a note)."""
    if signing:
        from backup_agent.signing import new_signing_key

        content, public = new_signing_key()
        note = (f"wrote the signing key to {path}: set SIGNING_KEY_FILE={path} in the "
                "server's env file (only there), and the public key below in "
                "TRUSTED_SIGNING_KEYS wherever backups are restored or verified")
    else:
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
