"""The catalog: which backups there are, locally and in S3, the one "latest complete", what an
operator's name, path or s3:// URL resolves to, and which local backups retention may delete."""

from backup_agent.catalog.backups import LATEST, Catalog, Listing

__all__ = ["LATEST", "Catalog", "Listing"]
