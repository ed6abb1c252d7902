"""Physical backups: base backups, and recovery of a whole cluster to a moment."""
