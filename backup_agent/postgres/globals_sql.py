"""The queries that read what a database needs from its cluster, and its catalog fingerprint.

Both run in the session whose snapshot pg_dump uses, so they describe the dump exactly. Each
returns one line of JSON built by the server itself (no parsing of psql's columns).

The roles a database uses are found through pg_shdepend, PostgreSQL's own record of which
role owns or holds a privilege on each object (that is what stops DROP ROLE): owners, ACL
grantees, policy roles, the database's owner and grantees, and roles with settings in the
database. Then every member of those roles, transitively (an application often logs in as
a member of a group that holds the grants) - but never upwards again, so another
database's roles never come along, and not through PostgreSQL 16's implicit grant to a
role's creator (INHERIT FALSE and SET FALSE: it confers nothing here). Built-in roles (OIDs
below 16384: the bootstrap superuser and the pg_* roles) exist on every server and are
never carried; memberships in pg_* roles are, and the bootstrap superuser's name is
recorded (pg_dump writes `OWNER TO` it).
"""

from __future__ import annotations

FIRST_USER_OID = 16384  # FirstNormalObjectId: below it, roles initdb made

USED_ROLES_CTE = f"""
WITH RECURSIVE db AS (SELECT oid, datdba FROM pg_catalog.pg_database
                      WHERE datname = pg_catalog.current_database()),
direct(role) AS (
    SELECT d.refobjid FROM pg_catalog.pg_shdepend d, db
    WHERE d.refclassid = 'pg_catalog.pg_authid'::pg_catalog.regclass
      AND (d.dbid = db.oid OR (d.dbid = 0 AND d.objid = db.oid
           AND d.classid = 'pg_catalog.pg_database'::pg_catalog.regclass))
    UNION SELECT datdba FROM db
    UNION SELECT s.setrole FROM pg_catalog.pg_db_role_setting s, db
    WHERE s.setdatabase = db.oid AND s.setrole <> 0),
down(role) AS (SELECT role FROM direct
    UNION SELECT m.member FROM pg_catalog.pg_auth_members m JOIN down ON m.roleid = down.role
    WHERE {{conferring}}),
used AS (SELECT r.* FROM pg_catalog.pg_roles r
         WHERE r.oid IN (SELECT role FROM down) AND r.oid >= {FIRST_USER_OID})
"""


def used_roles_cte(server_major: int) -> str:
    conferring = "(m.inherit_option OR m.set_option)" if server_major >= 16 else "true"
    return USED_ROLES_CTE.format(conferring=conferring)


# Readable only by superusers (pg_authid): asked first, so the query below never fails.
CAN_READ_PASSWORDS_SQL = \
    "SELECT pg_catalog.has_table_privilege('pg_catalog.pg_authid', 'SELECT');"


def _membership_options(server_major: int) -> str:
    if server_major >= 16:
        return "'inherit', a.inherit_option, 'set', a.set_option"
    return "'inherit', NULL, 'set', NULL"


def _locale_columns(server_major: int) -> str:
    locale = "d.datlocale" if server_major >= 17 else \
        "d.daticulocale" if server_major >= 15 else "NULL"
    provider = "d.datlocprovider" if server_major >= 15 else "'c'"
    rules = "d.daticurules" if server_major >= 16 else "NULL"
    return f"'locale_provider', {provider}, 'locale', {locale}, 'icu_rules', {rules}"


