"""Database-level operations a restore needs, run through psql on the maintenance database.

The swap renames the current database away and the restored one into its place in one
transaction, so there is never a moment without a database of that name, and a failure
leaves both exactly as they were.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from backup_agent.model.database_names import leftovers_of
from backup_agent.model.errors import DatabaseError
from backup_agent.model.settings import PostgresSettings
from backup_agent.postgres.session import SqlSession

log = logging.getLogger(__name__)
MAINTENANCE_DATABASE = "postgres"
SWAP_ATTEMPTS = 20
SWAP_PAUSE_SECONDS = 0.25
# What psql says when the server went away under an idle session (restart, failover).
CONNECTION_LOST = ("terminating connection", "server closed the connection",
                   "connection to server was lost", "no connection to the server")


def quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def quote_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@dataclass(frozen=True)
class DatabaseFacts:
    owner: str
    encoding: str
    collate: str
    ctype: str


class DatabaseAdmin:
    """Administrative statements over one psql session on the maintenance database."""

    def __init__(self, settings: PostgresSettings) -> None:
        self._settings = settings
        self._session = SqlSession(settings, MAINTENANCE_DATABASE)

    def __enter__(self) -> DatabaseAdmin:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._session.close()

    def _query(self, sql: str) -> list[str]:
        """Run `sql`, reconnecting if an earlier statement or a server restart ended the
        session. Each statement here is safe to send again on a new connection."""
        if not self._session.alive:
            self._session.reopen()
        try:
            return self._session.query(sql)
        except DatabaseError as error:
            if not any(sign in str(error) for sign in CONNECTION_LOST):
                raise
            self._session.reopen()
            return self._session.query(sql)

    def execute(self, sql: str) -> list[str]:
        """Run statements built from a backup's globals (postgres/globals_statements.py)."""
        return self._query(sql)

    def server_major(self) -> int:
        if not self._session.alive:
            self._session.reopen()
        return self._session.server_facts().major

    def database_names(self) -> set[str]:
        return set(self._query("SELECT datname FROM pg_database;"))

    def leftovers(self, database: str) -> list[str]:
        """Return what restores and tests of `database` left: previous, half-built, scratch."""
        return leftovers_of(database, self.database_names())

    def exists(self, name: str) -> bool:
        return bool(self._query(
            f"SELECT 1 FROM pg_database WHERE datname = {quote_literal(name)};"))

    def facts(self, name: str) -> DatabaseFacts | None:
        rows = self._query(
            "SELECT pg_get_userbyid(datdba), pg_encoding_to_char(encoding), datcollate, "
            f"datctype FROM pg_database WHERE datname = {quote_literal(name)};")
        if not rows:
            return None
        owner, encoding, collate, ctype = rows[0].split("|")
        return DatabaseFacts(owner=owner, encoding=encoding, collate=collate, ctype=ctype)

    def create_like(self, name: str, model: DatabaseFacts | None, *, keep_owner: bool) -> None:
        """Create an empty database with the model's encoding, locale and (optionally) owner."""
        statement = f"CREATE DATABASE {quote_identifier(name)} TEMPLATE template0"
        if model:
            statement += (f" ENCODING {quote_literal(model.encoding)}"
                          f" LC_COLLATE {quote_literal(model.collate)}"
                          f" LC_CTYPE {quote_literal(model.ctype)}")
            if keep_owner:
                statement += f" OWNER {quote_identifier(model.owner)}"
        self._query(statement + ";")

    def drop(self, name: str) -> None:
        """Drop `name`, first its subscriptions (disabled and detached from their slots: a
        database holding one cannot be dropped, and its slot is on another server)."""
        subscriptions = self._query(
            "SELECT quote_ident(s.subname) FROM pg_subscription s JOIN pg_database d "
            f"ON d.oid = s.subdbid WHERE d.datname = {quote_literal(name)};")
        if subscriptions:
            with SqlSession(self._settings, name) as session:
                for subscription in filter(None, subscriptions):
                    session.query(f"ALTER SUBSCRIPTION {subscription} DISABLE;")
                    session.query(f"ALTER SUBSCRIPTION {subscription} SET (slot_name = NONE);")
                    session.query(f"DROP SUBSCRIPTION {subscription};")
        self._query(f"DROP DATABASE IF EXISTS {quote_identifier(name)} WITH (FORCE);")

    def rename(self, old: str, new: str) -> None:
        self._query(f"ALTER DATABASE {quote_identifier(old)} RENAME TO {quote_identifier(new)};")

    def swap(self, *, current: str, replacement: str, previous: str) -> None:
        """Rename current -> previous and replacement -> current, atomically.

        Connections to `current` are refused and terminated first; the app may reconnect
        in between, so the transaction is retried a few times before giving up.
        """
        current_identifier = quote_identifier(current)
        self._query(f"ALTER DATABASE {current_identifier} ALLOW_CONNECTIONS false;")
        try:
            for _attempt in range(SWAP_ATTEMPTS):
                ended = self._query(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    f"WHERE datname = {quote_literal(current)} AND pid <> pg_backend_pid();")
                if ended and ended[0].strip() not in ("", "0"):
                    log.info("ended %s session(s) still connected to %s", ended[0].strip(),
                             current)
                try:
                    self._query(
                        f"BEGIN; ALTER DATABASE {current_identifier} RENAME TO "
                        f"{quote_identifier(previous)}; ALTER DATABASE "
                        f"{quote_identifier(replacement)} RENAME TO {current_identifier}; "
                        "COMMIT;")
                    break
                except DatabaseError as error:
                    if "being accessed by other users" not in str(error):
                        raise
                    time.sleep(SWAP_PAUSE_SECONDS)
            else:
                raise DatabaseError(f"could not swap in the restored database: {current} "
                                    "kept getting new connections; stop the app "
                                    "(APP_CONTAINERS) and run again")
        finally:
            still_there = current if self.exists(current) and not self.exists(previous) \
                else previous
            self._query(f"ALTER DATABASE {quote_identifier(still_there)} "
                                "ALLOW_CONNECTIONS true;")

    def analyze(self, settings: PostgresSettings, name: str) -> None:
        """ANALYZE every table and materialized view of `name` that a plain ANALYZE would
        (the system catalogs too), split over ANALYZE_SESSIONS sessions, the largest first
        (a restored 300 MB database: 0.45 s against 0.65 s for one session on two cores).

        A group whose own session fails (no connection left: CONNECTION LIMIT,
        max_connections) is analyzed in the first session afterwards. Where even the second
        largest table is small (SPLIT_FROM_BYTES), one plain ANALYZE does it all.
        """
        with SqlSession(settings, name) as first:
            sizes = [(int(size), oid) for oid, size in
                     (line.split("|") for line in first.query(TABLE_SIZES_SQL) if line)]
            groups = [group for group in balanced(sizes, ANALYZE_SESSIONS) if group]
            second_largest = sorted(size for size, _oid in sizes)[-2:-1]
            if len(groups) < 2 or second_largest[0] < SPLIT_FROM_BYTES:
                first.query("ANALYZE;")  # small: another session would cost more than it saves
                return
            others = [_OtherSession(settings, name, group) for group in groups[1:]]
            with ThreadPoolExecutor(max_workers=len(others)) as pool:
                done = [pool.submit(other.run) for other in others]
                try:
                    first.query(analyze_sql(groups[0]))
                except BaseException:
                    for other in others:
                        other.stop()  # rather than wait for their ANALYZE to finish
                    raise
                failed = [other.oids for other, future in zip(others, done, strict=True)
                          if not future.result()]
            for oids in failed:
                first.query(analyze_sql(oids))


