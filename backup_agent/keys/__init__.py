"""Keys: the age identities that open backups, the signatures that vouch for them, and the
one trust check (a backup is trusted when a key in TRUSTED_SIGNING_KEYS signed it)."""