def database_sql(server_major: int) -> str:
    """The database's own properties: what `pg_dump --create` would write for it."""
    return f"""
SELECT pg_catalog.json_build_object(
    'owner', pg_catalog.pg_get_userbyid(d.datdba),
    'encoding', pg_catalog.pg_encoding_to_char(d.encoding),
    'collate', d.datcollate, 'ctype', d.datctype, {_locale_columns(server_major)},
    'connection_limit', d.datconnlimit,
    'acl', (SELECT pg_catalog.json_agg(pg_catalog.json_build_object(
                'grantee', CASE WHEN a.grantee = 0 THEN NULL
                                ELSE pg_catalog.pg_get_userbyid(a.grantee) END,
                'grantor', pg_catalog.pg_get_userbyid(a.grantor),
                'privilege', a.privilege_type, 'grantable', a.is_grantable) ORDER BY a.n)
            FROM pg_catalog.aclexplode(d.datacl) WITH ORDINALITY AS a(grantor, grantee,
                                                                        privilege_type,
                                                                        is_grantable, n)),
    'comment', pg_catalog.shobj_description(d.oid, 'pg_database'),
    'settings', (SELECT s.setconfig FROM pg_catalog.pg_db_role_setting s
                 WHERE s.setdatabase = d.oid AND s.setrole = 0),
    'role_settings', (SELECT pg_catalog.json_agg(pg_catalog.json_build_object(
                          'role', pg_catalog.pg_get_userbyid(s.setrole),
                          'settings', s.setconfig)
                      ORDER BY pg_catalog.pg_get_userbyid(s.setrole))
                      FROM pg_catalog.pg_db_role_setting s
                      WHERE s.setdatabase = d.oid AND s.setrole <> 0))::text
FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database();
"""


def roles_sql(server_major: int, *, passwords: bool) -> str:
    """The roles the database uses and their memberships, as one JSON object.

    Roles come in the order they were created (by OID), and a restore creates them in that
    order: pg_dump lists a policy's roles in OID order, so the new cluster then dumps the
    same."""
    password = ("(SELECT p.rolpassword FROM pg_catalog.pg_authid p WHERE p.oid = u.oid)"
                if passwords else "NULL")
    return used_roles_cte(server_major) + f"""
SELECT pg_catalog.json_build_object(
    'bootstrap_superuser', pg_catalog.pg_get_userbyid(10),
    'roles', (SELECT COALESCE(pg_catalog.json_agg(pg_catalog.json_build_object(
        'name', u.rolname, 'superuser', u.rolsuper, 'inherit', u.rolinherit,
        'createrole', u.rolcreaterole, 'createdb', u.rolcreatedb, 'login', u.rolcanlogin,
        'replication', u.rolreplication, 'bypassrls', u.rolbypassrls,
        'connection_limit', u.rolconnlimit,
        'valid_until', CASE WHEN pg_catalog.isfinite(u.rolvaliduntil)
                            THEN pg_catalog.to_char(u.rolvaliduntil AT TIME ZONE 'UTC',
                                                    'YYYY-MM-DD HH24:MI:SS.US "+00" AD')
                            ELSE u.rolvaliduntil::text END,
        'password', {password},
        'comment', pg_catalog.shobj_description(u.oid, 'pg_authid'),
        'settings', (SELECT s.setconfig FROM pg_catalog.pg_db_role_setting s
                     WHERE s.setdatabase = 0 AND s.setrole = u.oid))
        ORDER BY u.oid), '[]'::json) FROM used u),
    'memberships', (SELECT COALESCE(pg_catalog.json_agg(
        pg_catalog.json_build_object(
            'role', pg_catalog.pg_get_userbyid(a.roleid),
            'member', pg_catalog.pg_get_userbyid(a.member),
            'admin', a.admin_option, {_membership_options(server_major)})
        ORDER BY pg_catalog.pg_get_userbyid(a.roleid), pg_catalog.pg_get_userbyid(a.member)),
        '[]'::json)
        FROM pg_catalog.pg_auth_members a
        WHERE a.member IN (SELECT oid FROM used)
          AND (a.roleid IN (SELECT oid FROM used)
               OR (a.roleid < {FIRST_USER_OID} AND a.roleid <> 10))))::text;
"""


def used_role_names_sql(server_major: int) -> str:
    return used_roles_cte(server_major) + """
SELECT COALESCE(pg_catalog.json_agg(rolname ORDER BY rolname), '[]'::json)::text
FROM used;
"""


_USER_NAMESPACE = ("n.nspname NOT IN ('pg_catalog', 'information_schema') "
                   "AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'")


def _count(kind: str, source: str) -> str:
    return f"'{kind}', (SELECT pg_catalog.count(*) FROM {source})"


def _acl_entries(table: str, column: str, default: str, owner: str, where: str) -> str:
    """Count the ACL entries of a catalog's objects, their defaults filled in (pg_dump
    leaves out an ACL equal to the default, so a restored object may have NULL there)."""
    return (f"(SELECT pg_catalog.count(*) FROM {table}, pg_catalog.aclexplode("
            f"COALESCE({column}, pg_catalog.acldefault('{default}', {owner}))) "
            f"WHERE {where})")


