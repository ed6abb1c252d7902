"""pg_amcheck over a restored cluster: is every table and B-tree index intact and readable
with this machine's binaries and collation library (an index sorted by another glibc's
collation fails here, not in production)?"""

from __future__ import annotations

import subprocess

from backup_agent import execute
from backup_agent.physical.commands import ENVIRONMENT, make_amcheck_command, session_options
from backup_agent.physical.server import PrivateServer

PASSED = "passed"
UNAVAILABLE = "unavailable"
# The whole cluster's tables and indexes are read: hours for a big one, never unbounded.
TIMEOUT_SECONDS = 6 * 3600
# The databases pg_amcheck --all checks.
DATABASES_SQL = ("SELECT array_agg(datname::text) FROM pg_database "
                 "WHERE datallowconn AND datconnlimit <> -2")
# pg_amcheck calls `<amcheck's schema>.bt_index_check(index := c.oid, ...)` as the
# superuser. amcheck installed where others may create functions (`public`, by a DBA with
# the default search_path) lets an application's own `bt_index_check(index oid, ...)`
# match better than the extension's (regclass) and run as the superuser here, on the
# runner: moved into pg_catalog first, where only a superuser creates anything.
INTO_CATALOG_SQL = """DO $$ BEGIN
  IF EXISTS (SELECT FROM pg_catalog.pg_extension WHERE extname = 'amcheck'
             AND extnamespace <> 'pg_catalog'::pg_catalog.regnamespace) THEN
    ALTER EXTENSION amcheck SET SCHEMA pg_catalog;
  END IF;
END $$"""


def amcheck(server: PrivateServer) -> str:
    """Return `passed`, `failed: <its first complaint>`, or `unavailable: <why>` when these
    binaries do not ship the amcheck extension."""
    available = server.query("SELECT count(*) FROM pg_available_extensions "
                             "WHERE name = 'amcheck'")
    if not available or not available[0]:
        return (f"{UNAVAILABLE}: these PostgreSQL binaries have no amcheck extension (contrib); "
                "install it (the postgres images have it)")
    problem = _prepare_databases(server)
    if problem is not None:
        return f"failed: {problem}"
    # The agent's session options (event triggers and preload libraries off) for each of
    # its connections: a role's or database's settings in the restored cluster come after
    # the server's command line, never after a client's.
    try:
        completed = execute.run(make_amcheck_command(server.bin_directory,
                                                     server.client_arguments()),
                                environment={**ENVIRONMENT,
                                             "PGOPTIONS": session_options(server.major)},
                                timeout=TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        return f"failed: pg_amcheck did not finish within {TIMEOUT_SECONDS // 3600} hours"
    if completed.returncode == 0:
        return PASSED
    complaint = (completed.stdout.strip() or completed.stderr.strip()
                 or f"pg_amcheck exited {completed.returncode}").splitlines()[0]
    return f"failed: {complaint[:300]}"


def _prepare_databases(server: PrivateServer) -> str | None:
    """In every database pg_amcheck checks, roll back the transactions left prepared (they
    survive recovery with their locks: an ACCESS EXCLUSIVE one would hold pg_amcheck for
    its whole timeout) and move amcheck into pg_catalog; return why not, or None."""
    import psycopg
    row = server.query(DATABASES_SQL)
    for database in (row[0] if row and row[0] else []):
        try:
            with server.connect_to(database) as connection:
                server.rollback_prepared(connection)
                connection.execute(INTO_CATALOG_SQL)
        except psycopg.Error as error:
            return f"could not ready database {database!r} for pg_amcheck: {error}"
    return None
