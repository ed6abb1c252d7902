"""restoring/rebuild.py in process, against the real server: the roles and the database
properties a backup's globals file records, created, given and undone (no CLI, no dump)."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from backup_agent.model.cluster_globals import ClusterGlobals, parse_globals
from backup_agent.model.errors import RestoreError
from backup_agent.model.settings import PostgresSettings
from backup_agent.postgres.admin import DatabaseAdmin
from backup_agent.restoring.rebuild import Rebuild
from testbed.postgres import PostgresServer


@pytest.fixture
def admin(pg_server: PostgresServer) -> Iterator[DatabaseAdmin]:
    settings = PostgresSettings(database="postgres", user=pg_server.user,
                                password=pg_server.password, host=pg_server.host,
                                port=pg_server.port, bin_directory=pg_server.bin_directory)
    with DatabaseAdmin(settings) as session:
        yield session


def small_globals(server: PostgresServer, owner: str, reader: str, **extra: Any) -> ClusterGlobals:
    """A globals file as the server writes it: one owner role and one reader, with the
    template's locale (every server has it)."""
    collate, ctype = server.psql("postgres", "SELECT datcollate || ' ' || datctype FROM "
                                 "pg_database WHERE datname = 'template0';").split()

    def role(name: str) -> dict[str, Any]:
        return {"name": name, "superuser": False, "inherit": True, "createrole": False,
                "createdb": False, "login": True, "replication": False, "bypassrls": False,
                "connection_limit": -1, "valid_until": None, "password": None,
                "comment": None, "settings": []}

    database = {"owner": owner, "encoding": "UTF8", "collate": collate, "ctype": ctype,
                "locale_provider": "c", "locale": None, "icu_rules": None,
                "connection_limit": 7,
                "acl": [{"grantee": owner, "grantor": owner, "privilege": privilege,
                         "grantable": False} for privilege in ("CREATE", "CONNECT",
                                                                "TEMPORARY")]
                + [{"grantee": reader, "grantor": owner, "privilege": "CONNECT",
                    "grantable": False}],
                "comment": "rebuilt in process", "settings": ["work_mem=16MB"],
                "role_settings": []}
    document = {"format": 1, "passwords_included": False,
                "roles": [role(owner), role(reader)], "memberships": [], "database": database,
                "fingerprint": {}, **extra}
    return parse_globals(json.dumps(document).encode())


def names() -> tuple[str, str, str]:
    suffix = secrets.token_hex(4)
    return f"rb_db_{suffix}", f"rb_owner_{suffix}", f"rb_reader_{suffix}"


def roles(server: PostgresServer, *wanted: str) -> set[str]:
    listed = ", ".join(f"'{name}'" for name in wanted)
    return set(server.psql("postgres", "SELECT rolname FROM pg_roles WHERE rolname IN "
                           f"({listed});").split())


def test_a_rebuild_creates_the_roles_and_gives_the_database_its_properties(
        pg_server: PostgresServer, admin: DatabaseAdmin) -> None:
    database, owner, reader = names()
    rebuild = Rebuild(admin, small_globals(pg_server, owner, reader),
                      server_major=admin.server_major(), no_owner=False)
    assert rebuild.missing_roles() == [owner, reader]
    try:
        rebuild.create(database, None)
        assert sorted(rebuild.created_roles) == sorted([owner, reader])
        # Until finish(), nothing the dump runs may own the database.
        assert pg_server.psql("postgres", "SELECT pg_get_userbyid(datdba) FROM pg_database "
                              f"WHERE datname = '{database}';").strip() == pg_server.user
        rebuild.finish(database)
        facts = pg_server.psql("postgres", "SELECT pg_get_userbyid(datdba), datconnlimit, "
                               "shobj_description(oid, 'pg_database'), "
                               f"has_database_privilege('{reader}', oid, 'CONNECT') "
                               f"FROM pg_database WHERE datname = '{database}';")
        assert facts.strip().split("|") == [owner, "7", "rebuilt in process", "t"]
        assert "work_mem=16MB" in pg_server.psql(
            "postgres", "SELECT setconfig FROM pg_db_role_setting s JOIN pg_database d "
            f"ON d.oid = s.setdatabase WHERE d.datname = '{database}' AND s.setrole = 0;")
    finally:
        admin.drop(database)
        rebuild.undo()
    assert roles(pg_server, owner, reader) == set()
    assert rebuild.created_roles == []


def test_a_restore_test_s_roles_cannot_log_in(pg_server: PostgresServer,
                                              admin: DatabaseAdmin) -> None:
    database, owner, reader = names()
    rebuild = Rebuild(admin, small_globals(pg_server, owner, reader),
                      server_major=admin.server_major(), no_owner=False, for_test=True)
    try:
        rebuild.create(database, None)
        assert pg_server.psql("postgres", "SELECT bool_or(rolcanlogin) FROM pg_roles WHERE "
                              f"rolname IN ('{owner}', '{reader}');").strip() == "f"
    finally:
        admin.drop(database)
        rebuild.undo()
    assert roles(pg_server, owner, reader) == set()


def test_no_owner_creates_no_role_and_gives_no_owner(pg_server: PostgresServer,
                                                     admin: DatabaseAdmin) -> None:
    database, owner, reader = names()
    rebuild = Rebuild(admin, small_globals(pg_server, owner, reader),
                      server_major=admin.server_major(), no_owner=True)
    assert rebuild.missing_roles() == []
    try:
        rebuild.create(database, None)
        rebuild.finish(database)
        assert roles(pg_server, owner, reader) == set()
        assert pg_server.psql("postgres", "SELECT pg_get_userbyid(datdba) FROM pg_database "
                              f"WHERE datname = '{database}';").strip() == pg_server.user
    finally:
        admin.drop(database)
        rebuild.undo()


def test_a_missing_bootstrap_superuser_is_refused_before_anything_exists(
        pg_server: PostgresServer, admin: DatabaseAdmin) -> None:
    database, owner, reader = names()
    cluster = small_globals(pg_server, owner, reader, bootstrap_superuser="rb_no_such_super")
    rebuild = Rebuild(admin, cluster, server_major=admin.server_major(), no_owner=False)
    with pytest.raises(RestoreError, match="rb_no_such_super"):
        rebuild.create(database, None)
    assert database not in pg_server.database_names()
    assert roles(pg_server, owner, reader) == set()