# The comments pg_dump writes: on objects that still exist (a comment can outlive its object,
# and pg_dump drops it) and that are not an extension's (the extension makes those).
_DUMPED_COMMENTS = (
    f"pg_catalog.pg_description c WHERE c.objoid >= {FIRST_USER_OID} AND "
    "pg_catalog.pg_describe_object(c.classoid, c.objoid, c.objsubid) IS NOT NULL AND "
    "NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e WHERE e.classid = c.classoid AND "
    "e.objid = c.objoid AND e.deptype = 'e')")


def fingerprint_sql() -> str:
    """How many objects of each kind the database holds, and its sequences' positions."""
    relations = ("pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n "
                 "ON n.oid = c.relnamespace WHERE " + _USER_NAMESPACE)
    classes = "pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
    grants = " + ".join([
        _acl_entries(classes, "c.relacl", "r", "c.relowner",
                     f"c.relkind IN ('r', 'p', 'v', 'm', 'f') AND {_USER_NAMESPACE}"),
        _acl_entries(classes, "c.relacl", "s", "c.relowner",
                     f"c.relkind = 'S' AND {_USER_NAMESPACE}"),
        _acl_entries("pg_catalog.pg_namespace n", "n.nspacl", "n", "n.nspowner",
                     _USER_NAMESPACE),
        _acl_entries("pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n "
                     "ON n.oid = p.pronamespace", "p.proacl", "f", "p.proowner",
                     _USER_NAMESPACE),
        _acl_entries("pg_catalog.pg_largeobject_metadata l", "l.lomacl", "L", "l.lomowner",
                     "true"),
        "(SELECT pg_catalog.count(*) FROM pg_catalog.pg_attribute t, "
        "pg_catalog.aclexplode(t.attacl) WHERE t.attacl IS NOT NULL)",
        "(SELECT pg_catalog.count(*) FROM pg_catalog.pg_default_acl a, "
        "pg_catalog.aclexplode(a.defaclacl))",
    ])
    return f"""
SELECT pg_catalog.json_build_object(
    'counts', pg_catalog.json_build_object(
        {_count("tables", relations + " AND c.relkind IN ('r', 'p')")},
        {_count("indexes", relations + " AND c.relkind IN ('i', 'I')")},
        {_count("sequences", relations + " AND c.relkind = 'S'")},
        {_count("views", relations + " AND c.relkind = 'v'")},
        {_count("materialized views", relations + " AND c.relkind = 'm'")},
        {_count("foreign tables", relations + " AND c.relkind = 'f'")},
        {_count("constraints", "pg_catalog.pg_constraint k JOIN pg_catalog.pg_namespace n "
                "ON n.oid = k.connamespace WHERE " + _USER_NAMESPACE)},
        {_count("functions", "pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n "
                "ON n.oid = p.pronamespace WHERE " + _USER_NAMESPACE)},
        {_count("triggers", "pg_catalog.pg_trigger WHERE NOT tgisinternal")},
        {_count("event triggers", "pg_catalog.pg_event_trigger")},
        {_count("policies", "pg_catalog.pg_policy")},
        {_count("rules", "pg_catalog.pg_rewrite r JOIN pg_catalog.pg_class c "
                "ON c.oid = r.ev_class JOIN pg_catalog.pg_namespace n "
                "ON n.oid = c.relnamespace WHERE r.rulename <> '_RETURN' AND "
                + _USER_NAMESPACE)},
        {_count("schemas", "pg_catalog.pg_namespace n WHERE " + _USER_NAMESPACE)},
        {_count("extensions", "pg_catalog.pg_extension")},
        {_count("large objects", "pg_catalog.pg_largeobject_metadata")},
        {_count("comments", _DUMPED_COMMENTS)},
        'grants', {grants}),
    'sequences', (SELECT pg_catalog.json_object_agg(
        pg_catalog.format('%I.%I', s.schemaname, s.sequencename),
        pg_catalog.json_build_array(s.last_value, s.increment_by))
        FROM pg_catalog.pg_sequences s))::text;
"""
