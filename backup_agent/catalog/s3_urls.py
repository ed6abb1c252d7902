"""An s3:// URL an operator gives: accepted only for a backup under S3_BUCKET/S3_PREFIX."""

from __future__ import annotations

from backup_agent.model.errors import ConfigurationError
from backup_agent.model.naming import created_at

S3_SCHEME = "s3://"


def parse_s3_url(url: str, configured_bucket: str | None,
                 prefix: str = "") -> tuple[str, str]:
    """Return (bucket, key) of an s3:// URL that names a backup under S3_BUCKET/S3_PREFIX."""
    bucket, _, key = url.removeprefix(S3_SCHEME).partition("/")
    url = url if url.isprintable() else repr(url)  # errors stay one line
    if not bucket or not key:
        raise ConfigurationError(f"{url} is not an s3://BUCKET/KEY URL")
    if not configured_bucket:
        raise ConfigurationError(f"{url} is in no configured bucket: set S3_BUCKET to the "
                                 "bucket that holds your backups")
    if not key.startswith(prefix):
        raise ConfigurationError(f"{url} is not under S3_PREFIX {prefix!r}: restore only "
                                 "the agent's backups (or change S3_PREFIX)")
    if bucket != configured_bucket:
        raise ConfigurationError(f"{url} is not in the configured bucket {configured_bucket}: "
                                 "restore only from S3_BUCKET (or change S3_BUCKET)")
    if any(part in ("", ".", "..") for part in key.split("/")):
        raise ConfigurationError(f"{url} has an empty, '.' or '..' path segment: give the key "
                                 "exactly as `backup-agent list s3` prints it")
    if created_at(key.rsplit("/", 1)[-1]) is None:
        raise ConfigurationError(f"{url} does not name a backup "
                                 "(…/db_backup_YYYYMMDD_HHMMSS.sql.gz): see `backup-agent list s3`")
    return bucket, key
