"""A backup carries what its database needs from the cluster, proven like the dump: the
restore test catches a backup that lost an index, a grant or a role; a tampered globals file
stops everything; --no-owner and dry runs on a brand-new server; older backups still restore.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from testbed.postgres import PostgresServer, running_server
from tests.conftest import make_backup, run_agent, signed
from tests.fabricate import rewrite_backup

ROLES_SQL = """
DO $$ BEGIN
    CREATE ROLE gl_owner NOLOGIN;
EXCEPTION WHEN duplicate_object THEN NULL; END $$;
DO $$ BEGIN
    CREATE ROLE gl_ro LOGIN PASSWORD 'gl-ro-password';
EXCEPTION WHEN duplicate_object THEN NULL; END $$;
"""


def with_roles(server: PostgresServer, database: str) -> None:
    """The sample database, owned by gl_owner, readable by gl_ro, with its own settings."""
    server.psql("postgres", ROLES_SQL)
    server.psql(database, f"""
        ALTER DATABASE {database} OWNER TO gl_owner;
        ALTER SCHEMA shop OWNER TO gl_owner;
        ALTER TABLE shop.customers OWNER TO gl_owner;
        GRANT USAGE ON SCHEMA shop TO gl_ro;
        GRANT SELECT ON TABLE shop.customers TO gl_ro;
        REVOKE CONNECT, TEMPORARY ON DATABASE {database} FROM PUBLIC;
        GRANT CONNECT ON DATABASE {database} TO gl_ro;
        ALTER DATABASE {database} SET work_mem = '12MB';
        ALTER ROLE gl_ro IN DATABASE {database} SET statement_timeout = '5s';
        COMMENT ON DATABASE {database} IS 'production shop';
        ALTER DATABASE {database} CONNECTION LIMIT 50;
        ALTER TABLE shop.customers ENABLE ROW LEVEL SECURITY;
        CREATE POLICY "ro sees" ON shop.customers FOR SELECT TO gl_ro USING (true);
        COMMENT ON POLICY "ro sees" ON shop.customers IS 'gl_ro reads every customer';""")


@pytest.fixture
def backed_up(pg_server: PostgresServer, database: str, agent_env: dict[str, str],
              backup_dir: Path) -> str:
    with_roles(pg_server, database)
    return str(make_backup(agent_env)["name"])


@pytest.fixture
def new_cluster() -> Iterator[PostgresServer]:
    with running_server() as server:
        yield server


def restore_test(agent_env: dict[str, str], backup_dir: Path, name: str,
                 *flags: str) -> tuple[int, dict[str, Any]]:
    result = run_agent(["verify", str(backup_dir / name), "--restore-test", "--json", *flags],
                       agent_env)
    return result.returncode, json.loads(result.stdout)


def test_a_good_backup_passes_the_catalog_comparison(
        backed_up: str, agent_env: dict[str, str], backup_dir: Path) -> None:
    code, report = restore_test(agent_env, backup_dir, backed_up)
    assert code == 0, json.dumps(report)
    test = report["backups"][0]["restore_test"]
    assert test["catalog_compared"] is True and test["roles_created"] == []


@pytest.mark.parametrize(("line", "named"), [
    (b"CREATE INDEX orders_customer_placed", "indexes: "),
    (b"GRANT SELECT ON TABLE shop.customers TO gl_ro;", "grants: "),
])
def test_the_restore_test_catches_a_consistent_backup_that_lost_an_object(
        backed_up: str, agent_env: dict[str, str], backup_dir: Path, line: bytes,
        named: str) -> None:
    def without(sql: bytes) -> bytes:
        kept = [row for row in sql.split(b"\n") if not row.startswith(line)]
        assert len(kept) == sql.count(b"\n")  # exactly one line went
        return b"\n".join(kept)

    lost = rewrite_backup(backup_dir, backed_up, without)
    code, report = restore_test(agent_env, backup_dir, lost, "--allow-unsigned")
    assert code == 8
    problems = report["backups"][0]["problems"]
    assert any(problem.startswith(named) for problem in problems), problems


def test_the_restore_test_catches_a_backup_that_lost_a_role(
        backed_up: str, agent_env: dict[str, str], backup_dir: Path) -> None:
    def without_gl_ro(document: dict[str, Any]) -> dict[str, Any]:
        document["roles"] = [role for role in document["roles"] if role["name"] != "gl_ro"]
        return document

    lost = rewrite_backup(backup_dir, backed_up, lambda sql: sql, change_globals=without_gl_ro)
    code, report = restore_test(agent_env, backup_dir, lost, "--allow-unsigned")
    assert code == 8
    assert "role gl_ro: the restored database uses it but the backup does not carry it" in \
        " ".join(report["backups"][0]["problems"])


@pytest.mark.parametrize("damage", ["altered", "missing"])
def test_a_damaged_globals_file_stops_the_restore_before_anything_runs(
        backed_up: str, agent_env: dict[str, str], backup_dir: Path, pg_server: PostgresServer,
        database: str, damage: str) -> None:
    globals_file = backup_dir / f"{backed_up}.globals"
    if damage == "missing":
        globals_file.unlink()
    else:
        globals_file.write_bytes(globals_file.read_bytes() + b"\0")
    databases = pg_server.database_names()
    result = run_agent(["restore", "latest", "--yes"], agent_env)
    assert result.returncode == 8
    assert f"its globals file (roles and database properties): it is {damage}" in \
        result.stderr.replace("its SHA-256 differs from the one in the manifest", "it is altered")
    assert "nothing was restored and none of it ran" in result.stderr
    assert pg_server.database_names() == databases
    verify = run_agent(["verify", "latest"], agent_env)
    assert verify.returncode == 8 and "globals file" in verify.stdout + verify.stderr


def on(server: PostgresServer, agent_env: dict[str, str], database: str,
       **extra: str) -> dict[str, str]:
    return {**agent_env, **server.environment(database), **extra}


def test_a_dry_run_on_a_new_server_names_the_roles_it_would_create(
        backed_up: str, agent_env: dict[str, str], new_cluster: PostgresServer,
        database: str) -> None:
    env = on(new_cluster, agent_env, database)
    result = run_agent(["restore", "latest", "--dry-run", "--json"], env)
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert plan["roles_to_create"] == ["gl_owner", "gl_ro"]
    assert any(step.startswith(f"rename {database}_restore_") and "nothing to swap out" in step
               for step in plan["steps"])
    assert not any(step.startswith("swap") for step in plan["steps"])
    assert "gl_ro" not in new_cluster.psql("postgres", "SELECT rolname FROM pg_roles;")


def test_no_owner_on_a_new_server_creates_no_role_and_skips_owners_and_grants(
        backed_up: str, agent_env: dict[str, str], new_cluster: PostgresServer,
        database: str) -> None:
    env = on(new_cluster, agent_env, database)
    result = run_agent(["restore", "latest", "--no-owner", "--yes", "--json"], env)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["roles_created"] == []
    assert "gl_ro" not in new_cluster.psql("postgres", "SELECT rolname FROM pg_roles;")
    owner, acl = new_cluster.psql(database, """
        SELECT pg_get_userbyid(relowner), relacl IS NULL FROM pg_class
        WHERE oid = 'shop.customers'::regclass;""").strip().split("|")
    assert (owner, acl) == (new_cluster.user, "t")
    settings = new_cluster.psql(database, f"""
        SELECT datconnlimit, shobj_description(oid, 'pg_database'),
               (SELECT setconfig FROM pg_db_role_setting
                WHERE setdatabase = d.oid AND setrole = 0)
        FROM pg_database d WHERE datname = '{database}';""").strip()
    assert settings == "50|production shop|{work_mem=12MB}"
    assert any("settings of role gl_ro" in warning for warning in report["warnings"])
    assert any(warning.startswith("left out policy ro sees on shop.customers: it names role(s) "
                                  "gl_ro") for warning in report["warnings"])
    assert new_cluster.psql(database, "SELECT count(*) FROM pg_policy;").strip() == "0"


def test_a_planted_globals_file_cannot_make_a_superuser_or_load_a_library(
        backed_up: str, agent_env: dict[str, str], backup_dir: Path,
        new_cluster: PostgresServer, database: str) -> None:
    def escalate(document: dict[str, Any]) -> dict[str, Any]:
        for role in document["roles"]:
            role.update(superuser=True, replication=True)
        document["database"]["settings"] += ["session_preload_libraries=/tmp/evil.so",
                                             "force_parallel_mode=off"]
        for role in document["roles"]:
            role["settings"] = ["session_replication_role=replica"]
        for powerful in ("pg_execute_server_program", "pg_write_all_data", "postgres"):
            document["memberships"].append({"role": powerful, "member": "gl_ro",
                                            "admin": True, "inherit": True, "set": True})
        return document

    planted = rewrite_backup(backup_dir, backed_up, lambda sql: sql, change_globals=escalate)
    env = on(new_cluster, agent_env, database)
    result = run_agent(["restore", str(backup_dir / planted), "--yes", "--json",
                        "--allow-unsigned"], env)
    assert result.returncode == 0, result.stderr
    warnings = " ".join(json.loads(result.stdout)["warnings"])
    assert "created role gl_ro without SUPERUSER and REPLICATION" in warnings
    assert "session_preload_libraries (never restored)" in warnings
    for powerful in ("pg_execute_server_program", "pg_write_all_data", "postgres"):
        assert f"did not make gl_ro a member of {powerful}" in warnings
    assert "force_parallel_mode (this server has no such setting)" in warnings
    assert "session_replication_role (never restored)" in warnings
    assert new_cluster.psql("postgres", """
        SELECT count(*) FROM pg_roles r WHERE rolname LIKE 'gl\\_%'
        AND (rolsuper OR rolreplication OR EXISTS (
            SELECT FROM pg_auth_members m WHERE m.member = r.oid));""").strip() == "0"
    assert "replica" not in new_cluster.psql("postgres",
                                             "SELECT setconfig FROM pg_db_role_setting;")
    assert "preload" not in new_cluster.psql("postgres",
                                             "SELECT setconfig FROM pg_db_role_setting;")


def test_a_backup_made_before_globals_files_still_restores(
        backed_up: str, agent_env: dict[str, str], backup_dir: Path) -> None:
    old = rewrite_backup(backup_dir, backed_up, lambda sql: sql)
    (backup_dir / f"{old}.globals").unlink()
    manifest_path = backup_dir / f"{old}.manifest.json"
    manifest = json.loads(manifest_path.read_text())
    del manifest["globals"]
    manifest_path.write_text(json.dumps(manifest))
    result = run_agent(["restore", str(backup_dir / old), "--yes", "--json",
                        "--allow-unsigned"], agent_env)
    assert result.returncode == 0, result.stderr
    assert any("made before backups carried their roles" in warning
               for warning in json.loads(result.stdout)["warnings"])
    code, report = restore_test(agent_env, backup_dir, old, "--allow-unsigned")
    assert code == 0, report


def test_a_backup_by_a_user_who_cannot_read_password_hashes_says_so(
        agent_env: dict[str, str], pg_server: PostgresServer, database: str,
        backup_dir: Path, new_cluster: PostgresServer) -> None:
    """As on managed services: the dumping user is no superuser, so pg_authid is closed.
    (Not pg_read_all_data: that role reads pg_authid too.)"""
    with_roles(pg_server, database)
    pg_server.psql("postgres", """
        DO $$ BEGIN CREATE ROLE gl_dumper LOGIN BYPASSRLS PASSWORD 'gl-dumper-password';
        EXCEPTION WHEN duplicate_object THEN NULL; END $$;
        """)
    pg_server.psql(database, f"""
        GRANT CONNECT ON DATABASE {database} TO gl_dumper;
        GRANT USAGE ON SCHEMA shop, audit, "Reporting" TO gl_dumper;
        GRANT SELECT ON ALL TABLES IN SCHEMA shop, audit, "Reporting" TO gl_dumper;
        GRANT SELECT ON ALL SEQUENCES IN SCHEMA shop, audit, "Reporting" TO gl_dumper;
        DO $$ DECLARE lo oid; BEGIN
            FOR lo IN SELECT oid FROM pg_largeobject_metadata LOOP
                EXECUTE format('GRANT SELECT ON LARGE OBJECT %s TO gl_dumper', lo);
            END LOOP; END $$;""")
    agent_env = signed(agent_env)  # a genuine backup: its login roles come back as logins
    report = make_backup({**agent_env, "POSTGRES_USER": "gl_dumper",
                          "POSTGRES_PASSWORD": "gl-dumper-password"})
    manifest = json.loads((backup_dir / f"{report['name']}.manifest.json").read_text())
    assert manifest["globals"]["passwords_included"] is False
    result = run_agent(["restore", "latest", "--yes", "--json"],
                       on(new_cluster, agent_env, database))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["roles_created"] == ["gl_owner", "gl_ro", "gl_dumper"]  # it holds grants
    assert any("created login role gl_ro without a password" in warning
               for warning in report["warnings"])


def test_the_old_superuser_s_name_must_exist_before_anything_is_created(
        backed_up: str, agent_env: dict[str, str], backup_dir: Path,
        new_cluster: PostgresServer, database: str) -> None:
    def renamed(document: dict[str, Any]) -> dict[str, Any]:
        document["bootstrap_superuser"] = "old_admin"
        return document

    moved = rewrite_backup(backup_dir, backed_up, lambda sql: sql, change_globals=renamed)
    result = run_agent(["restore", str(backup_dir / moved), "--yes", "--allow-unsigned"],
                       on(new_cluster, agent_env, database))
    assert result.returncode != 0
    assert 'this server has no such role: CREATE ROLE "old_admin" SUPERUSER;' in result.stderr
    assert "gl_" not in new_cluster.psql("postgres", "SELECT rolname FROM pg_roles;")
    assert database not in new_cluster.database_names()


def test_a_restore_test_on_a_server_without_the_roles_makes_them_nologin_and_drops_them(
        backed_up: str, agent_env: dict[str, str], backup_dir: Path,
        new_cluster: PostgresServer, database: str) -> None:
    result = run_agent(["verify", str(backup_dir / backed_up), "--restore-test"],
                       on(new_cluster, agent_env, "postgres"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "created role(s) gl_owner, gl_ro (NOLOGIN) for the test and dropped them" in \
        result.stdout + result.stderr
    assert "gl_" not in new_cluster.psql("postgres", "SELECT rolname FROM pg_roles;")


def test_only_the_roles_this_database_uses_and_their_members_are_carried(
        pg_server: PostgresServer, database: str, agent_env: dict[str, str],
        backup_dir: Path, new_cluster: PostgresServer) -> None:
    with_roles(pg_server, database)
    pg_server.psql("postgres", """
        DO $$ BEGIN CREATE ROLE gl_other_owner NOLOGIN; CREATE ROLE gl_dba LOGIN;
            CREATE ROLE gl_expired LOGIN PASSWORD 'expired-pw' VALID UNTIL '-infinity';
        EXCEPTION WHEN duplicate_object THEN NULL; END $$;
        GRANT gl_owner, gl_other_owner TO gl_dba;""")
    pg_server.psql(database, f"GRANT CONNECT ON DATABASE {database} TO gl_expired;")
    name = make_backup(agent_env)["name"]
    import gzip

    document = json.loads(gzip.decompress((backup_dir / f"{name}.globals").read_bytes()))
    carried = {role["name"] for role in document["roles"]}
    assert {"gl_owner", "gl_ro", "gl_dba", "gl_expired"} <= carried
    assert "gl_other_owner" not in carried  # another database's owner stays home
    assert all(item["role"] != "gl_other_owner" for item in document["memberships"])
    result = run_agent(["restore", "latest", "--yes"], on(new_cluster, agent_env, database))
    assert result.returncode == 0, result.stderr
    assert new_cluster.psql("postgres", "SELECT rolvaliduntil FROM pg_roles "
                                        "WHERE rolname = 'gl_expired';").strip() == "-infinity"
