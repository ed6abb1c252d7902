"""The failure behaviour table: scenario -> what the agent does -> exit code.

The README's "Failure behaviour" table must list exactly these rows (a test checks it),
and every fault test asserts its exit code through `expect`.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass


@dataclass(frozen=True)
class Behaviour:
    scenario: str
    outcome: str
    exit_code: int


TABLE = {row.scenario: row for row in (
    # backup
    Behaviour("pg_dump killed mid-stream (SIGKILL)",
              "no backup file, temp removed, nothing pruned, names the signal", 3),
    Behaviour("pg_dump exits non-zero after writing output",
              "no backup file, nothing pruned, pg_dump's error shown", 3),
    Behaviour("PostgreSQL restarted during the dump",
              "no backup file, nothing pruned", 3),
    Behaviour("dump without its closing 'dump complete' line",
              "no backup file, nothing pruned", 3),
    Behaviour("a migration holds a table lock (ACCESS EXCLUSIVE) the dump needs",
              "gives up after LOCK_WAIT_TIMEOUT naming the holder (pid, user, application, "
              "how long); no backup file, nothing pruned", 3),
    Behaviour("the database host accepts connections and never answers",
              "gives up after PGCONNECT_TIMEOUT; no backup file, nothing pruned", 3),
    Behaviour("SIGTERM or SIGINT mid-dump",
              "pg_dump stopped, temp removed, lock released, nothing published", 130),
    Behaviour("SIGTERM during the S3 upload (it runs while the dump streams)",
              "multipart upload aborted (no object); a backup not yet published locally is "
              "removed, one already published stays; nothing pruned", 130),
    Behaviour("disk full while writing",
              "no partial file, nothing pruned, names the directory", 4),
    Behaviour("S3 endpoint unreachable", "local backup kept, nothing pruned", 5),
    Behaviour("S3 answers 500/503 to some requests",
              "retried with backoff, backup succeeds", 0),
    Behaviour("S3 fails for good mid-multipart",
              "upload aborted, no visible object, local backup kept", 5),
    Behaviour("wrong AWS credentials (403)", "local backup kept, names the key to check", 5),
    Behaviour("access denied by the IAM policy (403)", "local backup kept", 5),
    Behaviour("bucket missing", "local backup kept, names the bucket", 5),
    Behaviour("clock skew (RequestTimeTooSkewed)", "local backup kept, says fix the clock", 5),
    Behaviour("an object already at the backup's S3 key (planted, or another agent's)",
              "never overwritten (create-only writes); local backup kept, nothing pruned", 5),
    Behaviour("a second run while one is running", "refused at once, nothing touched", 6),
    Behaviour("a run after one was killed (stale lock and temp file)",
              "lock recovered, temp file removed, backup made", 0),
    Behaviour("corrupt or incomplete backups among the kept ones",
              "never counted towards KEEP_LOCAL, never deleted (left for inspection, with a "
              "warning); the newest good ones are kept", 0),
    # restore
    Behaviour("bit flip, truncation, wrong or missing .sha256, replaced S3 object",
              "refused; database untouched", 8),
    Behaviour("psql fails halfway through the SQL",
              "original database intact, half-built one dropped", 10),
    Behaviour("PostgreSQL restarted during the restore",
              "original database intact, half-built one dropped", 10),
    Behaviour("SIGTERM during the restore",
              "original database intact, half-built one dropped, containers started", 130),
    Behaviour("a container that will not stop",
              "original database intact, the others started again", 10),
    Behaviour("not gzip, gzip but not a dump, empty file, one huge line",
              "refused; database untouched", 8),
    Behaviour("s3:// URL for another bucket or with '..', path outside BACKUP_DIR",
              "refused before reading anything", 2),
    Behaviour("encrypted backup without --identity, or with a key it was not encrypted to",
              "refused before any database is created", 2),
    Behaviour("encrypted backup changed (even with its .sha256 rewritten to match), or "
              "decrypting with a key the manifest does not name",
              "age authentication fails; refused; database untouched", 8),
    # restore safety: a backup is untrusted input until it is proven
    Behaviour("a backup holding what pg_dump never writes (psql meta-commands, COPY TO "
              "PROGRAM, DROP DATABASE, roles), damaged or consistently rewritten",
              "refused, naming the line, before any of it runs; database untouched", 8),
    Behaviour("a backup no trusted key signed (TRUSTED_SIGNING_KEYS, the server's own "
              "SIGNING_KEY_FILE), or any backup where no key is trusted",
              "refused before it is read, naming --allow-unsigned; `latest` passes over it", 8),
    Behaviour("--no-verify on bytes that are not a whole dump",
              "refused before anything is swapped in; database untouched", 8),
    Behaviour("a backup name dated in the future (planted)",
              "ignored by latest, status, the freshness check and retention, with a warning",
              0),
    Behaviour("BACKUP_DIR writable by other users, or not the agent's",
              "refused, with the fix (chmod 700)", 4),
)}


def expect(result: subprocess.CompletedProcess[str] | int, scenario: str) -> None:
    """Assert the exit code the table promises for `scenario`."""
    code = result if isinstance(result, int) else result.returncode
    detail = "" if isinstance(result, int) else result.stderr
    assert code == TABLE[scenario].exit_code, f"{scenario}: exit {code}\n{detail}"
