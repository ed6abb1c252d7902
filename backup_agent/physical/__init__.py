"""Physical backups: pg_basebackup streamed as one tar, and recovery of a whole cluster to a
moment."""
