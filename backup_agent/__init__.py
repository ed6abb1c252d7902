"""backup-agent: PostgreSQL backups to local disk and S3 that are never silently broken."""

__version__ = "0.1.0"
