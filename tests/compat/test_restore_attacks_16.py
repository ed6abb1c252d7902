"""Issue 21's attacks on a PostgreSQL 16 server restored with its own client binaries
(pgserver's psql 16: no \\restrict, so a meta-command that reaches psql runs a shell on the
agent's host). Forged backups are refused (8), and nothing outside the database changes.

B's cut line here is `SET transaction_timeout`, which the old feed leaves out for servers
older than 17: a literal closed at its start swallowed the next lines for psql.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from testbed.postgres import PostgresServer
from testbed.s3 import S3Endpoint
from tests.attacks import (
    PUBLIC_COMMENT,
    Bed,
    Outside,
    assert_nothing_outside_changed,
    before_first_schema,
    escalating_body,
    harmful_sql,
    invocation,
    laid_out,
    markers_directory,
    new_markers,
    watched,
)
from tests.conftest import run_agent

SEED = "atk16_seed"
PRODUCTION = "atk16_prod"
BYSTANDER = "atk16_bystander"


@pytest.fixture(scope="module")
def markers_root() -> Iterator[Path]:
    with markers_directory("restore-attacks-16-") as root:
        yield root


@pytest.fixture
def markers(markers_root: Path) -> Path:
    return new_markers(markers_root)


@pytest.fixture(scope="module")
def bed16(pg16_server: PostgresServer, s3_endpoint: S3Endpoint,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bed]:
    """A genuine backup of a PostgreSQL 16 database by its own pg_dump 16."""
    with laid_out(pg16_server, s3_endpoint, tmp_path_factory.mktemp("genuine16"),
                  seed=SEED, production=PRODUCTION, bystander=BYSTANDER, rows=500,
                  bucket="atk16-genuine",
                  extra={"PG_BINDIR": str(pg16_server.bin_directory)}) as laid:
        yield laid


@pytest.fixture
def world16(bed16: Bed) -> Iterator[Outside]:
    with watched(bed16) as before:
        yield before


def harmful16(bed: Bed, markers: Path) -> bytes:
    """The SQL attack, then a psql 16 shell escape on the agent's host (`#` ends the shell
    command before the quote that closes the literal for the statement check)."""
    return (harmful_sql(markers / "program-ran", BYSTANDER, bed.server.user)
            + f"\\! touch {markers / 'shell-ran'} #".encode())


def scs_flip_by_event_trigger() -> bytes:
    return (b"CREATE FUNCTION public.atk_flip() RETURNS event_trigger LANGUAGE plpgsql\n"
            b"    AS $$ BEGIN PERFORM pg_catalog.set_config('standard_conforming_strings',"
            b" 'off', false); END $$;\n"
            b"CREATE EVENT TRIGGER atk_flip ON ddl_command_end\n"
            b"    EXECUTE FUNCTION public.atk_flip();\n"
            b"CREATE SCHEMA atk_fires_the_trigger;\n")


@pytest.mark.parametrize("entry", ["path", "no-owner", "restore-test", "restore-test-s3"])
def test_a_standard_strings_flip_on_16_is_refused(
        entry: str, bed16: Bed, world16: Outside, markers: Path, tmp_path: Path) -> None:
    attack = (scs_flip_by_event_trigger() + PUBLIC_COMMENT + b"'a\\';\n" + PUBLIC_COMMENT
              + b"' ; " + harmful16(bed16, markers) + b"';\n")
    planted = bed16.plant(tmp_path, before_first_schema(attack))
    arguments, environment = invocation(entry, bed16, planted, None)
    result = run_agent(arguments, environment)
    assert_nothing_outside_changed(bed16.server, world16, result, markers, codes={8})


# Exit 0 is accepted only because an engine executing exactly the proven statements runs
# these as harmless COMMENTs (and leaves the SET out for 16): nothing outside may change.
@pytest.mark.parametrize("entry", ["path", "latest-s3", "restore-test", "restore-test-s3"])
def test_a_literal_closed_on_a_set_line_16_does_not_know_never_runs_its_text(
        entry: str, bed16: Bed, world16: Outside, markers: Path, tmp_path: Path) -> None:
    attack = (PUBLIC_COMMENT + b"'atk\n"
              + b"SET transaction_timeout = 0'; SET transaction_timeout = 0;\n"
              + PUBLIC_COMMENT + b"' ; " + harmful16(bed16, markers) + b"';\n")
    planted = bed16.plant(tmp_path, before_first_schema(attack))
    arguments, environment = invocation(entry, bed16, planted, None)
    result = run_agent(arguments, environment)
    assert_nothing_outside_changed(bed16.server, world16, result, markers, codes={0, 8},
                                   may_create_databases={f"{PRODUCTION}_copy"})


def test_a_planted_check_function_on_16_never_runs_as_a_superuser(
        bed16: Bed, world16: Outside, markers: Path, tmp_path: Path) -> None:
    body = escalating_body(markers / "program-ran", bed16.server.user, swallow=False)
    code = (f"CREATE FUNCTION public.atk_ok(integer) RETURNS boolean LANGUAGE plpgsql\n"
            f"    AS $$ {body.removesuffix(' END')} RETURN true; END $$;\n"
            "CREATE TABLE public.atk_t (x integer CHECK (public.atk_ok(x)));\n"
            "COPY public.atk_t (x) FROM stdin;\n1\n\\.\n\n").encode()
    planted = bed16.plant(tmp_path, before_first_schema(code))
    arguments, environment = invocation("path", bed16, planted, None)
    result = run_agent(arguments, environment)
    # 8 or 10: a permission error of the stand-in role is the only sign of this attack.
    assert_nothing_outside_changed(bed16.server, world16, result, markers, codes={8, 10})