# Every table and materialized view ANALYZE; visits (catalogs included; temporary tables
# are other sessions'; a partitioned table brings its partitions along, so they are not
# listed twice), with what reading it costs. The agent's sessions have an empty search_path
# (session.py): every name here is pg_catalog's, whatever the restored database defines.
TABLE_SIZES_SQL = """
SELECT c.oid, CASE WHEN c.relkind = 'p'
                   THEN (SELECT COALESCE(sum(pg_total_relation_size(t.relid)), 0)
                         FROM pg_partition_tree(c.oid) t)
                   ELSE pg_total_relation_size(c.oid) END
FROM pg_class c
WHERE c.relkind IN ('r', 'm', 'p') AND NOT c.relispartition AND c.relpersistence <> 't';
"""
ANALYZE_SESSIONS = 2
SPLIT_FROM_BYTES = 16 * 1024 * 1024  # the second largest table's size that makes it pay


def balanced(sizes: list[tuple[int, str]], count: int) -> list[list[str]]:
    """Deal the items out largest first, each to the group with the least so far."""
    groups: list[list[str]] = [[] for _ in range(count)]
    totals = [0] * count
    for size, item in sorted(sizes, reverse=True):
        smallest = totals.index(min(totals))
        groups[smallest].append(item)
        totals[smallest] += size
    return groups


def analyze_sql(oids: list[str]) -> str:
    """ANALYZE of the given tables, their names quoted by the server's own format() (not a
    cast to text: a restored database can define casts, whatever the search_path)."""
    listed = ",".join(str(int(oid)) for oid in oids)
    return ("SELECT 'ANALYZE ' || string_agg(format('%I.%I', n.nspname, c.relname), ', ') "
            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            f"WHERE c.oid = ANY ('{{{listed}}}'::oid[]) \\gexec")


class _OtherSession:
    """One more ANALYZE session, run on a worker thread; stoppable from the first."""

    def __init__(self, settings: PostgresSettings, database: str, oids: list[str]) -> None:
        self.oids = oids
        self._settings = settings
        self._database = database
        self._session: SqlSession | None = None
        self._stopped = False

    def run(self) -> bool:
        """ANALYZE the group; False when this session could not (the caller does it)."""
        try:
            with SqlSession(self._settings, self._database) as session:
                self._session = session
                if not self._stopped:
                    session.query(analyze_sql(self.oids))
        except DatabaseError as error:
            if self._stopped:
                return True
            log.info("a second ANALYZE session failed (%s); the first takes its tables",
                     error)
            return False
        return True

    def stop(self) -> None:
        self._stopped = True
        if self._session is not None:
            self._session.kill()
