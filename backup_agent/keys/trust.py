"""Is this backup the one our server made? A trusted signature over its manifest says so.

The manifest names the backup and holds the SHA-256 of its bytes, and the server signs the
manifest (SIGNING_KEY_FILE). A backup is trusted when one of TRUSTED_SIGNING_KEYS signed
these exact manifest bytes, the manifest names this backup, and its `.sha256` agrees: the
proof then checks the bytes against that SHA-256 before anything runs. This is the one
place that decides; a backup it vouched for is marked, and not checked again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from backup_agent.catalog import Catalog
from backup_agent.model.backup import BackupRef
from backup_agent.model.errors import VerificationError
from backup_agent.model.settings import Settings

UNCHECKED = ("authenticity was not checked (set TRUSTED_SIGNING_KEYS to require the "
             "server's signature on every backup restored or verified)")


def why_untrusted(backup: BackupRef, trusted: Sequence[str]) -> str | None:
    """Return why `backup` (details loaded) cannot be trusted, or None when it can."""
    if backup.authenticated:
        return None
    from backup_agent.keys.signing import signer  # cryptography, only when asked

    if backup.signature is None or backup.manifest_bytes is None:
        return "it is not signed (no .sig beside its manifest)"
    if signer(backup.signature, backup.manifest_bytes, trusted) is None:
        return "its manifest is not signed by any of TRUSTED_SIGNING_KEYS"
    manifest = backup.manifest or {}
    if manifest.get("name") != backup.name:
        return f"its signed manifest is for {manifest.get('name')!r}, not this backup"
    if manifest.get("sha256") != backup.expected_sha256:
        return "its .sha256 differs from the SHA-256 in its signed manifest"
    return None


def untrusted_reason(settings: Settings, backup: BackupRef) -> str | None:
    """Why `backup` is not trusted under TRUSTED_SIGNING_KEYS; None if trusted or unchecked."""
    if not settings.trusted_signing_keys:
        return None
    return why_untrusted(backup, settings.trusted_signing_keys)


def trust(settings: Settings, backup: BackupRef) -> tuple[BackupRef, str | None]:
    """Return `backup` (marked as vouched for when a trusted key signed it) and why it is
    not trusted, or None when it is (or when no key is trusted: nothing is checked)."""
    problem = untrusted_reason(settings, backup)
    if problem is None and settings.trusted_signing_keys:
        backup = replace(backup, authenticated=True)
    return backup, problem


def is_trusted(settings: Settings, backup: BackupRef) -> bool:
    """A trusted key signed `backup` (code in it may then run as the objects' owners)."""
    return bool(settings.trusted_signing_keys) and untrusted_reason(settings, backup) is None


def authenticate(backup: BackupRef, trusted: Sequence[str]) -> None:
    """Raise VerificationError (exit 8) unless a trusted key vouches for `backup`."""
    problem = why_untrusted(backup, trusted)
    if problem is not None:
        raise VerificationError(f"refusing {backup.location}: {problem}; nothing was restored "
                                "and none of it ran (restore a backup your server signed)")


def authenticity_warnings(settings: Settings, backups: list[BackupRef], *,
                          refuse: bool = True) -> list[str]:
    """Refuse (exit 8) an untrusted backup when keys are trusted; else warn once that
    authenticity was not checked."""
    if not settings.trusted_signing_keys:
        return [UNCHECKED]
    if refuse:
        for backup in backups:
            authenticate(backup, settings.trusted_signing_keys)
    return []


class TrustedCatalog(Catalog):
    """The catalog as restore, verify and the runner checks see it: with TRUSTED_SIGNING_KEYS,
    `latest` passes over every backup no trusted key signed (a planted backup is never it)."""

    def vouch(self, backup: BackupRef) -> tuple[BackupRef, str | None]:
        return trust(self._settings, backup)
