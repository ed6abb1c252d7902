"""What a signed backup's superuser-only statements may not leave behind while it is built.

The admin runs a trusted backup's superuser-only statements (casts, C and internal
functions, foreign tables, user mappings). Their own code never runs as the admin, but what
they create can hand the dump's code a superuser's reach during the build:
- a cast between two built-in types is called by every query of the database that converts
  one to the other, the agent's own (run as the restoring superuser) included;
- a LANGUAGE internal function is a built-in's C code under a new name, with the new
  name's privileges: another name for `be_lo_export` is lo_export without its REVOKE;
- a user mapping may waive the password (postgres_fdw's password_required): the builder's
  COPY into a foreign table would connect as any role of any server, this one included;
  mappings are created after the build, once the builder is gone;
- a foreign partition's bound is evaluated, and the parent's default partition scanned,
  while it is created: the builder (which owns the parent and may use every server)
  creates it, and one it may not create is refused.

Every query here names its operators and functions in pg_catalog and casts nothing to text:
the admin's session runs with whatever search_path the dump set, beside the builder's
operators and the dump's casts.
"""

from __future__ import annotations

from collections.abc import Sequence

from backup_agent.restoring.routes import function_language

# Objects made by initdb have OIDs below this (FirstNormalObjectId).
_FIRST_NORMAL_OID = "'16384'::pg_catalog.oid"
BUILT_IN_CASTS_SQL = (
    "SELECT pg_catalog.format('%s -> %s', c.castsource::pg_catalog.regtype, "
    "c.casttarget::pg_catalog.regtype) FROM pg_catalog.pg_cast c "
    f"WHERE c.oid OPERATOR(pg_catalog.>=) {_FIRST_NORMAL_OID} "
    f"AND c.castsource OPERATOR(pg_catalog.<) {_FIRST_NORMAL_OID} "
    f"AND c.casttarget OPERATOR(pg_catalog.<) {_FIRST_NORMAL_OID} "
    "AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid "
    "OPERATOR(pg_catalog.=) 'pg_catalog.pg_cast'::pg_catalog.regclass AND d.objid "
    "OPERATOR(pg_catalog.=) c.oid AND d.deptype OPERATOR(pg_catalog.=) 'e')").encode()
ALIASED_BUILT_INS_SQL = (
    "SELECT pg_catalog.format('%s AS %L', p.oid::pg_catalog.regprocedure, p.prosrc) "
    "FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_language l ON l.oid "
    "OPERATOR(pg_catalog.=) p.prolang WHERE l.lanname OPERATOR(pg_catalog.=) 'internal' "
    f"AND p.oid OPERATOR(pg_catalog.>=) {_FIRST_NORMAL_OID} AND EXISTS (SELECT 1 FROM "
    f"pg_catalog.pg_proc b WHERE b.oid OPERATOR(pg_catalog.<) {_FIRST_NORMAL_OID} "
    "AND b.prolang OPERATOR(pg_catalog.=) p.prolang "
    "AND b.prosrc OPERATOR(pg_catalog.=) p.prosrc AND NOT "
    "pg_catalog.has_function_privilege('public', b.oid, 'EXECUTE'))").encode()


# Functions of this database the restoring user owns outside pg_catalog and extensions
# (operators named in pg_catalog, no cast to text).
ADMIN_FUNCTIONS_SQL = (
    b"SELECT pg_catalog.format('%s', p.oid::pg_catalog.regprocedure) FROM pg_catalog.pg_proc "
    b"p JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) p.pronamespace WHERE "
    b"p.proowner OPERATOR(pg_catalog.=) (SELECT oid FROM pg_catalog.pg_roles WHERE rolname "
    b"OPERATOR(pg_catalog.=) CURRENT_USER) AND n.nspname OPERATOR(pg_catalog.<>) "
    b"'pg_catalog' AND n.nspname OPERATOR(pg_catalog.<>) 'information_schema' AND NOT "
    b"EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid OPERATOR(pg_catalog.=) "
    b"'pg_catalog.pg_proc'::pg_catalog.regclass AND d.objid OPERATOR(pg_catalog.=) p.oid "
    b"AND d.deptype OPERATOR(pg_catalog.=) 'e')")


def kind(parts: Sequence[str]) -> tuple[str, ...]:
    """The statement's first three words, upper case."""
    return tuple(part.upper() for part in parts[:3])


def is_user_mapping(parts: Sequence[str]) -> bool:
    return kind(parts)[:3] in (("CREATE", "USER", "MAPPING"), ("ALTER", "USER", "MAPPING"))


def is_foreign_partition(parts: Sequence[str]) -> bool:
    """CREATE FOREIGN TABLE ... PARTITION OF ..."""
    upper = [part.upper() for part in parts]
    return upper[:3] == ["CREATE", "FOREIGN", "TABLE"] and any(
        upper[index:index + 2] == ["PARTITION", "OF"] for index in range(len(upper)))


def problem_query(parts: Sequence[str]) -> tuple[bytes, str] | None:
    """The query whose rows name what this superuser-only statement may not have made, and
    why; None when it can make nothing of the kind."""
    upper = kind(parts)
    if upper[:2] == ("CREATE", "CAST"):
        return BUILT_IN_CASTS_SQL, (
            "a cast between two built-in types ({found}): every query converting one to the "
            "other would call it, the restoring superuser's own included")
    if function_language(parts) is not None:
        return ALIASED_BUILT_INS_SQL, (
            "a LANGUAGE internal function that is another name for a built-in only some "
            "roles may execute ({found}): it would execute without that guard")
    return None
