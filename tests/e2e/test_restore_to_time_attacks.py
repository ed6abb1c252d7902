"""`restore --to-time T` attacked: the throwaway cluster, its private server and the
scratch directory, against what the archive holds and who else is on the host.

The archive is the one `tests/streamed_archive.py` streams (PostgreSQL 18, moto); each test
changes what it needs in it, or in the restore's environment, and restores with --dry-run
(nothing in the running server changes) or refuses up front.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from backup_agent.keys.key_files import create_key_file
from testbed.pitr import owned_directory
from testbed.s3 import S3Endpoint
from tests.conftest import run_agent
from tests.streamed_archive import DATABASE, Archived, served_archive


@pytest.fixture(scope="module")
def archived(s3_endpoint: S3Endpoint,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[Archived]:
    with served_archive(s3_endpoint, tmp_path_factory, "test-restore-to-time-attacks") as archive:
        yield archive


def _unproven(environment: dict[str, str]) -> dict[str, str]:
    """The restore's environment trusting another key than the one the archive was signed
    with: to it every object is as unsigned as one planted with the writer's AWS key."""
    key = Path(tempfile.mkdtemp(prefix="backup-agent-other-key-")) / "signing.pem"
    public, _note = create_key_file(key, signing=True)
    return {**environment, "SIGNING_KEY_FILE": str(key), "TRUSTED_SIGNING_KEYS": public}


def test_an_unproven_archive_cannot_reenable_event_triggers_for_the_agents_dump(
        archived: Archived) -> None:
    """The private server runs with event_triggers and the preload libraries off on its
    command line, but a role's or a database's own settings come after the command line: an
    archive nobody proved (planted, restored with --allow-unsigned) that says `ALTER ROLE
    <superuser> SET event_triggers = on` and holds an ON login event trigger would run its
    code as the superuser pg_dump and psql connect as, there: `COPY ... TO PROGRAM` on this
    host. An unsigned backup's code runs only as the builder; this must not be worse."""
    server = archived.server
    marks = owned_directory(server, "marks")
    superuser = server.psql(DATABASE, "SELECT current_user;").strip()
    server.psql(DATABASE, f"""
        CREATE FUNCTION public.on_login() RETURNS event_trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF current_setting('unix_socket_directories') LIKE '%backup-agent-server-%' THEN
            EXECUTE format('COPY (SELECT 1) TO PROGRAM %L',
                           'touch {marks}/' || current_user || '-' || pg_backend_pid());
          END IF;
        END $$;
        CREATE EVENT TRIGGER on_login ON login EXECUTE FUNCTION public.on_login();
        ALTER ROLE "{superuser}" IN DATABASE {DATABASE} SET event_triggers = on;
        ALTER DATABASE {DATABASE} SET session_preload_libraries = 'auto_explain';""")
    try:
        result = run_agent(["restore", "--to-time", "latest", "--scratch",
                            str(archived.scratch), "--allow-unsigned", "--dry-run"],
                           _unproven(archived.environment))
        assert not list(marks.iterdir()), (
            "the archive's login trigger ran as the superuser on the restoring host: "
            f"{sorted(p.name for p in marks.iterdir())}")
        assert result.returncode == 0, result.stdout + result.stderr
        assert "NOT proven" in result.stderr or "unsigned" in result.stderr.lower()
    finally:
        server.psql(DATABASE, f"""
            DROP EVENT TRIGGER on_login; DROP FUNCTION public.on_login();
            ALTER ROLE "{superuser}" IN DATABASE {DATABASE} RESET event_triggers;
            ALTER DATABASE {DATABASE} RESET session_preload_libraries;""")
        shutil.rmtree(marks.parent, ignore_errors=True)


@pytest.mark.parametrize("mode", [0o777, 0o770])
def test_a_scratch_directory_other_users_may_write_in_is_refused(archived: Archived,
                                                                 mode: int) -> None:
    """Whoever may write in --scratch (no sticky bit) can rename the throwaway directory
    the agent made in it and put their own in its place: swap the recovered cluster's data
    files between the archive's proof and the dump (which the one-run key then makes
    TRUSTED), or read the dump. It is refused before anything is fetched, as BACKUP_DIR and
    WAL_SPOOL_DIR are."""
    scratch = owned_directory(archived.server, f"shared-{secrets.token_hex(3)}",
                              archived.scratch.parent)
    scratch.chmod(mode)
    try:
        result = run_agent(["restore", "--to-time", "latest", "--scratch", str(scratch),
                            "--dry-run"], archived.environment)
        assert result.returncode == 4, result.stdout + result.stderr
        assert "--scratch" in result.stderr and "other users" in result.stderr
        assert not list(scratch.iterdir())
    finally:
        shutil.rmtree(scratch)



def test_the_sources_huge_pages_do_not_stop_the_throwaway_server(archived: Archived) -> None:
    """Production often runs with `huge_pages = on` (pages reserved for it alone): the
    throwaway server, started next to it on the same host from its configuration, finds
    none free and exits, so no restore --to-time could ever run there. (Here no huge page
    is reserved at all, as on a host whose reserved pages production holds.)"""
    server = archived.server
    server.psql("postgres", "ALTER SYSTEM SET huge_pages = 'on';")  # from its next start
    try:
        based = run_agent(["base-backup"], archived.environment)
        assert based.returncode == 0, based.stderr
        result = run_agent(["restore", "--to-time", "latest", "--scratch",
                            str(archived.scratch), "--dry-run"], archived.environment)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "dry run" in result.stderr
    finally:
        server.psql("postgres", "ALTER SYSTEM RESET huge_pages;")


def test_a_transaction_left_prepared_at_t_does_not_hold_up_the_dump(archived: Archived) -> None:
    """A two-phase transaction prepared and not finished at T survives recovery with its
    locks: one holding ACCESS EXCLUSIVE (an application's LOCK TABLE, or DDL, before
    PREPARE TRANSACTION) made pg_dump in the throwaway cluster wait out LOCK_WAIT_TIMEOUT
    and fail, so no restore to that moment was possible. It had not committed at T, so
    rolling it back there changes nothing that is restored."""
    server = archived.server
    server.psql(DATABASE, "CREATE TABLE parked (id int PRIMARY KEY); "
                          "INSERT INTO parked VALUES (1);")
    server.psql(DATABASE, "BEGIN; LOCK TABLE parked IN ACCESS EXCLUSIVE MODE; "
                          "INSERT INTO parked VALUES (2); PREPARE TRANSACTION 'parked';")
    try:
        result = run_agent(["restore", "--to-time", "latest", "--scratch",
                            str(archived.scratch), "--target-db", "shop_prepared", "--yes"],
                           {**archived.environment, "LOCK_WAIT_TIMEOUT": "5s"})
        assert result.returncode == 0, result.stdout + result.stderr
        assert server.psql("shop_prepared", "SELECT id FROM parked;").split() == ["1"]
    finally:
        server.psql(DATABASE, "ROLLBACK PREPARED 'parked';")
        server.psql(DATABASE, "DROP TABLE parked;")
        server.psql("postgres", "DROP DATABASE IF EXISTS shop_prepared;")
