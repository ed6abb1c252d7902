"""Physical backups: pg_basebackup streamed as one tar, what it says about itself."""
