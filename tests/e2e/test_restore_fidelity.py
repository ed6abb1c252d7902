"""Genuine databases that once tripped the restore: each comes back whole, and leaves nothing.

A subscription (`connect = false`) must be disabled, detached from its slot and dropped
before its database can go; a comment can outlive its object; a setting only a superuser may
set comes back from a signed backup and is named from an unsigned one.
"""

from __future__ import annotations

import json
from pathlib import Path

from testbed.postgres import PostgresServer
from tests.conftest import make_backup, run_agent, signed

SUBSCRIPTION = """
    CREATE SUBSCRIPTION fid_sub CONNECTION 'host=192.0.2.1 dbname=nowhere'
        PUBLICATION nothing WITH (connect = false, slot_name = NONE);"""


def leftovers(pg_server: PostgresServer, database: str) -> set[str]:
    return {name for name in pg_server.database_names()
            if name.startswith(f"{database}_") and not name.endswith("_copy")}


def test_a_database_with_a_subscription_passes_its_restore_test_and_is_replaced(
        agent_env: dict[str, str], pg_server: PostgresServer, database: str) -> None:
    environment = signed(agent_env)
    pg_server.psql(database, SUBSCRIPTION)
    make_backup(environment)
    tested = run_agent(["verify", "--restore-test", "--json"], environment)
    assert tested.returncode == 0, tested.stderr
    assert not leftovers(pg_server, database)  # the scratch database went, subscription and all
    restored = run_agent(["restore", "latest", "--yes", "--drop-previous", "--json"],
                         environment)
    assert restored.returncode == 0, restored.stderr
    assert json.loads(restored.stdout)["previous_database"] is None
    assert not leftovers(pg_server, database)  # the previous one was dropped too
    assert pg_server.psql(database, "SELECT subname FROM pg_subscription s JOIN pg_database d "
                                    "ON d.oid = s.subdbid WHERE d.datname = current_database();"
                          ).strip() == "fid_sub"
    pg_server.psql(database, "ALTER SUBSCRIPTION fid_sub DISABLE; "
                             "ALTER SUBSCRIPTION fid_sub SET (slot_name = NONE); "
                             "DROP SUBSCRIPTION fid_sub;")


def test_a_comment_that_outlived_its_object_does_not_fail_the_restore_test(
        agent_env: dict[str, str], pg_server: PostgresServer, database: str) -> None:
    pg_server.psql(database, "INSERT INTO pg_catalog.pg_description VALUES "
                             "(987654, 'pg_catalog.pg_class'::regclass, 0, 'orphaned');")
    environment = signed(agent_env)
    make_backup(environment)
    tested = run_agent(["verify", "--restore-test", "--json"], environment)
    assert tested.returncode == 0, tested.stdout


def test_a_superuser_setting_comes_back_only_from_a_signed_backup(
        agent_env: dict[str, str], pg_server: PostgresServer, database: str,
        backup_dir: Path) -> None:
    pg_server.psql(database, f'ALTER DATABASE "{database}" SET lc_messages = \'C\';')
    unsigned = {name: value for name, value in agent_env.items() if name != "SIGNING_KEY_FILE"}
    # Signed and trusted; then unsigned, restored with --allow-unsigned on the server whose
    # own key is trusted (the flag lets it in, it does not make it trusted).
    for writer, kept, flags in ((signed(agent_env), True, ()),
                                (unsigned, False, ("--allow-unsigned",))):
        for path in backup_dir.iterdir():
            path.unlink()
        make_backup(writer)
        copy = f"{database}_copy"
        result = run_agent(["restore", "latest", "--target-db", copy, "--yes", "--json",
                            *flags], agent_env)
        assert result.returncode == 0, result.stderr
        settings = pg_server.psql("postgres", "SELECT array_to_string(setconfig, ',') FROM "
                                              "pg_db_role_setting s JOIN pg_database d ON "
                                              f"d.oid = s.setdatabase WHERE d.datname = '{copy}' "
                                              "AND s.setrole = 0;").strip()
        assert ("lc_messages=C" in settings) is kept, settings
        if not kept:
            assert any("lc_messages" in warning
                       for warning in json.loads(result.stdout)["warnings"])
        pg_server.drop_database(copy)
