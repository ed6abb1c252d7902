"""Issue 21, second review: a signed backup's code reaching past the database being built
while it is restored.

A backup signed by a trusted key may hold code that runs as the owners it names once it is
restored (README); while it is restored, that code runs only as the builder and must not
reach the restoring superuser, other databases, roles or files. Each attack below is planted
in an otherwise genuine backup and signed with a key the agent trusts (the attacker holds
the server's signing key), then restored with the real CLI:

  1. a login event trigger (PostgreSQL 17+), created last, fires in the agent's own
     sessions on the restore test's scratch database (row counts, fingerprint), as the
     restoring superuser;
  2. a cast between two built-in types (regprocedure -> text, json -> text), created by the
     admin from a signed backup, is called by the agent's own queries as the superuser;
  3. `SET search_path = public, pg_catalog` (a SET the statement rules allow) puts the
     builder's `=` on oids before pg_catalog's in the admin's session, where the agent's own
     query after each superuser-only statement compares oids;
  4. a user mapping that waives the password (password_required 'false'), created by the
     admin, lets the builder's COPY into a postgres_fdw foreign table write into another
     database of the server as the superuser;
  5. a LANGUAGE internal function aliasing a built-in whose only guard is its privileges
     (be_lo_export): the builder may call it, and writes files as the server's system user;
  6. a foreign partition's bound, evaluated while the admin creates the table (the first
     review's hole 1), still runs as the superuser when the backup is signed.

And one with only the bucket writer's key (unsigned, restored with --allow-unsigned):

  7. CREATE TEXT SEARCH TEMPLATE, the admin's, wires one dictionary's init to another's
     lexize: the builder's CHECK crashes the server, ending every session of every database.

Nothing outside the database may change, no program may start.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from testbed.postgres import PostgresServer
from tests.attacks import (
    Bed,
    Outside,
    Planted,
    assert_nothing_outside_changed,
    before_first_schema,
    escalating_body,
    invocation,
    review_fixtures,
)
from tests.conftest import run_agent

SEED = "atkr2_seed"
PRODUCTION = "atkr2_prod"
BYSTANDER = "atkr2_bystander"
COPY_NAME = f"{PRODUCTION}_copy"
markers_root, markers, bed, world = review_fixtures("atkr2")


@pytest.fixture(scope="module")
def signing_key(bed: Bed, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The server's signing key, in the attacker's hands: (private key file, public key)."""
    key = tmp_path_factory.mktemp("stolen-signing-key") / "signing.pem"
    result = run_agent(["keygen", "--signing", str(key)], bed.environment)
    assert result.returncode == 0, result.stderr
    return key, result.stdout.strip().splitlines()[-1]


def functions(body: str, superuser: str) -> str:
    """The backup's code (the builder creates it): a volatile function doing superuser
    things, an immutable wrapper, each given to the superuser at the end as pg_dump
    writes it (so no object is left to the builder)."""
    return (f"CREATE FUNCTION public.atk_act() RETURNS void LANGUAGE plpgsql\n"
            f"    AS $$ {body} $$;\n"
            "CREATE FUNCTION public.atk_ok(integer) RETURNS integer LANGUAGE plpgsql\n"
            "    IMMUTABLE AS $$ BEGIN PERFORM public.atk_act(); RETURN $1; END $$;\n"
            f"ALTER FUNCTION public.atk_act() OWNER TO {superuser};\n"
            f"ALTER FUNCTION public.atk_ok(integer) OWNER TO {superuser};\n")


def signed_run(bed: Bed, tmp_path: Path, key: tuple[Path, str], attack: str,
               entry: str = "target-db") -> tuple[list[str], dict[str, str]]:
    """Plant `attack`, sign the rewritten manifest with the stolen key; the agent's
    arguments and environment (the key trusted, no --allow-unsigned)."""
    from backup_agent.keys.signing import load_signing_key, sign

    planted: Planted = bed.plant(tmp_path, before_first_schema(attack.encode()))
    manifest = (planted.directory / f"{planted.name}.manifest.json").read_bytes()
    (planted.directory / f"{planted.name}.sig").write_bytes(
        sign(load_signing_key(key[0]), manifest))
    path = str(planted.directory / planted.name)
    arguments = {"target-db": ["restore", path, "--target-db", COPY_NAME, "--yes"],
                 "restore-test": ["verify", path, "--restore-test"]}[entry]
    return arguments, bed.env_for(planted, TRUSTED_SIGNING_KEYS=key[1])


