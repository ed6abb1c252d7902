"""Issue 21, reviewed from outside: the seams between the builder and the admin session.

Each attack is planted (with only the bucket writer's key: unsigned, restored with
`--allow-unsigned` where the agent has it) in an otherwise genuine backup of the sample
database. The builder creates what can run code; these statements are routed to the
restoring superuser ("admin") because pg_dump writes them for kinds only a superuser may
create, or because their grammar is thought to hold no expression, yet the server runs code
of the backup for them, as the superuser, or hands the builder a superuser's power:

  1. CREATE FOREIGN TABLE ... PARTITION OF ... FOR VALUES IN (expression): the server
     evaluates the bound while it creates the table, as the admin.
  2. GRANT on the system's own objects (pg_catalog is inside the database being built):
     EXECUTE on lo_export/pg_read_file, SELECT on pg_authid; the builder's code then writes
     files as the server's system user, and the grants stay in the restored database.
  3. CREATE CAST between two built-in types, with a function of the backup: every later
     `json::text` in the agent's own queries (the restore test's catalog fingerprint) calls
     it as the superuser.
  4. file_fdw's `program` option written as a quoted identifier ("program"), which the
     statement check does not see; the admin creates the table (file_fdw lets a superuser
     set it), so reading it (the builder, through a partitioned parent) starts a program.
     And `filename`, never checked: the builder copies a server file into the database.

Nothing outside the database may change, no program may start: exit 8 (refused) or 10.
"""

from __future__ import annotations

from pathlib import Path

from tests.attacks import (
    Bed,
    Outside,
    assert_nothing_outside_changed,
    before_first_schema,
    escalating_body,
    invocation,
    review_fixtures,
)
from tests.conftest import run_agent

SEED = "atkr_seed"
PRODUCTION = "atkr_prod"
BYSTANDER = "atkr_bystander"
COPY_NAME = f"{PRODUCTION}_copy"
markers_root, markers, bed, world = review_fixtures("atkr")


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


def run_planted(bed: Bed, tmp_path: Path, attack: str, entry: str = "target-db"
                ) -> tuple[list[str], dict[str, str]]:
    planted = bed.plant(tmp_path, before_first_schema(attack.encode()))
    return invocation(entry, bed, planted, None)


# 1. A foreign partition's bound, evaluated by the admin

def test_a_foreign_partitions_bound_runs_no_code_as_the_restoring_superuser(
        bed: Bed, world: Outside, markers: Path, tmp_path: Path) -> None:
    """The bound is any variable-free expression and is evaluated while the admin creates
    the table, before the server is even looked up."""
    body = escalating_body(markers / "program-ran", bed.server.user, swallow=False)
    attack = (functions(body, bed.server.user)
              + "CREATE TABLE public.atk_p (x integer) PARTITION BY LIST (x);\n"
              "CREATE FOREIGN TABLE public.atk_fp PARTITION OF public.atk_p\n"
              "    FOR VALUES IN (public.atk_ok(1)) SERVER atk_no_such_server;\n")
    arguments, environment = run_planted(bed, tmp_path, attack)
    result = run_agent(arguments, environment)
    assert_nothing_outside_changed(bed.server, world, result, markers, codes={8, 10},
                                   may_create_databases={COPY_NAME})


# 2. GRANTs on the system's own objects

