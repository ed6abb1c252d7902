"""How long the lifecycle keeps each kind of object under the backup prefix.

The agent's layout under the prefix (its S3_PREFIX):
- dumps and their sidecars at `YYYY/MM/db_backup_...` (the guide's layout;
  backup_agent/model/naming.py `s3_key`);
- base backups at `base/<system identifier>/<stamp>/...` (tar, descriptor, signature);
- WAL at `wal/<system identifier>/<timeline>/<segment or NNNNNNNN.history>`;
- doctor's probes at `.backup-agent-doctor/`.

When rules overlap, S3 applies the earliest expiration (userguide/lifecycle-conflicts.html),
and a filter is a key prefix with no "except". So no rule that also covers `wal/` may expire
sooner than WAL: dumps get a rule of their own (`<prefix>20`, every year of this century),
and the rule for the whole prefix, which catches everything else and is what `backup-agent
doctor` finds for the prefix, keeps objects as long as WAL.
"""

from __future__ import annotations

import pulumi_aws as aws
from stack_settings import StackSettings

DUMPS = "20"  # the first digits of `YYYY/`: the dump rule must not reach wal/ or base/
BASE_BACKUPS = "base/"
WAL = "wal/"

Rule = aws.s3.BucketLifecycleConfigurationRuleArgsDict


def lifecycle_rules(settings: StackSettings) -> list[Rule]:
    """Return the lifecycle rules for the backup prefix.

    Every expiring rule also deletes noncurrent versions and aborts incomplete multipart
    uploads, with the same days for all. S3 does not allow `days` and
    `expired_object_delete_marker` in one expiration, so the delete-marker clean-up is a
    rule of its own.
    """
    prefix = settings.backup_prefix

    def expiring(rule_id: str, key_prefix: str, days: int) -> Rule:
        return {
            "id": rule_id,
            "status": "Enabled",
            "filter": {"prefix": key_prefix},
            "expiration": {"days": days},
            "noncurrent_version_expiration": {
                "noncurrent_days": settings.noncurrent_retention_days},
            "abort_incomplete_multipart_upload": {
                "days_after_initiation": settings.abort_multipart_days},
        }

    return [
        expiring("ExpireOldDumps", prefix + DUMPS, settings.retention_days),
        expiring("ExpireOldBaseBackups", prefix + BASE_BACKUPS, settings.retention_days),
        expiring("ExpireOldWal", prefix + WAL, settings.wal_retention_days),
        expiring("ExpireEverythingAtTheLatest", prefix, settings.wal_retention_days),
        {
            "id": "RemoveExpiredDeleteMarkers",
            "status": "Enabled",
            "filter": {"prefix": prefix},
            "expiration": {"expired_object_delete_marker": True},
        },
    ]
