"""What `wal setup` changes on the server, as data: each step's check, its SQL, or its hint.

One query reads everything the WAL stream needs; `plan` turns the answer into steps, each
either already so, SQL the agent can run (`--yes`), or something only a human can do (a
pg_hba.conf line, a restart). Nothing here decides to apply: the action does.
"""

from __future__ import annotations

from dataclasses import dataclass

from backup_agent.model.wal_setup import SetupStep
from backup_agent.postgres.admin import quote_identifier, quote_literal
from backup_agent.postgres.session import SqlSession


@dataclass(frozen=True)
class ServerSetup:
    role_exists: bool
    replication: bool  # the role may open replication connections (or is a superuser)
    wal_level: str
    max_wal_senders: int
    slot_keep: str  # max_slot_wal_keep_size as shown ("-1": unlimited)
    can_switch: bool  # the role may execute pg_switch_wal()
    slot_state: str  # "" (no such slot), active, inactive, lost
    major: int  # the server's major version
    port: int  # the port the server listens on (inside its container, in docker mode)

    @property
    def slot_exists(self) -> bool:
        return bool(self.slot_state)


def inspect(session: SqlSession, role: str, slot: str) -> ServerSetup:
    """Read what the stream needs from the server, for `role` and `slot`."""
    rows = [row for row in session.query(
        "SELECT coalesce(r.rolreplication OR r.rolsuper, false), current_setting('wal_level'), "
        "current_setting('max_wal_senders'), current_setting('max_slot_wal_keep_size'), "
        "coalesce(has_function_privilege(r.oid, 'pg_catalog.pg_switch_wal()', 'EXECUTE'), "
        "false), coalesce((SELECT CASE WHEN s.wal_status = 'lost' THEN 'lost' WHEN s.active "
        "THEN 'active' ELSE 'inactive' END FROM pg_catalog.pg_replication_slots s "
        f"WHERE s.slot_name = {quote_literal(slot)}), ''), r.oid IS NOT NULL, "
        "current_setting('server_version_num')::int / 10000, current_setting('port') "
        "FROM (SELECT 1) AS one LEFT JOIN "
        f"pg_catalog.pg_roles r ON r.rolname = {quote_literal(role)};") if row]
    replication, level, senders, keep, switch, slot_state, exists, major, port = (
        rows[0].split("|"))
    return ServerSetup(role_exists=exists == "t", replication=replication == "t",
                       wal_level=level, max_wal_senders=int(senders), slot_keep=keep,
                       can_switch=switch == "t", slot_state=slot_state, major=int(major),
                       port=int(port))


def client_network(session: SqlSession) -> str | None:
    """Return this machine's address as the server sees it, as a network (None: a local
    socket)."""
    address = session.query("SELECT host(inet_client_addr());")[0].strip()
    if not address:
        return None
    return f"{address}/{128 if ':' in address else 32}"


def plan(server: ServerSetup, role: str, slot: str, slot_keep: str,
         network: str | None, database: str, *, receiver: str = "this machine") -> list[SetupStep]:
    """Return every step, done or not, in the order they must happen; `network` is where
    the receiver connects from (None: the local socket)."""
    name = quote_identifier(role)
    hba = (f"host  replication  {role}  {network}  scram-sha-256" if network
           else f"local  replication  {role}  scram-sha-256")
    return [
        SetupStep(f"wal_level is {server.wal_level}" + (": it must be replica or logical (a "
                  "restart)" if server.wal_level == "minimal" else ""),
                  server.wal_level == "minimal",
                  hint="ALTER SYSTEM SET wal_level = 'replica'; then restart PostgreSQL"),
        SetupStep(f"max_wal_senders is {server.max_wal_senders}" + (": the stream needs one "
                  "sender (a restart)" if server.max_wal_senders < 1 else ""),
                  server.max_wal_senders < 1,
                  hint="ALTER SYSTEM SET max_wal_senders = 10; then restart PostgreSQL"),
        SetupStep(f"role {role} may open replication connections (REPLICATION)",
                  not server.replication, (f"ALTER ROLE {name} REPLICATION;",)),
        SetupStep(f"role {role} may call pg_switch_wal() in database {database} (the RPO's "
                  "forced switch; the stream's session connects there)",
                  not server.can_switch,
                  (f"GRANT EXECUTE ON FUNCTION pg_catalog.pg_switch_wal() TO {name};",)),
        SetupStep(f"max_slot_wal_keep_size is {server.slot_keep}: cap what the slot holds "
                  f"back at {slot_keep}, so an agent or S3 down for long costs the slot, "
                  "never the database's disk", server.slot_keep == "-1",
                  (f"ALTER SYSTEM SET max_slot_wal_keep_size = {quote_literal(slot_keep)};",
                   "SELECT pg_catalog.pg_reload_conf();")),
        SetupStep(f"physical replication slot {slot}, reserving WAL from now on",
                  not server.slot_exists,
                  (f"SELECT pg_catalog.pg_create_physical_replication_slot("
                   f"{quote_literal(slot)}, true);",)),
        SetupStep(f"pg_hba.conf lets {role} connect for replication from {receiver}",
                  False, hint=f"{hba}   (then SELECT pg_reload_conf();) - `wal stream` "
                              "says so if it is missing", seen=False),
    ]
