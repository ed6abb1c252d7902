"""Issue 21: restore as an attacker tries it. Nothing in a backup reaches past the database
being built, whatever the backup holds and whoever made it.

Forged backups (what the writer's S3 key or a stolen backup directory allows): a genuine
dump with an attack planted, data, .sha256, manifest and globals rewritten consistently.
  A. a function run during the restore turns standard_conforming_strings off (or
     client_encoding to SJIS): lines that read as two COMMENTs with the session as pg_dump
     set it become ALTER SYSTEM, DROP DATABASE of another database, a new superuser.
  B. a string opened on one line and closed at the start of a line the old feed cut out
     (--no-owner's OWNER TO and GRANT lines, all of them for a restore test without globals).
  C. a planted function run by the build itself (CHECK, DEFAULT, generated column, index
     expression, trigger, materialized view, the agent's ANALYZE) doing superuser things.
  E. a planted globals file: a LOGIN CREATEROLE CREATEDB BYPASSRLS role with a known
     password, settings on the existing superuser.
The insider (D): a genuine, signed backup whose non-superuser application role owns a table
whose CHECK / generated column / index / trigger / matview function does superuser things.

Expected exit codes: a forged backup is refused (8). Where an attack can only be noticed as a
server-side permission error (C: the stand-in role may not run a program), 8 or 10 are both
accepted; where the attack swallows that error, the restore may also succeed (0) as long as
nothing outside the database changed. The insider: 10 (clean failure), or 0 when the
function swallows its own permission error and ran without superuser rights.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from testbed.postgres import PostgresServer
from testbed.s3 import S3Endpoint
from tests.attacks import (
    EVIL_ROLE,
    PUBLIC_COMMENT,
    Bed,
    Outside,
    assert_nothing_outside_changed,
    before_first_schema,
    clean_up,
    escalating_body,
    harmful_sql,
    invocation,
    laid_out,
    markers_directory,
    new_markers,
    outside,
    watched,
)
from tests.conftest import clean_environment, make_backup, run_agent

SEED = "atk_seed"
PRODUCTION = "atk_prod"
BYSTANDER = "atk_bystander"
INSIDER_ROLE = "atk_insider"


@pytest.fixture(scope="module")
def markers_root() -> Iterator[Path]:
    with markers_directory("restore-attacks-") as root:
        yield root


@pytest.fixture
def markers(markers_root: Path) -> Path:
    return new_markers(markers_root)


@pytest.fixture(scope="module")
def bed(pg_server: PostgresServer, s3_endpoint: S3Endpoint,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bed]:
    pg_server.psql("postgres", f"""
        DO $$ BEGIN CREATE ROLE {INSIDER_ROLE} NOLOGIN;
        EXCEPTION WHEN duplicate_object THEN NULL; END $$;""")
    with laid_out(pg_server, s3_endpoint, tmp_path_factory.mktemp("genuine"), seed=SEED,
                  production=PRODUCTION, bystander=BYSTANDER, rows=1_000,
                  bucket="atk-genuine") as laid:
        yield laid


@pytest.fixture
def world(bed: Bed) -> Iterator[Outside]:
    with watched(bed) as before:
        yield before


def harmful(bed: Bed, markers: Path) -> bytes:
    return harmful_sql(markers / "program-ran", BYSTANDER, bed.server.user)


# A. The session's lexing settings flipped by the dump itself

def scs_flip(how: str) -> bytes:
    """SQL that turns standard_conforming_strings off for the rest of the session."""
    flip = ("PERFORM pg_catalog.set_config('standard_conforming_strings', 'off', false);")
    if how == "event-trigger":
        return (f"CREATE FUNCTION public.atk_flip() RETURNS event_trigger LANGUAGE plpgsql\n"
                f"    AS $$ BEGIN {flip} END $$;\n"
                f"CREATE EVENT TRIGGER atk_flip ON ddl_command_end\n"
                f"    EXECUTE FUNCTION public.atk_flip();\n"
                f"CREATE SCHEMA atk_fires_the_trigger;\n").encode()
    function = (f"CREATE FUNCTION public.atk_flip() RETURNS boolean LANGUAGE plpgsql\n"
                f"    AS $$ BEGIN {flip} RETURN true; END $$;\n"
                f"CREATE FUNCTION public.atk_flip_immutable(integer) RETURNS boolean\n"
                f"    LANGUAGE plpgsql IMMUTABLE AS $$ BEGIN RETURN public.atk_flip(); END $$;\n")
    column = {"check": "x integer CHECK (public.atk_flip())",
              "default": "x integer, flipped boolean DEFAULT public.atk_flip()",
              "generated": "x integer, flipped boolean GENERATED ALWAYS AS "
                           "(public.atk_flip_immutable(x)) STORED"}[how]
    return (function + f"CREATE TABLE public.atk_t ({column});\n"
            "COPY public.atk_t (x) FROM stdin;\n1\n\\.\n\n").encode()


def scs_payload(bed: Bed, markers: Path) -> bytes:
    """Two COMMENTs with standard_conforming_strings on; with it off, the first literal ends
    where the second begins and everything in the second runs."""
    return (PUBLIC_COMMENT + b"'a\\';\n" + PUBLIC_COMMENT + b"' ; " + harmful(bed, markers)
            + b"--';\n")


def encoding_flip() -> bytes:
    """client_encoding to SJIS, where 0x81 0x5C is one character: a backslash swallowed."""
    return (b"CREATE FUNCTION public.atk_sjis() RETURNS event_trigger LANGUAGE plpgsql\n"
            b"    AS $$ BEGIN PERFORM pg_catalog.set_config('client_encoding', 'SJIS', false);"
            b" END $$;\n"
            b"CREATE EVENT TRIGGER atk_sjis ON ddl_command_end\n"
            b"    EXECUTE FUNCTION public.atk_sjis();\n"
            b"CREATE SCHEMA atk_fires_the_trigger;\n")


def encoding_payload(bed: Bed, markers: Path) -> bytes:
    """One COMMENT read as UTF-8 (`\\'` escapes the quote); in SJIS, U+00C1's second byte
    and the backslash are one character, the quote ends the literal, the rest runs."""
    return (PUBLIC_COMMENT + "E'\u00c1\\'; ".encode() + harmful(bed, markers) + b"--';\n")


@pytest.mark.parametrize("entry", ["path", "no-owner", "target-db", "latest-s3", "s3-url",
                                   "restore-test", "restore-test-s3", "docker"])
def test_a_standard_strings_flip_by_an_event_trigger_is_refused_at_every_entry_point(
        entry: str, bed: Bed, world: Outside, markers: Path, tmp_path: Path,
        docker_shim: dict[str, str]) -> None:
    planted = bed.plant(tmp_path, before_first_schema(
        scs_flip("event-trigger") + scs_payload(bed, markers)))
    arguments, environment = invocation(entry, bed, planted, docker_shim)
    result = run_agent(arguments, environment)
    assert_nothing_outside_changed(bed.server, world, result, markers, codes={8})


@pytest.mark.parametrize("how", ["check", "default", "generated"])
def test_a_standard_strings_flip_during_a_copy_is_refused(
        how: str, bed: Bed, world: Outside, markers: Path, tmp_path: Path) -> None:
    planted = bed.plant(tmp_path, before_first_schema(scs_flip(how) + scs_payload(bed, markers)))
    arguments, environment = invocation("path", bed, planted, None)
    result = run_agent(arguments, environment)
    assert_nothing_outside_changed(bed.server, world, result, markers, codes={8})


@pytest.mark.parametrize("entry", ["path", "restore-test"])
def test_a_client_encoding_flip_to_sjis_is_refused(
        entry: str, bed: Bed, world: Outside, markers: Path, tmp_path: Path) -> None:
    planted = bed.plant(tmp_path, before_first_schema(
        encoding_flip() + encoding_payload(bed, markers)))
    arguments, environment = invocation(entry, bed, planted, None)
    result = run_agent(arguments, environment)
    assert_nothing_outside_changed(bed.server, world, result, markers, codes={8})


# B. A literal closed at the start of a line the feed leaves out

CUT_LINES = {
    "owner": b"ALTER SCHEMA public OWNER TO pg_database_owner'; "
             b"ALTER SCHEMA public OWNER TO pg_database_owner;",
    "grant": b"GRANT'; GRANT USAGE ON SCHEMA public TO PUBLIC;",
}


def cut_line_attack(bed: Bed, markers: Path, cut: bytes) -> bytes:
    """For the statement check: a COMMENT whose literal spans two lines, the statement
    after it, and a COMMENT holding text. With the middle line cut out, the first literal
    ends where the last one begins, and that text runs."""
    return (PUBLIC_COMMENT + b"'atk\n" + cut + b"\n" + PUBLIC_COMMENT + b"' ; "
            + harmful(bed, markers) + b"--';\n")


# Exit 0 is accepted here only because an engine that executes exactly the statements it
# proved runs these as two harmless COMMENTs (and leaves the GRANT/OWNER out as asked):
# nothing outside the database may change either way.
@pytest.mark.parametrize("cut", ["owner", "grant"])
@pytest.mark.parametrize("entry", ["no-owner", "no-owner-s3", "restore-test",
                                   "restore-test-s3", "docker-no-owner"])
def test_a_literal_closed_on_a_line_the_feed_leaves_out_never_runs_its_text(
        entry: str, cut: str, bed: Bed, world: Outside, markers: Path, tmp_path: Path,
        docker_shim: dict[str, str]) -> None:
    # The restore test leaves owners and grants out when the backup carries no globals.
    planted = bed.plant(tmp_path, before_first_schema(
        cut_line_attack(bed, markers, CUT_LINES[cut])),
        without_globals=entry.startswith("restore-test"))
    arguments, environment = invocation(entry, bed, planted, docker_shim)
    result = run_agent(arguments, environment)
    assert_nothing_outside_changed(bed.server, world, result, markers, codes={0, 8},
                                   may_create_databases={f"{PRODUCTION}_copy"})


# C. Code the build itself runs

def planted_code(body: str, how: str) -> bytes:
    """A volatile function with `body`, an immutable wrapper (index expressions and
    generated columns need one), and the object `how` that makes the build call it."""
    functions = (f"CREATE FUNCTION public.atk_act() RETURNS void LANGUAGE plpgsql\n"
                 f"    AS $$ {body} $$;\n"
                 "CREATE FUNCTION public.atk_ok(integer) RETURNS boolean LANGUAGE plpgsql\n"
                 "    IMMUTABLE AS $$ BEGIN PERFORM public.atk_act(); RETURN true; END $$;\n"
                 "CREATE FUNCTION public.atk_trigger() RETURNS trigger LANGUAGE plpgsql\n"
                 "    AS $$ BEGIN PERFORM public.atk_act(); RETURN NEW; END $$;\n")
    copy = "COPY public.atk_t (x) FROM stdin;\n1\n\\.\n\n"  # one row: one call
    objects = {
        "check": "CREATE TABLE public.atk_t (x integer CHECK (public.atk_ok(x)));\n" + copy,
        "default": "CREATE TABLE public.atk_t (x integer, y boolean DEFAULT "
                   "public.atk_ok(0));\n" + copy,
        "generated": "CREATE TABLE public.atk_t (x integer, y boolean GENERATED ALWAYS AS "
                     "(public.atk_ok(x)) STORED);\n" + copy,
        "index": "CREATE TABLE public.atk_t (x integer);\n" + copy +
                 "CREATE INDEX atk_i ON public.atk_t USING btree (public.atk_ok(x));\n",
        "trigger": "CREATE TABLE public.atk_t (x integer);\n"
                   "CREATE TRIGGER atk_tr BEFORE INSERT ON public.atk_t FOR EACH ROW "
                   "EXECUTE FUNCTION public.atk_trigger();\n" + copy,
        "matview": "CREATE TABLE public.atk_t (x integer);\n" + copy +
                   "CREATE MATERIALIZED VIEW public.atk_mv AS\n"
                   " SELECT public.atk_ok(x) AS ok FROM public.atk_t\n  WITH NO DATA;\n"
                   "REFRESH MATERIALIZED VIEW public.atk_mv;\n",
        # Owned by the superuser, as the dump says: ANALYZE (the agent's, or autovacuum's
        # later) evaluates the index expression as the table's owner.
        "analyze": "CREATE TABLE public.atk_t (x integer);\n"
                   "ALTER TABLE public.atk_t OWNER TO {superuser};\n" + copy +
                   "CREATE INDEX atk_i ON public.atk_t USING btree (public.atk_ok(x));\n",
    }[how]
    return (functions + objects).encode()


# Exit 8 or 10: the stand-in role's permission error is the only sign of these attacks;
# 0 as well where the function swallows that error (then nothing may have happened).
@pytest.mark.parametrize(("how", "swallow"), [
    ("check", False), ("check", True), ("default", False), ("generated", False),
    ("index", False), ("trigger", False), ("matview", False), ("generated", True),
    ("analyze", True)])
def test_code_planted_for_the_build_never_runs_as_a_superuser(
        how: str, swallow: bool, bed: Bed, world: Outside, markers: Path,
        tmp_path: Path) -> None:
    body = escalating_body(markers / "program-ran", bed.server.user, swallow=swallow)
    code = planted_code(body, how).replace(b"{superuser}", bed.server.user.encode())
    planted = bed.plant(tmp_path, before_first_schema(code))
    arguments, environment = invocation("path", bed, planted, None)
    result = run_agent(arguments, environment)
    assert_nothing_outside_changed(bed.server, world, result, markers,
                                   codes={0, 8, 10} if swallow else {8, 10})


@pytest.mark.parametrize("entry", ["target-db", "latest-s3", "restore-test",
                                   "restore-test-s3", "docker"])
def test_a_planted_check_function_never_runs_as_a_superuser_at_any_entry_point(
        entry: str, bed: Bed, world: Outside, markers: Path, tmp_path: Path,
        docker_shim: dict[str, str]) -> None:
    body = escalating_body(markers / "program-ran", bed.server.user, swallow=False)
    planted = bed.plant(tmp_path, before_first_schema(planted_code(body, "check")))
    arguments, environment = invocation(entry, bed, planted, docker_shim)
    result = run_agent(arguments, environment)
    # 8 or 10: a permission error of the stand-in role is the only sign (see above).
    assert_nothing_outside_changed(bed.server, world, result, markers, codes={8, 10})


def test_the_planted_code_does_what_it_claims_when_a_superuser_runs_it(
        bed: Bed, world: Outside, markers: Path) -> None:
    """Not vacuous: the body, run by the superuser, starts a program that writes the marker
    (the directory is writable by the server's system user) and creates the role."""
    scratch = "atk_sanity"
    bed.server.drop_database(scratch)
    bed.server.create_database(scratch)
    try:
        body = escalating_body(markers / "program-ran", bed.server.user, swallow=False)
        bed.server.psql(scratch, f"DO $$ {body} $$;")
        assert (markers / "program-ran").exists()
        assert EVIL_ROLE in bed.server.psql("postgres", "SELECT rolname FROM pg_roles;")
    finally:
        bed.server.drop_database(scratch)
        (markers / "program-ran").unlink(missing_ok=True)


# E. A planted globals file

# PostgreSQL's MD5 password hash format (md5 of password + role name), not a choice of hash.
KNOWN_PASSWORD_MD5 = "md5" + hashlib.md5(  # noqa: S324
    b"known-password" + EVIL_ROLE.encode()).hexdigest()


def planted_globals(superuser: str) -> Any:
    def change(document: dict[str, Any]) -> dict[str, Any]:
        document["roles"].append({
            "name": EVIL_ROLE, "superuser": False, "inherit": True, "createrole": True,
            "createdb": True, "login": True, "replication": False, "bypassrls": True,
            "connection_limit": -1, "valid_until": None, "password": KNOWN_PASSWORD_MD5,
            "comment": None, "settings": ["search_path=atk_evil"]})
        document["roles"].append({
            "name": superuser, "superuser": True, "inherit": True, "createrole": True,
            "createdb": True, "login": True, "replication": True, "bypassrls": True,
            "connection_limit": -1, "valid_until": None, "password": KNOWN_PASSWORD_MD5,
            "comment": None, "settings": ["search_path=atk_evil, public"]})
        document["database"]["role_settings"] = [
            *(document["database"].get("role_settings") or []),
            {"role": superuser, "settings": ["search_path=atk_evil, public",
                                             "standard_conforming_strings=off"]},
            {"role": EVIL_ROLE, "settings": ["statement_timeout=0"]}]
        document["memberships"].append({"role": "pg_read_server_files", "member": EVIL_ROLE,
                                        "admin": True, "inherit": True, "set": True})
        return document
    return change


# An unsigned globals file may at most create powerless roles (NOLOGIN, no password, no
# CREATEROLE/CREATEDB/BYPASSRLS); 0 (restored, the roles listed for hand-editing) or 8.
@pytest.mark.parametrize("entry", ["path", "target-db", "latest-s3", "restore-test"])
def test_a_planted_globals_file_creates_no_powerful_role_and_changes_no_existing_one(
        entry: str, bed: Bed, world: Outside, markers: Path, tmp_path: Path) -> None:
    planted = bed.plant(tmp_path, lambda sql: sql,
                        change_globals=planted_globals(bed.server.user))
    arguments, environment = invocation(entry, bed, planted, None)
    result = run_agent(arguments, environment)
    assert_nothing_outside_changed(bed.server, world, result, markers, codes={0, 8},
                                   may_create_databases={f"{PRODUCTION}_copy"},
                                   may_create_powerless_roles={EVIL_ROLE})


# D. The insider: a genuine, signed backup; an application role's own code

INSIDER_OBJECTS = {
    "check": "CREATE TABLE insider.ledger (x integer CHECK (insider.ok(x)));",
    "generated": "CREATE TABLE insider.ledger (x integer, who text GENERATED ALWAYS AS "
                 "(insider.who(x)) STORED);",
    "index": "CREATE TABLE insider.ledger (x integer);",
    "trigger": "CREATE TABLE insider.ledger (x integer);",
    "matview": "CREATE TABLE insider.ledger (x integer);",
}
INSIDER_AFTER_DATA = {
    "index": "CREATE INDEX ledger_ok ON insider.ledger ((insider.ok(x)));",
    "trigger": "CREATE TRIGGER ledger_seen BEFORE INSERT OR UPDATE ON insider.ledger "
               "FOR EACH ROW EXECUTE FUNCTION insider.seen();",
    "matview": "CREATE MATERIALIZED VIEW insider.oks AS SELECT insider.ok(x) FROM "
               "insider.ledger; ALTER MATERIALIZED VIEW insider.oks OWNER TO atk_insider;",
}


def insider_database(server: PostgresServer, name: str, variant: str, marker: Path) -> None:
    """The sample database plus an application role's schema: its table calls its function,
    harmless while the data goes in, escalating from then on (as after a later deploy)."""
    how, _, swallow = variant.partition("-")
    server.drop_database(name)
    server.create_database(name, template=SEED)
    server.psql(name, f"""
        CREATE SCHEMA insider AUTHORIZATION {INSIDER_ROLE};
        CREATE FUNCTION insider.act() RETURNS void LANGUAGE plpgsql AS $$ BEGIN NULL; END $$;
        CREATE FUNCTION insider.ok(integer) RETURNS boolean LANGUAGE plpgsql IMMUTABLE
            AS $$ BEGIN PERFORM insider.act(); RETURN true; END $$;
        CREATE FUNCTION insider.who(integer) RETURNS text LANGUAGE plpgsql IMMUTABLE
            AS $$ BEGIN PERFORM insider.act();
            RETURN current_user || ':' || (SELECT rolsuper FROM pg_catalog.pg_roles
                                           WHERE rolname = current_user)::text; END $$;
        CREATE FUNCTION insider.seen() RETURNS trigger LANGUAGE plpgsql
            AS $$ BEGIN PERFORM insider.act(); RETURN NEW; END $$;
        ALTER FUNCTION insider.act() OWNER TO {INSIDER_ROLE};
        ALTER FUNCTION insider.ok(integer) OWNER TO {INSIDER_ROLE};
        ALTER FUNCTION insider.who(integer) OWNER TO {INSIDER_ROLE};
        ALTER FUNCTION insider.seen() OWNER TO {INSIDER_ROLE};
        {INSIDER_OBJECTS[how]}
        ALTER TABLE insider.ledger OWNER TO {INSIDER_ROLE};
        SET ROLE {INSIDER_ROLE};
        INSERT INTO insider.ledger (x) VALUES (1);
        RESET ROLE;
        {INSIDER_AFTER_DATA.get(how, "")}
        CREATE OR REPLACE FUNCTION insider.act() RETURNS void LANGUAGE plpgsql
            AS $$ {escalating_body(marker, server.user, swallow=bool(swallow))} $$;""")


@pytest.fixture(scope="module")
def signing(bed: Bed, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    key = tmp_path_factory.mktemp("signing") / "signing.pem"
    result = run_agent(["keygen", "--signing", str(key)], bed.environment)
    assert result.returncode == 0, result.stderr
    public = result.stdout.strip().splitlines()[-1]
    return {"SIGNING_KEY_FILE": str(key), "TRUSTED_SIGNING_KEYS": public}


@pytest.fixture(scope="module")
def insider_backups(bed: Bed, signing: dict[str, str], markers_root: Path,
                    tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """variant -> (database, environment, marker directory): one signed backup each."""
    made: dict[str, tuple[str, dict[str, str], Path]] = {}

    def backup(variant: str) -> tuple[str, dict[str, str], Path]:
        if variant not in made:
            name = f"atk_ins_{variant.replace('-', '_')}"
            marker = markers_root / f"insider-{variant}"
            marker.mkdir()
            marker.chmod(0o777)
            insider_database(bed.server, name, variant, marker / "program-ran")
            directory = tmp_path_factory.mktemp(f"insider-{variant}")
            environment = {**clean_environment(), **bed.server.environment(name),
                           **signing, "BACKUP_DIR": str(directory)}
            make_backup(environment)
            bed.databases.add(name)
            bed.server.psql("postgres", f"CREATE DATABASE {name}_template TEMPLATE {name};")
            bed.databases.add(f"{name}_template")
            made[variant] = (name, environment, marker)
        return made[variant]

    yield backup
    for name, _, _ in made.values():
        bed.server.drop_database(name)
        bed.server.drop_database(f"{name}_template")


def insider_arguments(entry: str, database: str) -> list[str]:
    return {"latest": ["restore", "latest", "--yes"],
            "target-db": ["restore", "latest", "--target-db", f"{database}_copy", "--yes"],
            "no-owner": ["restore", "latest", "--no-owner", "--yes"],
            "restore-test": ["verify", "latest", "--restore-test"]}[entry]


@pytest.mark.parametrize(("variant", "entry"), [
    *(("check", entry) for entry in ("latest", "target-db", "no-owner", "restore-test")),
    *(("generated-swallow", entry) for entry in ("latest", "target-db", "no-owner",
                                                 "restore-test")),
    ("generated", "latest"), ("index", "latest"), ("trigger", "latest"),
    ("matview", "latest"), ("check-swallow", "latest"),
    # With --no-owner the table ends up the superuser's: the ANALYZE after the build (and
    # autovacuum later) evaluates the app's index expression as that owner.
    ("index-swallow", "latest"), ("index-swallow", "no-owner"),
])
def test_an_application_roles_code_in_a_genuine_backup_never_runs_as_a_superuser(
        variant: str, entry: str, bed: Bed, insider_backups: Any) -> None:
    database, environment, marker = insider_backups(variant)
    swallowing = variant.endswith("-swallow")
    # A restore in place that succeeds replaces production, by design: its content may then
    # differ (a generated column computed without superuser rights); the bystander may not.
    replaced = swallowing and entry in ("latest", "no-owner")
    before = outside(bed.server, (BYSTANDER,) if replaced else (database, BYSTANDER))
    try:
        result = run_agent(insider_arguments(entry, database), environment)
        # A function that swallows its permission error loads like any data (0); one that
        # does not makes the build fail cleanly (10; `verify` reports a failed restore test
        # as 8). The trigger and the matview are created after the data by pg_dump: if they
        # never fire, 0 is right too.
        failed = 8 if entry == "restore-test" else 10
        codes = {0} if swallowing else {0, failed} if variant in ("trigger",) else {failed}
        assert_nothing_outside_changed(
            bed.server, before, result, marker, codes=codes,
            may_create_databases={f"{database}_copy"} if result.returncode == 0 else ())
        if swallowing and result.returncode == 0 and variant.startswith("generated") \
                and entry != "restore-test":
            restored = f"{database}_copy" if entry == "target-db" else database
            who = set(bed.server.psql(restored, "SELECT who FROM insider.ledger;").split())
            assert who and all(value.endswith(":false") for value in who), \
                f"the generated column's function ran as {who}"
    finally:
        clean_up(bed.server, before, bed.databases - {database},
                 {database: f"{database}_template", BYSTANDER: SEED})
