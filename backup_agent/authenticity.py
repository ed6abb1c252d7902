"""Is this backup the one our server made? A trusted signature over its manifest says so.

The manifest names the backup and holds the SHA-256 of its bytes, and the server signs the
manifest (SIGNING_KEY_FILE). A backup is trusted when one of TRUSTED_SIGNING_KEYS signed
these exact manifest bytes, the manifest names this backup, and its `.sha256` agrees: the
proof then checks the bytes against that SHA-256 before anything runs.
"""

from __future__ import annotations

from collections.abc import Sequence

from backup_agent.model.backup import BackupRef
from backup_agent.model.errors import VerificationError
from backup_agent.signing import signer


def why_untrusted(backup: BackupRef, trusted: Sequence[str]) -> str | None:
    """Return why `backup` (details loaded) cannot be trusted, or None when it can."""
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


def authenticate(backup: BackupRef, trusted: Sequence[str]) -> None:
    """Raise VerificationError (exit 8) unless a trusted key vouches for `backup`."""
    problem = why_untrusted(backup, trusted)
    if problem is not None:
        raise VerificationError(f"refusing {backup.location}: {problem}; nothing was restored "
                                "and none of it ran (restore a backup your server signed)")
