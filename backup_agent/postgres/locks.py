"""Who holds the lock a backup gave up waiting for: asked of the server when the wait ran out.

The backup only ever takes ACCESS SHARE locks (pg_dump's LOCK TABLE, the row counts), and
only ACCESS EXCLUSIVE conflicts with those: a migration's ALTER TABLE, a VACUUM FULL, a
LOCK TABLE. By the time the timeout fires our waiting query is gone, so pg_blocking_pids()
has no one to ask about; the holders are the sessions with such a lock granted in this
database.
"""

from __future__ import annotations

from dataclasses import dataclass

from backup_agent.model.errors import BackupAgentError, DatabaseError
from backup_agent.model.settings import PostgresSettings
from backup_agent.postgres.diagnosis import LockTimeoutError
from backup_agent.postgres.session import SqlSession

# application_name last: it is the one free-text column, and may hold the separator.
HOLDERS_SQL = """
SELECT a.pid, extract(epoch FROM now() - coalesce(a.xact_start, a.backend_start))::bigint,
       l.relation::regclass, coalesce(a.state, 'unknown'), coalesce(a.usename, ''),
       coalesce(a.application_name, '')
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.granted AND l.locktype = 'relation' AND l.mode = 'AccessExclusiveLock'
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND a.pid <> pg_backend_pid()
ORDER BY a.xact_start NULLS LAST, a.pid;
"""


@dataclass(frozen=True)
class LockHolder:
    pid: int
    held_seconds: int  # since its transaction began: it has held the lock at most that long
    relation: str
    state: str  # e.g. "idle in transaction"
    user: str
    application: str

    def describe(self) -> str:
        application = f"application {self.application!r}" if self.application \
            else "no application_name"
        return (f"pid {self.pid} (user {self.user}, {application}, {self.state}, in a "
                f"transaction for {self.held_seconds}s)")


def lock_holders(settings: PostgresSettings) -> list[LockHolder]:
    """Return the sessions holding an ACCESS EXCLUSIVE lock on a table of the database."""
    holders = []
    with SqlSession(settings, settings.database) as session:
        for line in session.query(HOLDERS_SQL):
            pid, seconds, relation, state, user, application = line.split("|", 5)
            holders.append(LockHolder(pid=int(pid), held_seconds=int(seconds),
                                      relation=relation, state=state, user=user,
                                      application=application))
    return holders


def name_lock_holders(settings: PostgresSettings, error: LockTimeoutError) -> DatabaseError:
    """Return `error` with the session(s) holding the lock named, and how to end them."""
    try:
        holders = lock_holders(settings)
    except BackupAgentError:
        return error  # the lookup is a courtesy: the timeout itself is the news
    if not holders:
        return DatabaseError(f"{error}; the lock was released meanwhile, so run again")
    first = holders[0]
    tables = sorted({holder.relation for holder in holders})
    others = f" and {len(holders) - 1} other session(s)" if len(holders) > 1 else ""
    return DatabaseError(
        f"{error.details['waited']} on {', '.join(tables)}: held by {first.describe()}"
        f"{others}; no backup was written. Let it finish, end it (SELECT "
        f"pg_terminate_backend({first.pid})), or raise LOCK_WAIT_TIMEOUT")