def assert_signed(result_stderr: str) -> None:
    assert "not signed" not in result_stderr and "TRUSTED_SIGNING_KEYS" not in result_stderr, \
        f"the planted backup was not taken as signed: {result_stderr[-2000:]}"


# 1. A login event trigger fires in the agent's own sessions

def test_a_login_event_trigger_never_runs_in_the_agents_own_sessions(
        bed: Bed, world: Outside, markers: Path, tmp_path: Path,
        signing_key: tuple[Path, str]) -> None:
    """Event triggers are created last, after the builder is gone; a `login` one then fires
    for every connection to the database, as whoever connects: the restore test's row
    counts and fingerprint connect as the restoring superuser."""
    body = escalating_body(markers / "program-ran", bed.server.user, swallow=True)
    attack = (f"CREATE FUNCTION public.atk_login() RETURNS event_trigger LANGUAGE plpgsql\n"
              f"    AS $$ {body} $$;\n"
              "CREATE EVENT TRIGGER atk_login ON login\n"
              "   EXECUTE FUNCTION public.atk_login();\n"
              f"ALTER FUNCTION public.atk_login() OWNER TO {bed.server.user};\n")
    arguments, environment = signed_run(bed, tmp_path, signing_key, attack, "restore-test")
    result = run_agent(arguments, environment)
    assert_signed(result.stderr + result.stdout)
    # The planted function and trigger are not in the backup's fingerprint: 8 is expected.
    assert_nothing_outside_changed(bed.server, world, result, markers, codes={0, 8})


# 2. Casts between built-in types, created by the admin from a signed backup

CAST_ATTACKS = {
    # ADMIN_FUNCTIONS_SQL (`p.oid::regprocedure::text`) runs after every superuser-only
    # statement of a signed backup; the LEAKPROOF function gives it a row to cast.
    "regprocedure": (
        "CREATE FUNCTION public.atk_cast(pg_catalog.regprocedure) RETURNS pg_catalog.text\n"
        "    LANGUAGE plpgsql AS $$ BEGIN PERFORM public.atk_act();\n"
        "    RETURN pg_catalog.format('%s', $1); END $$;\n"
        "CREATE CAST (pg_catalog.regprocedure AS pg_catalog.text)\n"
        "    WITH FUNCTION public.atk_cast(pg_catalog.regprocedure);\n"
        "CREATE FUNCTION public.atk_leak(integer) RETURNS integer LANGUAGE sql LEAKPROOF\n"
        "    AS $$SELECT 1$$;\n"
        "ALTER FUNCTION public.atk_cast(pg_catalog.regprocedure) OWNER TO {superuser};\n"
        "ALTER FUNCTION public.atk_leak(integer) OWNER TO {superuser};\n",
        "target-db"),
    # The restore test's fingerprint (`json_build_object(...)::text`): the first review's
    # hole 3, with a signature.
    "json": (
        "CREATE FUNCTION public.atk_cast(pg_catalog.json) RETURNS pg_catalog.text\n"
        "    LANGUAGE plpgsql IMMUTABLE AS $$ BEGIN PERFORM public.atk_act();\n"
        "    RETURN pg_catalog.to_jsonb($1)::pg_catalog.text; END $$;\n"
        "ALTER FUNCTION public.atk_cast(pg_catalog.json) OWNER TO {superuser};\n"
        "CREATE CAST (pg_catalog.json AS pg_catalog.text)\n"
        "    WITH FUNCTION public.atk_cast(pg_catalog.json);\n",
        "restore-test"),
}


@pytest.mark.parametrize("cast", sorted(CAST_ATTACKS))
def test_a_cast_between_built_in_types_never_runs_in_the_agents_own_queries(
        cast: str, bed: Bed, world: Outside, markers: Path, tmp_path: Path,
        signing_key: tuple[Path, str]) -> None:
    body = escalating_body(markers / "program-ran", bed.server.user, swallow=True)
    sql, entry = CAST_ATTACKS[cast]
    attack = functions(body, bed.server.user) + sql.format(superuser=bed.server.user)
    arguments, environment = signed_run(bed, tmp_path, signing_key, attack, entry)
    result = run_agent(arguments, environment)
    assert_signed(result.stderr + result.stdout)
    assert_nothing_outside_changed(bed.server, world, result, markers, codes={8, 10},
                                   may_create_databases={COPY_NAME})