def test_grants_on_system_functions_give_the_builder_no_superuser_power(
        bed: Bed, world: Outside, markers: Path, tmp_path: Path) -> None:
    """pg_dump writes GRANTs on pg_catalog objects whose privileges were changed; run by
    the admin, they hand the builder (and PUBLIC, after the restore) lo_export: a file
    written anywhere the server's system user may write (postgresql.auto.conf too)."""
    marker = markers / "written-by-the-server"
    body = (f"DECLARE o oid; BEGIN o := pg_catalog.lo_from_bytea(0, "
            f"pg_catalog.convert_to('planted', 'UTF8')); "
            f"PERFORM pg_catalog.lo_export(o, '{marker}'); "
            f"PERFORM pg_catalog.lo_unlink(o); END")
    attack = ("GRANT ALL ON FUNCTION pg_catalog.lo_export(oid, text) TO PUBLIC;\n"
              "GRANT ALL ON FUNCTION pg_catalog.pg_read_file(text) TO PUBLIC;\n"
              "GRANT SELECT ON TABLE pg_catalog.pg_authid TO PUBLIC;\n"
              + functions(body, bed.server.user)
              + "CREATE TABLE public.atk_t (x integer CHECK (public.atk_ok(x) > 0));\n"
              "COPY public.atk_t (x) FROM stdin;\n1\n\\.\n\n")
    arguments, environment = run_planted(bed, tmp_path, attack)
    result = run_agent(arguments, environment)
    try:
        assert_nothing_outside_changed(bed.server, world, result, markers, codes={8, 10},
                                       may_create_databases={COPY_NAME})
    finally:
        if COPY_NAME in bed.server.database_names():
            # What stays behind in a restored database: PUBLIC reads every password hash.
            granted = bed.server.psql(COPY_NAME, (
                "SELECT pg_catalog.has_table_privilege('public', 'pg_catalog.pg_authid', "
                "'SELECT')::text || ' ' || pg_catalog.has_function_privilege('public', "
                "'pg_catalog.lo_export(oid, text)', 'EXECUTE')::text;")).strip()
            assert granted == "false false", f"left in the restored database: {granted}"


# 3. A cast between built-in types, created by the admin

def test_a_cast_the_backup_creates_never_runs_in_the_agents_own_queries(
        bed: Bed, world: Outside, markers: Path, tmp_path: Path) -> None:
    """No pg_cast row exists for json -> text, so a superuser may create one; the restore
    test's fingerprint (`json_build_object(...)::text`) then calls the backup's function as
    the superuser, whatever the search_path. (Each error is swallowed: the fingerprint calls
    it more than once.)"""
    body = escalating_body(markers / "program-ran", bed.server.user, swallow=True)
    attack = (functions(body, bed.server.user)
              + "CREATE FUNCTION public.atk_json_text(pg_catalog.json) RETURNS pg_catalog.text\n"
              "    LANGUAGE plpgsql IMMUTABLE AS $$ BEGIN PERFORM public.atk_act();\n"
              "    RETURN pg_catalog.to_jsonb($1)::pg_catalog.text; END $$;\n"
              f"ALTER FUNCTION public.atk_json_text(pg_catalog.json) OWNER TO "
              f"{bed.server.user};\n"
              "CREATE CAST (pg_catalog.json AS pg_catalog.text)\n"
              "    WITH FUNCTION public.atk_json_text(pg_catalog.json);\n")
    arguments, environment = run_planted(bed, tmp_path, attack, entry="restore-test")
    result = run_agent(arguments, environment)
    assert_nothing_outside_changed(bed.server, world, result, markers, codes={8})


# 4. file_fdw's options, set by the admin

def test_a_quoted_program_option_never_starts_a_program(
        bed: Bed, world: Outside, markers: Path, tmp_path: Path) -> None:
    """`OPTIONS ("program" '...')`: the statement check looks for the word PROGRAM, the
    server folds the quoted name to the same option. The builder reads the foreign table
    through a partitioned table it owns (the partition's own privileges are not checked)."""
    attack = ("CREATE EXTENSION IF NOT EXISTS file_fdw WITH SCHEMA public;\n"
              "CREATE SERVER atk_files FOREIGN DATA WRAPPER file_fdw;\n"
              "CREATE TABLE public.atk_pp (x text) PARTITION BY LIST (x);\n"
              "CREATE FOREIGN TABLE public.atk_ff PARTITION OF public.atk_pp\n"
              "    FOR VALUES IN ('1') SERVER atk_files\n"
              f"    OPTIONS (\"program\" 'touch {markers / 'program-ran'}; echo 1');\n"
              "CREATE MATERIALIZED VIEW public.atk_mv AS\n"
              " SELECT pg_catalog.count(*) AS n FROM public.atk_pp\n  WITH NO DATA;\n"
              "REFRESH MATERIALIZED VIEW public.atk_mv;\n")
    arguments, environment = run_planted(bed, tmp_path, attack)
    result = run_agent(arguments, environment)
    assert_nothing_outside_changed(bed.server, world, result, markers, codes={8, 10},
                                   may_create_databases={COPY_NAME})


