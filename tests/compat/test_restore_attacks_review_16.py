"""Issue 21 reviewed on PostgreSQL 16, which does not report search_path to the client: the
session watch cannot see an application role's function change it during the restore.

The insider (a non-superuser application role; a genuine backup signed by the server's own
key): its CHECK function, run while its table's data is loaded, sets the builder session's
search_path to `insider, pg_catalog`. Every later statement the dump writes with a
pg_catalog name left unqualified (pg_dump's output relies on the empty search_path it set)
now finds the insider's function of that name first: the restored index on the superuser's
table calls `insider.lower`, which the original never did, and a superuser's ANALYZE (or
autovacuum's) later runs the insider's code as that superuser.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from testbed.postgres import PostgresServer
from tests.conftest import clean_environment, make_backup, run_agent

DATABASE = "atkr16_insider"
COPY_NAME = f"{DATABASE}_copy"
INSIDER = "atkr16_insider_role"


@pytest.fixture
def markers() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="restore-review-16-"))
    root.chmod(0o777)  # programs the server starts run as its own system user
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def insider_database(pg16_server: PostgresServer, markers: Path) -> Iterator[str]:
    server = pg16_server
    for name in (DATABASE, COPY_NAME):
        server.drop_database(name)
    server.psql("postgres", f"""
        DO $$ BEGIN CREATE ROLE {INSIDER} NOLOGIN;
        EXCEPTION WHEN duplicate_object THEN NULL; END $$;""")
    server.create_database(DATABASE)
    server.psql(DATABASE, f"""
        CREATE TABLE public.accounts (email text);
        INSERT INTO public.accounts SELECT 'User' || g || '@Example.com'
            FROM generate_series(1, 200) g;
        CREATE INDEX accounts_email ON public.accounts (lower(email));
        CREATE SCHEMA insider AUTHORIZATION {INSIDER};
        SET ROLE {INSIDER};
        CREATE FUNCTION insider.act() RETURNS void LANGUAGE plpgsql AS $$ BEGIN
            COPY (SELECT 1) TO PROGRAM 'touch {markers / "program-ran"}; cat > /dev/null';
            EXCEPTION WHEN OTHERS THEN NULL; END $$;
        CREATE FUNCTION insider.lower(text) RETURNS text LANGUAGE plpgsql IMMUTABLE
            AS $$ BEGIN PERFORM insider.act(); RETURN pg_catalog.lower($1); END $$;
        CREATE FUNCTION insider.ok(integer) RETURNS boolean LANGUAGE plpgsql AS $$ BEGIN
            PERFORM pg_catalog.set_config('search_path', 'insider, pg_catalog', false);
            RETURN true; END $$;
        CREATE TABLE insider.ledger (x integer CHECK (insider.ok(x)));
        INSERT INTO insider.ledger VALUES (1);
        RESET ROLE;""")
    yield DATABASE
    for name in (DATABASE, COPY_NAME):
        server.drop_database(name)
    server.psql("postgres", f"DROP ROLE IF EXISTS {INSIDER};", check=False)


INDEX_SQL = ("SELECT pg_catalog.pg_get_indexdef('public.accounts_email'::pg_catalog.regclass);")


def test_an_application_roles_search_path_change_on_16_changes_nothing_restored(
        pg16_server: PostgresServer, insider_database: str, markers: Path,
        tmp_path: Path) -> None:
    server = pg16_server
    original = server.psql(insider_database, INDEX_SQL).strip()
    assert "insider" not in original
    key = tmp_path / "signing.pem"
    environment = {**clean_environment(), **server.environment(insider_database),
                   "PG_BINDIR": str(server.bin_directory), "BACKUP_DIR": str(tmp_path / "b")}
    (tmp_path / "b").mkdir(mode=0o700)
    result = run_agent(["keygen", "--signing", str(key)], environment)
    assert result.returncode == 0, result.stderr
    environment.update(SIGNING_KEY_FILE=str(key),
                       TRUSTED_SIGNING_KEYS=result.stdout.strip().splitlines()[-1])
    make_backup(environment)
    result = run_agent(["restore", "latest", "--target-db", COPY_NAME, "--yes"], environment)
    detail = f"exit {result.returncode}\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
    if result.returncode != 0:  # refused or failed cleanly: nothing restored, nothing ran
        assert result.returncode in (8, 10), detail
        assert not any(markers.iterdir()), detail
        return
    restored = server.psql(COPY_NAME, INDEX_SQL).strip()
    assert restored == original, f"the restored index is not the backup's: {restored}"
    server.psql(COPY_NAME, "ANALYZE public.accounts;")  # what autovacuum will do
    assert not any(markers.iterdir()), "the insider's code ran as the superuser"
