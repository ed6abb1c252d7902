"""Create the roles a backup needs and the server lacks; never change or drop one it has.

All of it runs in one transaction, so a restore either creates every missing role (with
its memberships, comment and settings) or none. Roles that exist are left exactly as they
are, and how they differ from the backup's record is listed instead.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from backup_agent.model.cluster_globals import ClusterGlobals, Role
from backup_agent.model.errors import DatabaseError
from backup_agent.postgres.admin import DatabaseAdmin, quote_identifier
from backup_agent.postgres.globals_statements import (
    SAFE_MEMBERSHIPS,
    WITHHELD_ATTRIBUTES,
    create_role,
    grant_membership,
)

EXISTING_ROLES_SQL = """
SELECT COALESCE(pg_catalog.json_object_agg(rolname, pg_catalog.json_build_object(
    'superuser', rolsuper, 'inherit', rolinherit, 'createrole', rolcreaterole,
    'createdb', rolcreatedb, 'login', rolcanlogin, 'replication', rolreplication,
    'bypassrls', rolbypassrls, 'connection_limit', rolconnlimit)), '{}'::json)::text
FROM pg_catalog.pg_roles;
"""
COMPARED = ("superuser", "inherit", "createrole", "createdb", "login", "replication",
            "bypassrls", "connection_limit")
MEMBERSHIPS_SQL = """
SELECT COALESCE(pg_catalog.json_agg(pg_catalog.json_build_array(
    pg_catalog.pg_get_userbyid(roleid), pg_catalog.pg_get_userbyid(member))), '[]'::json)::text
FROM pg_catalog.pg_auth_members;
"""


@dataclass
class RolesOutcome:
    created: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # withheld, differing, left alone


def existing_roles(admin: DatabaseAdmin) -> dict[str, dict[str, object]]:
    loaded = json.loads(admin.execute(EXISTING_ROLES_SQL)[0])
    return dict(loaded)


def _differences(role: Role, existing: dict[str, object]) -> list[str]:
    return [attribute.replace("_", " ") for attribute in COMPARED
            if getattr(role, attribute) != existing.get(attribute)]


def create_missing_roles(admin: DatabaseAdmin, cluster: ClusterGlobals, server_major: int,
                         contexts: Mapping[str, str], *, for_test: bool = False,
                         trusted: bool = True) -> RolesOutcome:
    """Create the roles (and their memberships) the server lacks, in one transaction.

    `for_test`: for a restore test's scratch database, so NOLOGIN and without a password:
    a role dropped on the live server must never be able to log in again, even briefly.
    Not `trusted` (the globals file has no trusted signature): NOLOGIN, no password, no
    CREATEROLE, CREATEDB or BYPASSRLS; what was withheld is listed to grant by hand."""
    outcome = RolesOutcome()
    existing = existing_roles(admin)
    statements: list[str] = []
    for role in cluster.roles:
        if role.name in existing:
            differs = _differences(role, existing[role.name])
            if differs and not for_test:
                outcome.notes.append(f"role {role.name} exists and differs from the backup's "
                                     f"({', '.join(differs)}): left as it is")
            continue
        if for_test:
            role = replace(role, login=False, password=None, valid_until=None, settings=())
        elif not trusted:
            outcome.notes += _withheld_unsigned(role)
            role = replace(role, login=False, password=None, createrole=False,
                           createdb=False, bypassrls=False)
        role_statements, left_out = create_role(role, contexts)
        statements += role_statements
        outcome.created.append(role.name)
        outcome.notes += [f"left out {item}" for item in left_out]
        withheld = [attribute.upper() for attribute in WITHHELD_ATTRIBUTES
                    if getattr(role, attribute)]
        if withheld and not for_test:
            outcome.notes.append(f"created role {role.name} without {' and '.join(withheld)} "
                                 "(a restore never grants them): ALTER ROLE "
                                 f"{quote_identifier(role.name)} {' '.join(withheld)}; "
                                 "if it needs them")
        if role.login and role.password is None and not for_test:
            outcome.notes.append(f"created login role {role.name} without a password (the "
                                 "backup holds none): ALTER ROLE ... PASSWORD before it "
                                 "logs in")
    present = {tuple(pair) for pair in json.loads(admin.execute(MEMBERSHIPS_SQL)[0])}
    created = set(outcome.created)
    for membership in cluster.memberships:
        if (membership.role, membership.member) in present:
            continue
        if membership.member in created and (membership.role in created
                                             or membership.role in SAFE_MEMBERSHIPS):
            statements.append(grant_membership(membership, server_major))
        elif not for_test:
            outcome.notes.append(f"did not make {membership.member} a member of "
                                 f"{membership.role} (a restore grants memberships only "
                                 "between roles it created, never in an existing or "
                                 "powerful role): GRANT it by hand if it should be")
    if statements:
        admin.execute("BEGIN;\n" + "\n".join(statements) + "\nCOMMIT;")
    return outcome


def _withheld_unsigned(role: Role) -> list[str]:
    withheld = [word for word, present in (("LOGIN", role.login), ("CREATEROLE", role.createrole),
                                           ("CREATEDB", role.createdb),
                                           ("BYPASSRLS", role.bypassrls)) if present]
    if role.password is not None:
        withheld.append("its password")
    if not withheld:
        return []
    return [f"created role {role.name} without {', '.join(withheld)} (the backup is not "
            f"signed by a trusted key): ALTER ROLE {quote_identifier(role.name)} ...; by hand "
            "if it should have them"]


def drop_created_roles(admin: DatabaseAdmin, names: list[str]) -> list[str]:
    """Drop roles this restore created (after a failure); return those that would not go."""
    kept = []
    for name in reversed(names):
        try:
            admin.execute(f"DROP ROLE IF EXISTS {quote_identifier(name)};")
        except DatabaseError:  # it gained dependencies meanwhile: say so, go on
            kept.append(name)
    return kept
