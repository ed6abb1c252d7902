"""Can a restore run here? `doctor` asks before a disaster does.

A restore connects itself (no psql runs): as the restoring user, then as a throwaway builder
role that logs in with a password. So the checks are exactly those connections: the agent
reaches the server (in docker mode through POSTGRES_HOST: a published port or the
container's mounted socket directory), its user may create roles, and pg_hba.conf lets a
new role log in with a password from here. The probe role lives for a minute at most and is
dropped at once; it is never granted anything.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from backup_agent.model.errors import DatabaseError
from backup_agent.model.settings import PostgresSettings
from backup_agent.postgres.admin import quote_identifier
from backup_agent.postgres.diagnosis import describe_server
from backup_agent.restoring.build import BUILDER_PREFIX, create_login_role, reachable
from backup_agent.restoring.sessions import Login, StatementFailed, opened

PROBE_WINDOW = timedelta(minutes=1)
INSUFFICIENT_PRIVILEGE = "42501"


def probe_restore_login(settings: PostgresSettings) -> str:
    """Log in as the restoring user and as a new builder-like role; say how, or raise."""
    reachable(settings)
    role = f"{BUILDER_PREFIX}{secrets.token_hex(6)}"
    password = secrets.token_urlsafe(32)
    database = settings.database
    with opened("admin", settings, database, Login(settings.user, settings.password)) as admin:
        try:
            create_login_role(admin, role, password, PROBE_WINDOW)
        except StatementFailed as failed:
            if failed.sqlstate == INSUFFICIENT_PRIVILEGE:
                raise DatabaseError(f"{settings.user} may not create roles ({failed}): a "
                                    "restore builds as a role of its own; restore as a "
                                    "superuser (POSTGRES_USER)") from None
            raise DatabaseError(f"could not create a probe role: {failed}") from None
        quoted = quote_identifier(role)
        try:
            # A restore's builder connects to a new database, which PUBLIC may connect to;
            # this one may have revoked that (a hardened production database).
            admin.run(f"GRANT CONNECT ON DATABASE {quote_identifier(database)} TO {quoted};"
                      .encode(), 0)
            with opened("builder", settings, database, Login(role, password)):
                pass
        finally:
            # Never able to log in again, even if it cannot be dropped (a production login
            # event trigger made it own something): then doctor fails, naming it.
            admin.run(f"ALTER ROLE {quoted} NOLOGIN PASSWORD NULL VALID UNTIL '-infinity';"
                      .encode(), 0)
            admin.run(f"REVOKE ALL ON DATABASE {quote_identifier(database)} FROM {quoted};"
                      .encode(), 0)
            admin.run(f"DROP ROLE IF EXISTS {quoted};".encode(), 0)
        superuser = admin.query_column(b"SELECT rolsuper FROM pg_catalog.pg_roles WHERE "
                                       b"rolname OPERATOR(pg_catalog.=) CURRENT_USER")[0]
    owners = ("" if superuser == "True" else
              f"; {settings.user} is not a superuser, so only `restore --no-owner` can run "
              "(everything then owned by it)")
    return (f"a restore reaches {describe_server(settings)} as {settings.user}, and a role "
            f"of its own can log in there with a password{owners}")