def test_a_filename_option_reads_no_server_file_into_the_database(
        bed: Bed, world: Outside, markers: Path, tmp_path: Path) -> None:
    """`OPTIONS (filename '/any/file')`, never checked: the admin may set it, so the builder
    copies any file the server's system user can read (its configuration, its keys,
    /proc/self/environ) into the restored database."""
    secret = markers / "server-secret"
    secret.write_text("the-server-secret\n")
    secret.chmod(0o644)
    attack = ("CREATE EXTENSION IF NOT EXISTS file_fdw WITH SCHEMA public;\n"
              "CREATE SERVER atk_files FOREIGN DATA WRAPPER file_fdw;\n"
              "CREATE TABLE public.atk_pp (line text) PARTITION BY LIST (line);\n"
              "CREATE FOREIGN TABLE public.atk_ff PARTITION OF public.atk_pp\n"
              "    FOR VALUES IN ('the-server-secret') SERVER atk_files\n"
              f"    OPTIONS (filename '{secret}');\n"
              "CREATE MATERIALIZED VIEW public.atk_loot AS\n"
              " SELECT line FROM public.atk_pp\n  WITH NO DATA;\n"
              "REFRESH MATERIALIZED VIEW public.atk_loot;\n"
              f"ALTER TABLE public.atk_pp OWNER TO {bed.server.user};\n"
              f"ALTER MATERIALIZED VIEW public.atk_loot OWNER TO {bed.server.user};\n")
    arguments, environment = run_planted(bed, tmp_path, attack)
    result = run_agent(arguments, environment)
    secret.unlink()
    try:
        assert_nothing_outside_changed(bed.server, world, result, markers, codes={8, 10},
                                       may_create_databases={COPY_NAME})
    finally:
        if COPY_NAME in bed.server.database_names():
            loot = bed.server.psql(COPY_NAME, "SELECT line FROM public.atk_loot;",
                                   check=False)
            assert "the-server-secret" not in loot, "a server file was read into the copy"


# 5. The leftovers check: objects the backup's code made while it ran

def test_a_partitioned_table_made_by_the_backups_code_is_a_leftover(
        bed: Bed, world: Outside, markers: Path, tmp_path: Path) -> None:
    """The check leaves out objects with an internal dependency on something (a range's
    constructors), matching on classid and objid alone: a partitioned table's key column
    depends internally on its table, so the table itself is left out, and REASSIGN OWNED
    then gives the builder's table to the restoring superuser."""
    body = ("BEGIN CREATE TABLE public.atk_hidden (x integer) PARTITION BY LIST (x); "
            "EXCEPTION WHEN duplicate_table THEN NULL; END")
    attack = (functions(body, bed.server.user)
              + "CREATE TABLE public.atk_t (x integer CHECK (public.atk_ok(x) > 0));\n"
              f"ALTER TABLE public.atk_t OWNER TO {bed.server.user};\n"
              "COPY public.atk_t (x) FROM stdin;\n1\n\\.\n\n")
    arguments, environment = run_planted(bed, tmp_path, attack)
    result = run_agent(arguments, environment)
    try:
        assert_nothing_outside_changed(bed.server, world, result, markers, codes={8},
                                       may_create_databases={COPY_NAME})
    finally:
        if COPY_NAME in bed.server.database_names():
            owner = bed.server.psql(COPY_NAME, (
                "SELECT relowner::pg_catalog.regrole FROM pg_catalog.pg_class "
                "WHERE oid = pg_catalog.to_regclass('public.atk_hidden');")).strip()
            assert owner == "", f"public.atk_hidden, made by the backup's code, is {owner}'s"