# 3. The dump's search_path in the admin's session, and the agent's own query

def test_the_builders_operator_never_runs_in_the_agents_own_queries(
        bed: Bed, world: Outside, markers: Path, tmp_path: Path,
        signing_key: tuple[Path, str]) -> None:
    """`SET search_path = public, pg_catalog` runs in both sessions (pg_dump before 10.3
    wrote it); pg_catalog listed second is searched second, so the builder's
    `public.=(oid, oid)` is the one the agent's ADMIN_FUNCTIONS_SQL calls, as the admin."""
    body = escalating_body(markers / "program-ran", bed.server.user, swallow=True)
    attack = (functions(body, bed.server.user)
              + "CREATE FUNCTION public.atk_eq(pg_catalog.oid, pg_catalog.oid)\n"
              "    RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS $$ BEGIN\n"
              "    PERFORM public.atk_act(); RETURN $1 OPERATOR(pg_catalog.=) $2; END $$;\n"
              "CREATE OPERATOR public.= (LEFTARG = pg_catalog.oid, RIGHTARG = pg_catalog.oid,\n"
              "    FUNCTION = public.atk_eq);\n"
              f"ALTER FUNCTION public.atk_eq(pg_catalog.oid, pg_catalog.oid) OWNER TO "
              f"{bed.server.user};\n"
              f"ALTER OPERATOR public.= (pg_catalog.oid, pg_catalog.oid) OWNER TO "
              f"{bed.server.user};\n"
              "SET search_path = public, pg_catalog;\n"
              "CREATE FUNCTION public.atk_leak(integer) RETURNS integer LANGUAGE sql\n"
              "    LEAKPROOF AS $$SELECT 1$$;\n"
              f"ALTER FUNCTION public.atk_leak(integer) OWNER TO {bed.server.user};\n"
              "SELECT pg_catalog.set_config('search_path', '', false);\n")
    arguments, environment = signed_run(bed, tmp_path, signing_key, attack)
    result = run_agent(arguments, environment)
    assert_signed(result.stderr + result.stdout)
    assert_nothing_outside_changed(bed.server, world, result, markers, codes={0, 8, 10},
                                   may_create_databases={COPY_NAME})


# 4. A user mapping that waives the password, used by the builder

def test_a_user_mapping_never_lets_the_build_write_into_another_database(
        bed: Bed, world: Outside, markers: Path, tmp_path: Path,
        signing_key: tuple[Path, str]) -> None:
    """postgres_fdw to the server's own socket as its superuser; `password_required 'false'`
    is the admin's to set, and the mapping FOR PUBLIC serves the builder too. pg_dump's
    COPY ... FROM stdin into the builder's partitioned table routes the row to the foreign
    partition (whose own privileges are not checked): it is inserted into the bystander
    database, as the superuser."""
    sockets = bed.server.data_directory.parent / "socket"
    attack = ("CREATE EXTENSION IF NOT EXISTS postgres_fdw WITH SCHEMA public;\n"
              "CREATE SERVER atk_loop FOREIGN DATA WRAPPER postgres_fdw\n"
              f"    OPTIONS (host '{sockets}', port '{bed.server.port}', "
              f"dbname '{BYSTANDER}');\n"
              "CREATE USER MAPPING FOR PUBLIC SERVER atk_loop\n"
              f"    OPTIONS (\"user\" '{bed.server.user}', password_required 'false');\n"
              "CREATE TABLE public.atk_parent (message text) PARTITION BY LIST (message);\n"
              "CREATE FOREIGN TABLE public.atk_remote PARTITION OF public.atk_parent\n"
              "    FOR VALUES IN ('written by the build') SERVER atk_loop\n"
              "    OPTIONS (schema_name 'audit', table_name 'events');\n"
              f"ALTER SERVER atk_loop OWNER TO {bed.server.user};\n"
              f"ALTER TABLE public.atk_parent OWNER TO {bed.server.user};\n"
              f"ALTER FOREIGN TABLE public.atk_remote OWNER TO {bed.server.user};\n"
              "COPY public.atk_parent (message) FROM stdin;\nwritten by the build\n\\.\n\n")
    arguments, environment = signed_run(bed, tmp_path, signing_key, attack)
    result = run_agent(arguments, environment)
    assert_signed(result.stderr + result.stdout)
    assert_nothing_outside_changed(bed.server, world, result, markers, codes={8, 10},
                                   may_create_databases={COPY_NAME})


