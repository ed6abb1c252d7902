"""Which age identity opens a backup.

AGE_IDENTITY_FILE (--identity) wins over AGE_IDENTITY. A missing or wrong key is a
configuration error, raised before any database is created or any byte is downloaded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from backup_agent.model.backup import BackupRef
from backup_agent.model.errors import ConfigurationError
from backup_agent.model.settings import Settings
from backup_agent.streams.age import check_identity_matches, load_identities, parse_identities

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


def first_identities(settings: Settings) -> list[Identity]:
    """Return the configured age identities, or none (an unencrypted archive needs none)."""
    configured = configured_identities(settings)
    return configured[0] if configured else []


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
