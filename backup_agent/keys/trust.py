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
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING

from backup_agent.catalog import Catalog
from backup_agent.model.backup import BackupRef
from backup_agent.model.errors import BackupAgentError, VerificationError
from backup_agent.model.settings import Settings

if TYPE_CHECKING:
    from backup_agent.wal.objects import Vouch

UNCHECKED = ("authenticity was not checked (--allow-unsigned): code in the backup still runs "
             "only as a powerless role while it is restored, but what it holds is in your "
             "database afterwards")
NO_KEY = ("no trusted signing key here (TRUSTED_SIGNING_KEYS, or this server's own "
          "SIGNING_KEY_FILE), so no backup can be proven to be your server's")
ALLOW = ("set TRUSTED_SIGNING_KEYS to your server's public key (`backup-agent doctor` prints "
         "it where SIGNING_KEY_FILE is; `backup-agent keygen --signing` makes one), or pass "
         "--allow-unsigned")


# With keys trusted already, naming them again does not help: the backup itself is the
# question (made before signing was set up, by another server, or planted).
ALLOW_WITH_KEYS = ("if it is yours from before signing was set up (or from a server whose key "
                   "you lost), --allow-unsigned restores it")


def with_own_key(settings: Settings) -> Settings:
    """`settings` trusting also the public half of SIGNING_KEY_FILE: on the server that signs
    its backups, restoring and verifying them needs no further setting."""
    if settings.signing_key_file is None or not settings.signing_key_file.is_file():
        return settings
    from backup_agent.keys.signing import load_signing_key, public_key_text

    try:
        public = public_key_text(load_signing_key(settings.signing_key_file))
    except (OSError, ValueError, BackupAgentError):
        return settings  # a backup run says what is wrong with it; a restore goes on without
    if public in settings.trusted_signing_keys:
        return settings
    return replace(settings, trusted_signing_keys=(*settings.trusted_signing_keys, public))


def vouch_for(trusted: tuple[str, ...]) -> Vouch | None:
    """The check an archive object's signature must pass: one of `trusted` signed it
    (None when no key is trusted: the caller says so and fails)."""
    if not trusted:
        return None
    from backup_agent.keys.signing import signer

    check = partial(signer, trusted=trusted)
    return lambda document, statement: check(document, statement)


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


def untrusted_reason(settings: Settings, backup: BackupRef, *,
                     allow_unsigned: bool = False) -> str | None:
    """Why `backup` may not be read; None if a trusted key signed it, or (unchecked) with
    `allow_unsigned`."""
    if allow_unsigned:
        return None
    if not settings.trusted_signing_keys:
        return f"{NO_KEY}: {ALLOW}"
    problem = why_untrusted(backup, settings.trusted_signing_keys)
    return None if problem is None else f"{problem}: {ALLOW_WITH_KEYS}"


def trust(settings: Settings, backup: BackupRef) -> tuple[BackupRef, str | None]:
    """Return `backup` (marked as vouched for when a trusted key signed it) and why it is
    not trusted, or None when it is (or when no key is trusted: nothing can be checked, and
    `authenticity_warnings` decides)."""
    if not settings.trusted_signing_keys:
        return backup, None
    problem = why_untrusted(backup, settings.trusted_signing_keys)
    if problem is None:
        backup = replace(backup, authenticated=True)
    return backup, problem


def is_trusted(settings: Settings, backup: BackupRef) -> bool:
    """A trusted key signed `backup` (code in it may then run as the objects' owners);
    never because of --allow-unsigned."""
    return (bool(settings.trusted_signing_keys)
            and why_untrusted(backup, settings.trusted_signing_keys) is None)


def authenticate(backup: BackupRef, trusted: Sequence[str]) -> None:
    """Raise VerificationError (exit 8) unless a trusted key vouches for `backup`."""
    problem = why_untrusted(backup, trusted)
    if problem is not None:
        raise VerificationError(f"refusing {backup.location}: {problem}; nothing was restored "
                                "and none of it ran (restore a backup your server signed, or "
                                "pass --allow-unsigned)")


def authenticity_warnings(settings: Settings, backups: list[BackupRef], *,
                          refuse: bool = True, allow_unsigned: bool = False) -> list[str]:
    """Refuse (exit 8) a backup no trusted key signed, or one when no key is trusted at all,
    unless `allow_unsigned`: then warn once that authenticity was not checked."""
    untrusted = [backup for backup in backups
                 if not settings.trusted_signing_keys
                 or why_untrusted(backup, settings.trusted_signing_keys) is not None]
    if not untrusted:
        return []
    if allow_unsigned:
        return [UNCHECKED]
    if not refuse:
        return []
    if not settings.trusted_signing_keys:
        raise VerificationError(f"refusing {untrusted[0].location}: {NO_KEY}; nothing was "
                                f"restored and none of it ran ({ALLOW})")
    for backup in untrusted:
        authenticate(backup, settings.trusted_signing_keys)
    return []


class TrustedCatalog(Catalog):
    """The catalog as restore, verify and the runner checks see it: with TRUSTED_SIGNING_KEYS,
    `latest` passes over every backup no trusted key signed (a planted backup is never it)."""

    def __init__(self, settings: Settings, *, now: datetime | None = None,
                 allow_unsigned: bool = False) -> None:
        super().__init__(settings, now=now)
        self._allow_unsigned = allow_unsigned

    def vouch(self, backup: BackupRef) -> tuple[BackupRef, str | None]:
        vouched, problem = trust(self._settings, backup)
        return vouched, None if self._allow_unsigned else problem