# 5. LANGUAGE internal: another name for a built-in guarded only by its privileges

def test_an_internal_function_never_aliases_a_guarded_built_in(
        bed: Bed, world: Outside, markers: Path, tmp_path: Path,
        signing_key: tuple[Path, str]) -> None:
    """pg_catalog.lo_export is EXECUTE-revoked from PUBLIC; `LANGUAGE internal AS
    'be_lo_export'` is the same C code under a new name, executable by PUBLIC (the admin
    creates it: internal is not a trusted language). The builder's CHECK then writes a
    file anywhere the server's system user may (postgresql.auto.conf too)."""
    marker = markers / "written-by-the-server"
    body = (f"DECLARE o oid; BEGIN o := pg_catalog.lo_from_bytea(0, "
            f"pg_catalog.convert_to('planted', 'UTF8')); "
            f"PERFORM public.atk_export(o, '{marker}'); "
            f"PERFORM pg_catalog.lo_unlink(o); END")
    attack = ("CREATE FUNCTION public.atk_export(pg_catalog.oid, pg_catalog.text)\n"
              "    RETURNS integer LANGUAGE internal STRICT AS $$be_lo_export$$;\n"
              f"ALTER FUNCTION public.atk_export(pg_catalog.oid, pg_catalog.text) OWNER TO "
              f"{bed.server.user};\n"
              + functions(body, bed.server.user)
              + "CREATE TABLE public.atk_t (x integer CHECK (public.atk_ok(x) > 0));\n"
              f"ALTER TABLE public.atk_t OWNER TO {bed.server.user};\n"
              "COPY public.atk_t (x) FROM stdin;\n1\n\\.\n\n")
    arguments, environment = signed_run(bed, tmp_path, signing_key, attack)
    result = run_agent(arguments, environment)
    assert_signed(result.stderr + result.stdout)
    assert_nothing_outside_changed(bed.server, world, result, markers, codes={8, 10},
                                   may_create_databases={COPY_NAME})


# 6. The first review's hole 1, signed

def test_a_signed_foreign_partitions_bound_runs_no_code_as_the_restoring_superuser(
        bed: Bed, world: Outside, markers: Path, tmp_path: Path,
        signing_key: tuple[Path, str]) -> None:
    """Foreign tables are the admin's to create from a signed backup (file_fdw's options
    need a superuser); the bound is evaluated while it creates one."""
    body = escalating_body(markers / "program-ran", bed.server.user, swallow=True)
    attack = (functions(body, bed.server.user)
              + "CREATE EXTENSION IF NOT EXISTS file_fdw WITH SCHEMA public;\n"
              "CREATE SERVER atk_files FOREIGN DATA WRAPPER file_fdw;\n"
              "CREATE TABLE public.atk_p (x integer) PARTITION BY LIST (x);\n"
              "CREATE FOREIGN TABLE public.atk_fp PARTITION OF public.atk_p\n"
              "    FOR VALUES IN (public.atk_ok(1)) SERVER atk_files\n"
              "    OPTIONS (filename '/dev/null');\n"
              f"ALTER TABLE public.atk_p OWNER TO {bed.server.user};\n"
              f"ALTER FOREIGN TABLE public.atk_fp OWNER TO {bed.server.user};\n")
    arguments, environment = signed_run(bed, tmp_path, signing_key, attack)
    result = run_agent(arguments, environment)
    assert_signed(result.stderr + result.stdout)
    assert_nothing_outside_changed(bed.server, world, result, markers, codes={8, 10},
                                   may_create_databases={COPY_NAME})


# 7. Unsigned: a text search template wires two built-ins that do not belong together

def test_an_unsigned_text_search_template_never_crashes_the_server(
        bed: Bed, world: Outside, markers: Path, tmp_path: Path) -> None:
    """CREATE TEXT SEARCH TEMPLATE is the admin's, even from an unsigned backup (its grammar
    holds no expression): any two built-ins of the right signatures will do, so one
    dictionary's init and another's lexize. The builder's CHECK then calls the lexize on
    the wrong state: the server's process crashes, and the postmaster ends every session
    of every database to recover (another crash could be worse than a restart)."""
    import psycopg

    attack = ("CREATE TEXT SEARCH TEMPLATE public.atk_template (INIT = dsimple_init,\n"
              "    LEXIZE = thesaurus_lexize);\n"
              "CREATE TEXT SEARCH DICTIONARY public.atk_dictionary\n"
              "    (TEMPLATE = public.atk_template);\n"
              "CREATE TABLE public.atk_t (x text CHECK (pg_catalog.ts_lexize(\n"
              "    'public.atk_dictionary'::pg_catalog.regdictionary, x) IS NULL));\n"
              "COPY public.atk_t (x) FROM stdin;\nword\n\\.\n\n")
    planted = bed.plant(tmp_path, before_first_schema(attack.encode()))
    arguments, environment = invocation("target-db", bed, planted, None)
    server = bed.server
    with psycopg.connect(host=server.host, port=server.port, user=server.user,
                         password=server.password, dbname=BYSTANDER) as bystander:
        result = run_agent(arguments, environment)
        try:
            bystander.execute("SELECT 1")
        except psycopg.OperationalError as error:
            recovered(server)
            pytest.fail(f"a session of another database was ended ({error}): the server "
                        f"crashed\nexit {result.returncode}: {result.stderr[-2000:]}")
    assert_nothing_outside_changed(server, world, result, markers, codes={8, 10},
                                   may_create_databases={COPY_NAME})


def recovered(server: PostgresServer) -> None:
    """Wait for the server's crash recovery, so that the tests after this one can run."""
    import time

    import psycopg

    for _ in range(120):
        try:
            psycopg.connect(host=server.host, port=server.port, user=server.user,
                            password=server.password, dbname="postgres").close()
            return
        except psycopg.OperationalError:
            time.sleep(0.5)


# 8. Signed: a C function is any library's code, callable by the builder (held)

def test_a_signed_c_function_never_gives_the_build_a_superuser_connection(
        bed: Bed, world: Outside, markers: Path, tmp_path: Path,
        signing_key: tuple[Path, str]) -> None:
    """dblink's C code under new names: dblink_connect_u differs from dblink_connect only by
    SECURITY DEFINER (owned by a superuser), so the alias, the builder's while it builds,
    checks the builder and wants a password. (An alias of C code guarded by privileges
    alone, as LANGUAGE internal's be_lo_export above, is not refused for LANGUAGE c.)"""
    sockets = bed.server.data_directory.parent / "socket"
    connection = (f"host={sockets} port={bed.server.port} user={bed.server.user} "
                  "dbname=postgres")
    body = (f"BEGIN PERFORM public.atk_connect('atk', '{connection}'); "
            f"PERFORM public.atk_exec('atk', 'CREATE ROLE atk_evil SUPERUSER LOGIN'); END")
    attack = ("CREATE FUNCTION public.atk_connect(pg_catalog.text, pg_catalog.text)\n"
              "    RETURNS pg_catalog.text LANGUAGE c STRICT\n"
              "    AS '$libdir/dblink', 'dblink_connect_u';\n"
              "CREATE FUNCTION public.atk_exec(pg_catalog.text, pg_catalog.text)\n"
              "    RETURNS pg_catalog.text LANGUAGE c STRICT\n"
              "    AS '$libdir/dblink', 'dblink_exec';\n"
              f"ALTER FUNCTION public.atk_connect(pg_catalog.text, pg_catalog.text) OWNER TO "
              f"{bed.server.user};\n"
              f"ALTER FUNCTION public.atk_exec(pg_catalog.text, pg_catalog.text) OWNER TO "
              f"{bed.server.user};\n"
              + functions(body, bed.server.user)
              + "CREATE TABLE public.atk_t (x integer CHECK (public.atk_ok(x) > 0));\n"
              f"ALTER TABLE public.atk_t OWNER TO {bed.server.user};\n"
              "COPY public.atk_t (x) FROM stdin;\n1\n\\.\n\n")
    arguments, environment = signed_run(bed, tmp_path, signing_key, attack)
    result = run_agent(arguments, environment)
    assert_signed(result.stderr + result.stdout)
    assert_nothing_outside_changed(bed.server, world, result, markers, codes={8, 10},
                                   may_create_databases={COPY_NAME})
